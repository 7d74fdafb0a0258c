//! The stall detector reports a task that blocks its shard.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seastar_core::Runtime;
use seastar_core::task::{SchedulingGroup, spawn_local_in};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_blocking_task_is_reported_with_its_group() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .blocked_reactor_notify(Duration::from_millis(5))
        .build()
        .unwrap()
        .run(async {
            let g = SchedulingGroup::new("stally", 100).unwrap();
            spawn_local_in(g, async {
                // Deliberately block the shard (never do this in real code).
                std::thread::sleep(Duration::from_millis(60));
            })
            .await
            .unwrap();
        });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("reactor stalled"),
        "no stall report in: {text}"
    );
    assert!(
        text.contains("stally"),
        "stall report does not name the group: {text}"
    );
}
