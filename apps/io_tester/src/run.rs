//! Running jobs: every shard runs every job (with the job's depth per
//! shard) against one file, for a fixed duration; latencies go into a
//! histogram per job and shard, merged at the end per job and per class.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use seastar_core::{smp, spawn_local};
use seastar_io::{AlignedBuf, DmaFile, IoClass, OpenOptions};

use crate::job::Job;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The file to run against.
    pub file: PathBuf,
    /// Its size (created or extended to this size first).
    pub file_size: u64,
    /// How long the jobs run.
    pub duration: Duration,
    /// The jobs.
    pub jobs: Vec<Job>,
    /// Use O_DIRECT.
    pub direct: bool,
    /// Print a progress line every second (to stderr).
    pub progress: bool,
}

/// One job's results, all shards together.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobReport {
    /// Job name.
    pub name: String,
    /// Class name.
    pub class: String,
    /// Class shares.
    pub shares: u32,
    /// Operation.
    pub op: crate::job::Op,
    /// Request size.
    pub size: usize,
    /// Depth per shard.
    pub depth: usize,
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub iops: f64,
    /// Bytes per second.
    pub bandwidth: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
    /// Errors seen (the job stops at the first).
    pub errors: u64,
}

/// The whole run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Measured seconds.
    pub seconds: f64,
    /// Shards.
    pub shards: usize,
    /// I/O backend.
    pub backend: String,
    /// Whether the file was opened with O_DIRECT.
    pub direct: bool,
    /// Per job.
    pub jobs: Vec<JobReport>,
    /// Per class (the jobs of a class together).
    pub classes: Vec<ClassReport>,
}

/// One class's results: its jobs together.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClassReport {
    /// Class name.
    pub class: String,
    /// Class shares.
    pub shares: u32,
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub iops: f64,
    /// Bytes per second.
    pub bandwidth: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// Creates or extends the file to `size` bytes of non-zero data.
pub async fn prepare(path: &PathBuf, size: u64, direct: bool) -> std::io::Result<()> {
    let opts = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .direct(direct);
    let f = DmaFile::open(path, &opts).await?;
    let have = f.size().await?;
    if have >= size {
        return f.close().await;
    }
    eprintln!(
        "io_tester: preparing {} ({} MiB)",
        path.display(),
        size >> 20
    );
    let chunk = 1u64 << 20;
    let start = have / chunk * chunk;
    let mut buf = f.alloc_buf(chunk as usize);
    buf.resize(chunk as usize);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8) | 1;
    }
    let mut pos = start;
    while pos < size {
        let (res, b) = f.write_at(pos, buf).await;
        buf = b;
        res?;
        pos += chunk;
    }
    f.truncate(size).await?;
    f.close().await
}

