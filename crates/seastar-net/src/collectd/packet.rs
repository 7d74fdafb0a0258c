//! collectd's binary network protocol: the encoder (pure, no I/O).
//!
//! A packet is a sequence of parts, each a 2-byte type and a 2-byte length
//! (both big-endian; the length counts the 4-byte header) followed by its
//! payload:
//!
//! | part | type | payload |
//! |---|---|---|
//! | host | `0x0000` | NUL-terminated string |
//! | plugin | `0x0002` | string |
//! | plugin instance | `0x0003` | string |
//! | type | `0x0004` | string |
//! | type instance | `0x0005` | string |
//! | values | `0x0006` | `u16` count, `count` data-source type bytes, `count` 8-byte values |
//! | time (high resolution) | `0x0008` | `u64`, units of 2<sup>-30</sup> s since the epoch |
//! | interval (high resolution) | `0x0009` | `u64`, units of 2<sup>-30</sup> s |
//!
//! Data-source types: `0` COUNTER (`u64` big-endian), `1` GAUGE (`f64`
//! *little*-endian, as collectd's x86 origins left it), `2` DERIVE (`i64`
//! big-endian), `3` ABSOLUTE (`u64` big-endian).
//!
//! Host, time, interval, plugin, plugin instance, type and type instance
//! are sticky: a values part belongs to the ones most recently seen in the
//! same packet. So [`PacketWriter`] writes a part only when it differs
//! from the packet's current one, and a new packet (started when the next
//! value list would push the current one past the size limit, 1452 bytes
//! by default: one Ethernet frame less the IPv6 and UDP headers) starts
//! over with every part. Strings are cut to 63 bytes, which every
//! collectd version accepts.

use std::time::Duration;

/// collectd's default packet size.
pub const MAX_PACKET: usize = 1452;

/// Longest string written (collectd's older 64-byte fields, NUL included).
pub const MAX_STRING: usize = 63;

/// Part types.
pub mod part {
    /// Host name.
    pub const HOST: u16 = 0x0000;
    /// Time in seconds (not written; decoders accept it).
    pub const TIME: u16 = 0x0001;
    /// Plugin.
    pub const PLUGIN: u16 = 0x0002;
    /// Plugin instance.
    pub const PLUGIN_INSTANCE: u16 = 0x0003;
    /// Type (from types.db).
    pub const TYPE: u16 = 0x0004;
    /// Type instance.
    pub const TYPE_INSTANCE: u16 = 0x0005;
    /// Values.
    pub const VALUES: u16 = 0x0006;
    /// Interval in seconds (not written).
    pub const INTERVAL: u16 = 0x0007;
    /// Time, 2^-30 s units.
    pub const TIME_HR: u16 = 0x0008;
    /// Interval, 2^-30 s units.
    pub const INTERVAL_HR: u16 = 0x0009;
}

/// One value of a values part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataValue {
    /// A wrapping counter (`COUNTER`).
    Counter(u64),
    /// An instantaneous value (`GAUGE`).
    Gauge(f64),
    /// A counter that may be reset (`DERIVE`).
    Derive(i64),
    /// A count since the previous read (`ABSOLUTE`).
    Absolute(u64),
}

impl DataValue {
    /// The data-source type byte.
    pub fn type_code(&self) -> u8 {
        match self {
            DataValue::Counter(_) => 0,
            DataValue::Gauge(_) => 1,
            DataValue::Derive(_) => 2,
            DataValue::Absolute(_) => 3,
        }
    }

    fn bytes(&self) -> [u8; 8] {
        match *self {
            DataValue::Counter(v) | DataValue::Absolute(v) => v.to_be_bytes(),
            DataValue::Gauge(v) => v.to_le_bytes(),
            DataValue::Derive(v) => v.to_be_bytes(),
        }
    }
}

/// Who a value list belongs to: `host/plugin-plugin_instance/type-type_instance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identifier<'a> {
    /// The machine.
    pub host: &'a str,
    /// The program (our apps: their name).
    pub plugin: &'a str,
    /// Its instance (our apps: the shard).
    pub plugin_instance: &'a str,
    /// A type of collectd's types.db (`derive`, `gauge`, `counter`...).
    pub type_: &'a str,
    /// What is measured (our apps: the metric name and labels).
    pub type_instance: &'a str,
}

