//! Job descriptions: `name=NAME,class=CLASS,shares=N,op=OP,size=BYTES,depth=N`.
//!
//! `op` is `randread`, `seqread`, `randwrite` or `seqwrite`; `size` takes
//! `K`/`M`/`G` suffixes (powers of 1024); jobs naming the same class share
//! it (the first job's shares win). Defaults: class = name, shares 100,
//! op randread, size 4K, depth 1.

use std::fmt;

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Reads at random aligned offsets.
    RandRead,
    /// Reads sequentially, wrapping at the end of the file.
    SeqRead,
    /// Writes at random aligned offsets.
    RandWrite,
    /// Writes sequentially, wrapping.
    SeqWrite,
}

impl Op {
    /// Whether the job writes.
    pub fn is_write(self) -> bool {
        matches!(self, Op::RandWrite | Op::SeqWrite)
    }
    /// Whether offsets are random.
    pub fn is_random(self) -> bool {
        matches!(self, Op::RandRead | Op::RandWrite)
    }
}

/// One job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Name in the report.
    pub name: String,
    /// I/O class name.
    pub class: String,
    /// Shares of the class.
    pub shares: u32,
    /// Operation.
    pub op: Op,
    /// Bytes per request.
    pub size: usize,
    /// Requests in flight (per shard).
    pub depth: usize,
}

/// Parses `4096`, `4k`, `1M`, `2G`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size `{s}`"))
}

impl std::str::FromStr for Job {
    type Err = String;

    fn from_str(s: &str) -> Result<Job, String> {
        let mut job = Job {
            name: String::new(),
            class: String::new(),
            shares: 100,
            op: Op::RandRead,
            size: 4096,
            depth: 1,
        };
        for kv in s.split(',').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("`{kv}`: expected key=value"))?;
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("`{kv}`: not a number"))
            };
            match k {
                "name" => job.name = v.to_owned(),
                "class" => job.class = v.to_owned(),
                "shares" => job.shares = num(v)?.clamp(1, u64::from(u32::MAX)) as u32,
                "op" => {
                    job.op = match v {
                        "randread" => Op::RandRead,
                        "seqread" => Op::SeqRead,
                        "randwrite" => Op::RandWrite,
                        "seqwrite" => Op::SeqWrite,
                        _ => {
                            return Err(format!(
                                "`{kv}`: op is randread, seqread, randwrite or seqwrite"
                            ));
                        }
                    }
                }
                "size" => job.size = parse_size(v)? as usize,
                "depth" => job.depth = num(v)? as usize,
                _ => return Err(format!("unknown key `{k}`")),
            }
        }
        if job.name.is_empty() {
            return Err("a job needs name=".into());
        }
        if job.class.is_empty() {
            job.class = job.name.clone();
        }
        if job.size == 0 || job.depth == 0 {
            return Err(format!("job {}: size and depth must be positive", job.name));
        }
        Ok(job)
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "name={},class={},shares={},op={},size={},depth={}",
            self.name,
            self.class,
            self.shares,
            serde_json::to_value(self.op)
                .expect("op")
                .as_str()
                .expect("string"),
            self.size,
            self.depth
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_job_and_round_trips_it() {
        let j: Job = "name=bg,class=background,shares=400,op=seqwrite,size=128k,depth=32"
            .parse()
            .unwrap();
        assert_eq!(
            j,
            Job {
                name: "bg".into(),
                class: "background".into(),
                shares: 400,
                op: Op::SeqWrite,
                size: 131072,
                depth: 32
            }
        );
        assert_eq!(j.to_string().parse::<Job>().unwrap(), j);
    }

    #[test]
    fn defaults_and_errors() {
        let j: Job = "name=x".parse().unwrap();
        assert_eq!(
            (j.class.as_str(), j.shares, j.op, j.size, j.depth),
            ("x", 100, Op::RandRead, 4096, 1)
        );
        for bad in [
            "",
            "op=randread",
            "name=x,op=scan",
            "name=x,depth=0",
            "name=x,size=4q",
            "name=x,zzz=1",
            "name=x,depth",
        ] {
            assert!(bad.parse::<Job>().is_err(), "{bad}");
        }
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
    }
}
