//! The scheduler's metrics: names, labels, values, and handles registered
//! once per class and shard (not looked up per request).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{TestDir, pattern};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use seastar_io::sched::{self, IoConfig};
use seastar_io::{DmaFile, IoClass, OpenOptions};

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    fn absolute(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, v: f64) {
        self.0.store(v as u64, Ordering::Relaxed);
    }
}

/// Records every metric by "name{labels}"; counts registrations.
#[derive(Default, Clone)]
struct TestRecorder {
    cells: Arc<Mutex<BTreeMap<String, Arc<Cell>>>>,
    registrations: Arc<AtomicU64>,
}

impl TestRecorder {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.cells.lock().unwrap().entry(name).or_default().clone()
    }
    fn value(&self, name: &str) -> u64 {
        self.cells
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn requests_bytes_and_queue_length_are_recorded_per_class_and_op() {
    let dir = TestDir::new("metrics");
    let path = dir.path("f");
    let rec = TestRecorder::default();
    metrics::with_local_recorder(&rec, || {
        seastar_core::block_on(async move {
            sched::configure_shard(IoConfig {
                max_requests: Some(1),
                ..IoConfig::default()
            });
            let class = IoClass::new("reads", 100);
            let opts = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .class(class);
            let f = DmaFile::open(&path, &opts).await.unwrap();
            let mut buf = f.alloc_buf(8192);
            buf.extend_from_slice(&pattern(0, 8192));
            let (n, _) = f.write_at(0, buf).await;
            assert_eq!(n.unwrap(), 8192);
            // Eight concurrent reads with one admitted at a time: seven queue.
            let reads = (0..8u64).map(|i| f.read_at((i % 2) * 4096, 4096));
            for r in futures::future::join_all(reads).await {
                assert_eq!(r.unwrap().len(), 4096);
            }
        })
    });
    assert_eq!(
        rec.value("seastar_io_requests_total{class=reads,op=write}"),
        1
    );
    assert_eq!(
        rec.value("seastar_io_bytes_total{class=reads,op=write}"),
        8192
    );
    assert_eq!(
        rec.value("seastar_io_requests_total{class=reads,op=read}"),
        8
    );
    assert_eq!(
        rec.value("seastar_io_bytes_total{class=reads,op=read}"),
        8 * 4096
    );
    assert_eq!(
        rec.value("seastar_io_queue_length{class=reads}"),
        0,
        "drained at the end"
    );
    assert_eq!(
        rec.registrations.load(Ordering::Relaxed),
        5,
        "four counters and one gauge, registered once for nine requests"
    );
}