/// Converts a duration to collectd's high-resolution units (2^-30 s).
///
/// ```
/// use std::time::Duration;
/// use seastar_net::collectd::to_hr;
/// assert_eq!(to_hr(Duration::from_secs(10)), 10 << 30);
/// assert_eq!(to_hr(Duration::from_millis(500)), 1 << 29);
/// ```
pub fn to_hr(d: Duration) -> u64 {
    (d.as_secs() << 30) | ((u64::from(d.subsec_nanos()) << 30) / 1_000_000_000)
}

/// Sticky state of the packet being filled.
#[derive(Debug, Default)]
struct Current {
    host: Option<String>,
    time: Option<u64>,
    interval: Option<u64>,
    plugin: Option<String>,
    plugin_instance: Option<String>,
    type_: Option<String>,
    type_instance: Option<String>,
}

/// Builds packets of value lists, no larger than a limit.
///
/// ```
/// use seastar_net::collectd::{DataValue, Identifier, PacketWriter};
///
/// let id = Identifier { host: "h", plugin: "app", plugin_instance: "0", type_: "gauge", type_instance: "x" };
/// let mut w = PacketWriter::new(1452);
/// w.push(&id, 1 << 30, 10 << 30, &[DataValue::Gauge(1.5)]);
/// w.push(&id, 1 << 30, 10 << 30, &[DataValue::Gauge(2.5)]); // identifier parts not repeated
/// let packets = w.finish();
/// assert_eq!(packets.len(), 1);
/// // host 6 + time 12 + interval 12 + plugin 8 + instance 6 + type 10 + type instance 6 + 2 x values 15
/// assert_eq!(packets[0].len(), 6 + 12 + 12 + 8 + 6 + 10 + 6 + 2 * 15);
/// ```
#[derive(Debug)]
pub struct PacketWriter {
    max: usize,
    packets: Vec<Vec<u8>>,
    buf: Vec<u8>,
    cur: Current,
}

impl PacketWriter {
    /// A writer of packets of at most `max_packet` bytes (at least 512).
    pub fn new(max_packet: usize) -> PacketWriter {
        PacketWriter {
            max: max_packet.max(512),
            packets: Vec::new(),
            buf: Vec::with_capacity(max_packet),
            cur: Current::default(),
        }
    }

    /// Appends a value list (starting a new packet if it does not fit).
    pub fn push(
        &mut self,
        id: &Identifier<'_>,
        time_hr: u64,
        interval_hr: u64,
        values: &[DataValue],
    ) {
        let mut parts = Vec::with_capacity(128);
        encode(&mut parts, &self.cur, id, time_hr, interval_hr, values);
        if !self.buf.is_empty() && self.buf.len() + parts.len() > self.max {
            self.packets.push(std::mem::take(&mut self.buf));
            self.cur = Current::default();
            parts.clear();
            encode(&mut parts, &self.cur, id, time_hr, interval_hr, values);
        }
        self.buf.extend_from_slice(&parts);
        let c = &mut self.cur;
        c.host = Some(truncate(id.host).to_owned());
        c.time = Some(time_hr);
        c.interval = Some(interval_hr);
        c.plugin = Some(truncate(id.plugin).to_owned());
        c.plugin_instance = Some(truncate(id.plugin_instance).to_owned());
        c.type_ = Some(truncate(id.type_).to_owned());
        c.type_instance = Some(truncate(id.type_instance).to_owned());
    }

    /// The packets written.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        if !self.buf.is_empty() {
            self.packets.push(self.buf);
        }
        self.packets
    }
}

/// The parts of one value list that differ from `cur`.
fn encode(
    out: &mut Vec<u8>,
    cur: &Current,
    id: &Identifier<'_>,
    time: u64,
    interval: u64,
    values: &[DataValue],
) {
    let string = |out: &mut Vec<u8>, kind: u16, s: &str, cur: &Option<String>| {
        let s = truncate(s);
        if cur.as_deref() != Some(s) {
            header(out, kind, 4 + s.len() + 1);
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
    };
    let number = |out: &mut Vec<u8>, kind: u16, v: u64, cur: Option<u64>| {
        if cur != Some(v) {
            header(out, kind, 12);
            out.extend_from_slice(&v.to_be_bytes());
        }
    };
    string(out, part::HOST, id.host, &cur.host);
    number(out, part::TIME_HR, time, cur.time);
    number(out, part::INTERVAL_HR, interval, cur.interval);
    string(out, part::PLUGIN, id.plugin, &cur.plugin);
    string(
        out,
        part::PLUGIN_INSTANCE,
        id.plugin_instance,
        &cur.plugin_instance,
    );
    string(out, part::TYPE, id.type_, &cur.type_);
    string(
        out,
        part::TYPE_INSTANCE,
        id.type_instance,
        &cur.type_instance,
    );
    header(out, part::VALUES, 4 + 2 + 9 * values.len());
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    out.extend(values.iter().map(DataValue::type_code));
    for v in values {
        out.extend_from_slice(&v.bytes());
    }
}

fn header(out: &mut Vec<u8>, kind: u16, len: usize) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(len as u16).to_be_bytes());
}

