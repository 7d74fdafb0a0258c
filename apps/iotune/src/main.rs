//! `iotune`: measures the disk under a directory and writes the
//! `io_properties` file seastar-io's I/O scheduler reads.
//!
//! ```text
//! iotune --dir /var/lib/data --output io_properties.json [--file-size-mib 1024] [--duration 5]
//! ```
//!
//! Four measurements on one file in `--dir` (created, filled, removed at
//! the end), each with the scheduler out of the way (no in-flight bound):
//! 4 KiB random reads and writes at depths 32, 64 and 128, keeping the
//! best rate (the IOPS at saturation; Seastar's `iotune` likewise searches
//! for the depth where throughput stops growing), and 1 MiB sequential
//! reads and writes at a depth of 8 (bandwidth). The file is JSON:
//! `{"disks":[{"mountpoint":DIR,"read_iops":..,"read_bandwidth":..,
//! "write_iops":..,"write_bandwidth":..}]}`. Point the scheduler at it
//! with `SEASTAR_IO_PROPERTIES=FILE` or `io_tester --io-properties FILE`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use seastar_core::runtime::RuntimeArgs;
use seastar_io::sched::{self, IoConfig, IoProperties, IoPropertiesFile};
use seastar_io::{AlignedBuf, DmaFile, OpenOptions};

/// Measures a disk and writes an io_properties file.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A directory on the disk to measure.
    #[arg(long)]
    dir: PathBuf,
    /// Where to write the properties (JSON).
    #[arg(long, default_value = "io_properties.json")]
    output: PathBuf,
    /// Size of the test file, in MiB.
    #[arg(long, default_value_t = 1024)]
    file_size_mib: u64,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Runs `depth` workers doing `size`-byte requests for `secs`; returns
/// (requests per second, bytes per second).
async fn measure(
    file: &DmaFile,
    write: bool,
    random: bool,
    size: usize,
    depth: usize,
    secs: f64,
) -> std::io::Result<(f64, f64)> {
    let blocks = file.size().await? / size as u64;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let next = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let workers = (0..depth).map(|w| {
        let (file, next) = (file.clone(), next.clone());
        async move {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1);
            let mut buf: AlignedBuf = file.alloc_buf(size);
            if write {
                buf.resize(size);
                buf.fill(0xa5);
            }
            let mut n = 0u64;
            while Instant::now() < deadline {
                let block = if random {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % blocks
                } else {
                    let b = next.get();
                    next.set((b + 1) % blocks);
                    b
                };
                let (res, b) = if write {
                    file.write_at(block * size as u64, buf).await
                } else {
                    file.read_aligned(block * size as u64, buf).await
                };
                buf = b;
                res?;
                n += 1;
            }
            Ok::<u64, std::io::Error>(n)
        }
    });
    let start = Instant::now();
    let counts = futures::future::try_join_all(workers).await?;
    let secs = start.elapsed().as_secs_f64();
    let n: u64 = counts.iter().sum();
    Ok((n as f64 / secs, (n * size as u64) as f64 / secs))
}

/// Small random requests at growing depths (32, 64, 128), `secs` split
/// between them: the best rate, the disk's IOPS once saturated.
async fn saturated_iops(file: &DmaFile, write: bool, secs: f64) -> std::io::Result<f64> {
    let mut best = 0.0f64;
    for depth in [32, 64, 128] {
        let (iops, _) = measure(file, write, true, 4096, depth, secs / 3.0).await?;
        best = best.max(iops);
    }
    Ok(best)
}

async fn tune(args: Args) -> std::io::Result<IoProperties> {
    // Measure the disk, not the scheduler: no in-flight bound.
    sched::configure_shard(IoConfig {
        latency_goal: Duration::from_secs(3600),
        ..IoConfig::default()
    });
    let path = args.dir.join(format!(".iotune-{}", std::process::id()));
    let opts = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true);
    let file = DmaFile::open(&path, &opts).await?;
    if !file.is_direct() {
        eprintln!(
            "iotune: warning: {} has no O_DIRECT; measuring the page cache",
            args.dir.display()
        );
    }
    let result = async {
        let size = args.file_size_mib << 20;
        eprintln!(
            "iotune: filling a {} MiB file in {}",
            args.file_size_mib,
            args.dir.display()
        );
        file.allocate(0, size).await?;
        let mut buf = file.alloc_buf(1 << 20);
        buf.resize(1 << 20);
        buf.fill(0x5a);
        let mut pos = 0;
        while pos < size {
            let (res, b) = file.write_at(pos, buf).await;
            buf = b;
            res?;
            pos += 1 << 20;
        }
        file.fdatasync().await?;
        let d = args.duration;
        let read_iops = saturated_iops(&file, false, d).await?;
        eprintln!("iotune: 4 KiB random reads: {read_iops:.0} IOPS");
        let (_, read_bandwidth) = measure(&file, false, false, 1 << 20, 8, d).await?;
        eprintln!(
            "iotune: 1 MiB sequential reads: {:.0} MB/s",
            read_bandwidth / 1e6
        );
        let write_iops = saturated_iops(&file, true, d).await?;
        eprintln!("iotune: 4 KiB random writes: {write_iops:.0} IOPS");
        let (_, write_bandwidth) = measure(&file, true, false, 1 << 20, 8, d).await?;
        eprintln!(
            "iotune: 1 MiB sequential writes: {:.0} MB/s",
            write_bandwidth / 1e6
        );
        let mountpoint = std::fs::canonicalize(&args.dir).unwrap_or(args.dir.clone());
        Ok(IoProperties {
            mountpoint: mountpoint.display().to_string(),
            read_iops,
            read_bandwidth,
            write_iops,
            write_bandwidth,
        })
    }
    .await;
    file.close().await?;
    seastar_io::fs::remove_file(&path).await?;
    result
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Plain text when the logs go to a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match args
        .runtime
        .builder()
        .map(|b| b.shards(1))
        .and_then(|b| b.build())
    {
        Ok(r) => r,
        Err(e) => fail(&e),
    };
    let output = args.output.clone();
    match runtime.run(tune(args)) {
        Ok(props) => {
            let file = IoPropertiesFile { disks: vec![props] };
            if let Err(e) = file.save(&output) {
                fail(&e);
            }
            println!("iotune: wrote {}", output.display());
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("iotune: {e}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Args);
}
