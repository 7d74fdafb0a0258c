//! From a metrics [`Snapshot`] to collectd value lists.
//!
//! Each sample of shard `N` becomes value lists of plugin `<app>`, plugin
//! instance `N`, with a type from collectd's stock types.db, so a stock
//! collectd accepts every value:
//!
//! | metric | collectd type (data source) | type instance |
//! |---|---|---|
//! | counter | `derive` (`DERIVE`, min 0) | `<name>[;<label>=<value>...]` |
//! | gauge | `gauge` (`GAUGE`) | the same |
//! | histogram | `derive` per cumulative bucket, `derive` count, `gauge` sum | `<name>_bucket[;labels];le=<bound>`, `<name>_count[;labels]`, `<name>_sum[;labels]` |
//!
//! Counters go out as `derive` rather than `counter`: collectd treats a
//! `DERIVE` that goes down (a restarted process) as a reset instead of a
//! wrap-around. A type instance longer than 63 bytes keeps its first 54
//! bytes, then `~` and 8 hex digits of a hash of the whole, so distinct
//! metrics stay distinct. `/` (the identifier separator) and control
//! characters become `_`.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use seastar_core::metrics::{Snapshot, Value};

use super::packet::{DataValue, Identifier, MAX_STRING, PacketWriter, to_hr};

/// Everything that is the same for every value list of one push.
#[derive(Clone, Copy, Debug)]
pub struct PushInfo<'a> {
    /// The host name.
    pub host: &'a str,
    /// The plugin: the application's name.
    pub plugin: &'a str,
    /// When the values were read.
    pub time: SystemTime,
    /// The push interval.
    pub interval: Duration,
    /// Packet size limit.
    pub max_packet: usize,
}

/// Encodes every sample of every shard into packets.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use seastar_core::metrics::{Sample, ShardSnapshot, Snapshot, Value};
/// use seastar_net::collectd::{PushInfo, encode_snapshot};
///
/// let snap = Snapshot {
///     shards: vec![ShardSnapshot {
///         shard: 3,
///         samples: vec![Sample { name: "hits".into(), labels: vec![], value: Value::Counter(9) }],
///         ..Default::default()
///     }],
///     ..Default::default()
/// };
/// let info = PushInfo {
///     host: "h",
///     plugin: "app",
///     time: SystemTime::UNIX_EPOCH,
///     interval: Duration::from_secs(10),
///     max_packet: 1452,
/// };
/// let packets = encode_snapshot(&snap, &info);
/// assert_eq!(packets.len(), 1);
/// assert!(packets[0].windows(5).any(|w| w == b"hits\0"));
/// ```
pub fn encode_snapshot(snapshot: &Snapshot, info: &PushInfo<'_>) -> Vec<Vec<u8>> {
    let time = to_hr(
        info.time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let interval = to_hr(info.interval);
    let mut w = PacketWriter::new(info.max_packet);
    for shard in &snapshot.shards {
        let instance = shard.shard.to_string();
        let mut push = |type_: &str, type_instance: &str, v: DataValue| {
            let id = Identifier {
                host: info.host,
                plugin: info.plugin,
                plugin_instance: &instance,
                type_,
                type_instance: &fit(type_instance),
            };
            w.push(&id, time, interval, &[v]);
        };
        for s in &shard.samples {
            let labels: String = s.labels.iter().fold(String::new(), |mut out, (k, v)| {
                let _ = write!(out, ";{k}={v}");
                out
            });
            match &s.value {
                Value::Counter(v) => push(
                    "derive",
                    &format!("{}{labels}", s.name),
                    DataValue::Derive(clamp(*v)),
                ),
                // collectd's derive is an integer: a total in seconds
                // keeps its fraction as a gauge (consumers take its rate).
                Value::Gauge(v) | Value::FloatCounter(v) => push(
                    "gauge",
                    &format!("{}{labels}", s.name),
                    DataValue::Gauge(*v),
                ),
                Value::Histogram(h) => {
                    for (le, n) in h.cumulative() {
                        let le = if le.is_infinite() {
                            "+Inf".to_owned()
                        } else {
                            le.to_string()
                        };
                        let ti = format!("{}_bucket{labels};le={le}", s.name);
                        push("derive", &ti, DataValue::Derive(clamp(n)));
                    }
                    let count = format!("{}_count{labels}", s.name);
                    push("derive", &count, DataValue::Derive(clamp(h.count)));
                    let sum = format!("{}_sum{labels}", s.name);
                    push("gauge", &sum, DataValue::Gauge(h.sum));
                }
            }
        }
    }
    w.finish()
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A type instance collectd accepts: no `/` or control characters, at most
/// [`MAX_STRING`] bytes (longer ones shortened with a hash, see the
/// module doc).
pub fn fit(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    if clean.len() <= MAX_STRING {
        return clean;
    }
    let hash = clean.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut end = MAX_STRING - 9;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}~{:08x}", &clean[..end], hash as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_type_instances_are_shortened_uniquely() {
        let a = fit(&format!("{}a", "x".repeat(80)));
        let b = fit(&format!("{}b", "x".repeat(80)));
        assert_eq!(a.len(), MAX_STRING);
        assert_ne!(a, b);
        assert_eq!(&a[..54], &"x".repeat(54));
        assert_eq!(a.as_bytes()[54], b'~');
        assert_eq!(fit("a/b\nc"), "a_b_c");
        assert_eq!(fit("short;k=v"), "short;k=v");
    }
}