/// `s` cut to [`MAX_STRING`] bytes at a character boundary, without NULs.
fn truncate(s: &str) -> &str {
    let s = s.split('\0').next().unwrap_or("");
    if s.len() <= MAX_STRING {
        return s;
    }
    let mut end = MAX_STRING;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(ti: &'a str) -> Identifier<'a> {
        Identifier {
            host: "host",
            plugin: "app",
            plugin_instance: "1",
            type_: "derive",
            type_instance: ti,
        }
    }

    #[test]
    fn a_value_list_encodes_part_by_part() {
        let mut w = PacketWriter::new(MAX_PACKET);
        w.push(&id("x"), 7, 9, &[DataValue::Derive(-2)]);
        let p = w.finish().remove(0);
        let mut want = Vec::new();
        want.extend_from_slice(&[0, 0, 0, 9]);
        want.extend_from_slice(b"host\0");
        want.extend_from_slice(&[0, 8, 0, 12, 0, 0, 0, 0, 0, 0, 0, 7]);
        want.extend_from_slice(&[0, 9, 0, 12, 0, 0, 0, 0, 0, 0, 0, 9]);
        want.extend_from_slice(&[0, 2, 0, 8]);
        want.extend_from_slice(b"app\0");
        want.extend_from_slice(&[0, 3, 0, 6]);
        want.extend_from_slice(b"1\0");
        want.extend_from_slice(&[0, 4, 0, 11]);
        want.extend_from_slice(b"derive\0");
        want.extend_from_slice(&[0, 5, 0, 6]);
        want.extend_from_slice(b"x\0");
        want.extend_from_slice(&[0, 6, 0, 15, 0, 1, 2]);
        want.extend_from_slice(&(-2i64).to_be_bytes());
        assert_eq!(p, want);
    }

    #[test]
    fn gauges_are_little_endian_and_counters_big_endian() {
        let mut w = PacketWriter::new(MAX_PACKET);
        w.push(
            &id("g"),
            0,
            0,
            &[DataValue::Gauge(1.0), DataValue::Counter(1)],
        );
        let p = w.finish().remove(0);
        let values = &p[p.len() - (4 + 2 + 2 + 16)..];
        assert_eq!(&values[..8], &[0, 6, 0, 24, 0, 2, 1, 0]);
        assert_eq!(&values[8..16], &1.0f64.to_le_bytes());
        assert_eq!(&values[16..], &1u64.to_be_bytes());
    }

    #[test]
    fn packets_split_below_the_limit_and_restart_every_part() {
        let mut w = PacketWriter::new(MAX_PACKET);
        let names: Vec<String> = (0..100).map(|i| format!("metric_number_{i:03}")).collect();
        for n in &names {
            w.push(&id(n), 5, 6, &[DataValue::Derive(1)]);
        }
        let packets = w.finish();
        assert!(packets.len() > 1);
        for p in &packets {
            assert!(p.len() <= MAX_PACKET, "{}", p.len());
            assert_eq!(&p[..4], &[0, 0, 0, 9], "each packet starts with the host");
            assert_eq!(&p[9..13], &[0, 8, 0, 12], "then the time");
        }
        // Filled close to the limit: the next value list (37 bytes with its
        // type instance) did not fit.
        assert!(packets[0].len() > MAX_PACKET - 40);
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let long = "é".repeat(40);
        assert_eq!(truncate(&long).len(), 62);
        assert_eq!(truncate("a\0b"), "a");
        assert_eq!(truncate(&"x".repeat(100)).len(), MAX_STRING);
    }
}