/// A small fast PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    /// A generator whose stream is independent of its neighbours' (the
    /// seed goes through splitmix64; xorshift never starts from 0).
    fn seeded(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One shard's results per job: (requests, bytes, errors, latency ns).
type ShardResult = Vec<(u64, u64, u64, Histogram<u64>)>;

async fn run_shard(
    plan: Arc<Plan>,
    classes: Vec<IoClass>,
    progress: Arc<Vec<AtomicU64>>,
) -> Result<ShardResult, String> {
    let opts = OpenOptions::new()
        .read(true)
        .write(true)
        .direct(plan.direct);
    let file = DmaFile::open(&plan.file, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + plan.duration;
    let shard = seastar_core::shard_id() as u64;
    let mut tasks = Vec::new();
    for (j, job) in plan.jobs.iter().enumerate() {
        let file = file.with_class(classes[j].clone());
        let align = file.alignment().read.max(1) as u64;
        let size = (job.size as u64).next_multiple_of(align);
        let blocks = (plan.file_size / size).max(1);
        let seq = Rc::new(Cell::new(shard * blocks / 7));
        for w in 0..job.depth {
            let (file, job, seq, progress) =
                (file.clone(), job.clone(), seq.clone(), progress.clone());
            tasks.push(spawn_local(async move {
                let mut rng = Rng::seeded((shard << 40) | ((j as u64) << 20) | w as u64);
                let mut hist = histogram();
                let (mut n, mut bytes, mut errors) = (0u64, 0u64, 0u64);
                let mut buf: AlignedBuf = file.alloc_buf(size as usize);
                if job.op.is_write() {
                    buf.resize(size as usize);
                    buf.fill(0x5a);
                }
                while Instant::now() < deadline {
                    let block = if job.op.is_random() {
                        rng.next() % blocks
                    } else {
                        let b = seq.get();
                        seq.set((b + 1) % blocks);
                        b
                    };
                    let pos = block * size;
                    let t = Instant::now();
                    let (res, b) = if job.op.is_write() {
                        file.write_at(pos, buf).await
                    } else {
                        file.read_aligned(pos, buf).await
                    };
                    buf = b;
                    match res {
                        Ok(done) => {
                            let _ = hist.record((t.elapsed().as_nanos() as u64).max(1));
                            n += 1;
                            bytes += done as u64;
                            progress[j].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            errors += 1;
                            eprintln!("io_tester: job {}: {e}", job.name);
                            break;
                        }
                    }
                }
                (j, n, bytes, errors, hist)
            }));
        }
    }
    let mut out: ShardResult = plan.jobs.iter().map(|_| (0, 0, 0, histogram())).collect();
    for t in tasks {
        let (j, n, bytes, errors, hist) = t.await.map_err(|e| format!("worker failed: {e:?}"))?;
        let o = &mut out[j];
        o.0 += n;
        o.1 += bytes;
        o.2 += errors;
        o.3.add(&hist).expect("same bounds");
    }
    Ok(out)
}

/// Runs `plan` on every shard of the current runtime; call on shard 0.
pub async fn run(plan: Plan) -> Result<Report, String> {
    prepare(&plan.file, plan.file_size, plan.direct)
        .await
        .map_err(|e| e.to_string())?;
    // Jobs naming the same class share it.
    let mut classes: Vec<IoClass> = Vec::new();
    for (i, job) in plan.jobs.iter().enumerate() {
        let existing = plan.jobs[..i]
            .iter()
            .position(|p| p.class == job.class)
            .map(|k| classes[k].clone());
        classes.push(existing.unwrap_or_else(|| IoClass::new(job.class.clone(), job.shares)));
    }
    let direct = DmaFile::open(
        &plan.file,
        &OpenOptions::new().read(true).direct(plan.direct),
    )
    .await
    .map_err(|e| e.to_string())?
    .is_direct();
    let progress: Arc<Vec<AtomicU64>> =
        Arc::new(plan.jobs.iter().map(|_| AtomicU64::new(0)).collect());
    let plan = Arc::new(plan);
    let ticker = plan.progress.then(|| {
        let (plan, progress) = (plan.clone(), progress.clone());
        spawn_local(async move {
            let start = Instant::now();
            let mut last: Vec<u64> = plan.jobs.iter().map(|_| 0).collect();
            loop {
                seastar_core::timer::sleep(Duration::from_secs(1)).await;
                let mut line = format!("[{:>4.0}s]", start.elapsed().as_secs_f64());
                for (j, job) in plan.jobs.iter().enumerate() {
                    let now = progress[j].load(Ordering::Relaxed);
                    line += &format!(
                        " {}: {:.1}k IOPS",
                        job.name,
                        (now - last[j]) as f64 / 1000.0
                    );
                    last[j] = now;
                }
                eprintln!("{line}");
            }
        })
    });
    let started = Instant::now();
    let shard_results = {
        let (plan, classes, progress) = (plan.clone(), classes.clone(), progress.clone());
        smp::invoke_on_all(move || run_shard(plan.clone(), classes.clone(), progress.clone()))
            .await
            .map_err(|e| format!("shard failed: {e:?}"))?
    };
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    if let Some(t) = ticker {
        t.abort();
    }
    let mut merged: ShardResult = plan.jobs.iter().map(|_| (0, 0, 0, histogram())).collect();
    for r in shard_results {
        for (j, (n, b, e, h)) in r?.into_iter().enumerate() {
            merged[j].0 += n;
            merged[j].1 += b;
            merged[j].2 += e;
            merged[j].3.add(&h).expect("same bounds");
        }
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut by_class: Vec<(IoClass, u64, u64, Histogram<u64>)> = Vec::new();
    for ((n, bytes, _, h), class) in merged.iter().zip(&classes) {
        let k = match by_class.iter().position(|c| c.0 == *class) {
            Some(k) => k,
            None => {
                by_class.push((class.clone(), 0, 0, histogram()));
                by_class.len() - 1
            }
        };
        let c = &mut by_class[k];
        c.1 += n;
        c.2 += bytes;
        c.3.add(h).expect("same bounds");
    }
    let class_reports = by_class
        .into_iter()
        .map(|(class, n, bytes, h)| ClassReport {
            class: class.name().to_owned(),
            shares: class.shares(),
            requests: n,
            iops: n as f64 / seconds,
            bandwidth: bytes as f64 / seconds,
            p50_us: us(&h, 0.5),
            p99_us: us(&h, 0.99),
            p999_us: us(&h, 0.999),
        })
        .collect();
    let jobs = plan
        .jobs
        .iter()
        .zip(merged)
        .zip(&classes)
        .map(|((job, (n, bytes, errors, h)), class)| JobReport {
            name: job.name.clone(),
            class: class.name().to_owned(),
            shares: class.shares(),
            op: job.op,
            size: job.size,
            depth: job.depth,
            requests: n,
            iops: n as f64 / seconds,
            bandwidth: bytes as f64 / seconds,
            p50_us: us(&h, 0.5),
            p99_us: us(&h, 0.99),
            p999_us: us(&h, 0.999),
            max_us: h.max() as f64 / 1000.0,
            errors,
        })
        .collect();
    Ok(Report {
        seconds,
        shards: seastar_core::shard_count(),
        backend: seastar_core::runtime::backend().to_string(),
        direct,
        jobs,
        classes: class_reports,
    })
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:.1}s, {} shard(s), backend {}, {}\n{:<12} {:<12} {:>6} {:<9} {:>7} {:>5} {:>10} {:>10} {:>9} {:>9} {:>9}\n",
            self.seconds,
            self.shards,
            self.backend,
            if self.direct { "O_DIRECT" } else { "buffered" },
            "job",
            "class",
            "shares",
            "op",
            "size",
            "depth",
            "IOPS",
            "MB/s",
            "p50 us",
            "p99 us",
            "p99.9 us"
        );
        for j in &self.jobs {
            s += &format!(
                "{:<12} {:<12} {:>6} {:<9} {:>7} {:>5} {:>10.0} {:>10.1} {:>9.1} {:>9.1} {:>9.1}\n",
                j.name,
                j.class,
                j.shares,
                serde_json::to_value(j.op)
                    .expect("op")
                    .as_str()
                    .expect("str"),
                j.size,
                j.depth,
                j.iops,
                j.bandwidth / 1e6,
                j.p50_us,
                j.p99_us,
                j.p999_us
            );
        }
        s += &format!(
            "per class:\n{:<12} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9}\n",
            "class", "shares", "IOPS", "MB/s", "p50 us", "p99 us", "p99.9 us"
        );
        for c in &self.classes {
            s += &format!(
                "{:<12} {:>6} {:>10.0} {:>10.1} {:>9.1} {:>9.1} {:>9.1}\n",
                c.class,
                c.shares,
                c.iops,
                c.bandwidth / 1e6,
                c.p50_us,
                c.p99_us,
                c.p999_us
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn neighbouring_workers_read_different_blocks() {
        let firsts: std::collections::HashSet<u64> =
            (0..1024).map(|w| Rng::seeded(w).next() % 262_144).collect();
        assert!(
            firsts.len() > 1000,
            "{} distinct first blocks of 1024",
            firsts.len()
        );
    }
}
