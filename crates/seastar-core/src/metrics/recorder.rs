//! The process-wide `metrics::Recorder` that dispatches to the calling
//! shard's registry.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::reactor;

/// Why [`install`](super::install) failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The process already uses another `metrics` recorder.
    #[error("another metrics recorder is already installed")]
    OtherRecorder,
}

/// The recorder: `register_*` returns a handle on the calling shard's
/// registry (a no-op handle outside any shard); `describe_*` keeps the
/// help text for the exporters.
#[derive(Debug, Default)]
pub struct ShardRecorder(());

/// Help texts by metric name. Written by `describe_*!` (rare: at start-up),
/// read by exporters; holds no shard's figures.
static DESCRIPTIONS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

fn describe(key: KeyName, unit: Option<Unit>, description: SharedString) {
    let mut help = description.to_string();
    if let Some(u) = unit {
        if u != Unit::Count {
            help = format!("{help} (unit: {})", u.as_str());
        }
    }
    let mut d = DESCRIPTIONS.lock().unwrap_or_else(|e| e.into_inner());
    d.insert(key.as_str().to_owned(), help);
}

/// Every description given so far.
pub(super) fn descriptions() -> BTreeMap<String, String> {
    DESCRIPTIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

impl Recorder for ShardRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        describe(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        reactor::try_with(|s| Counter::from_arc(s.metrics().counter(key)))
            .unwrap_or_else(|()| Counter::noop())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        reactor::try_with(|s| Gauge::from_arc(s.metrics().gauge(key)))
            .unwrap_or_else(|()| Gauge::noop())
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        reactor::try_with(|s| Histogram::from_arc(s.metrics().histogram(key)))
            .unwrap_or_else(|()| Histogram::noop())
    }
}

static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Makes [`ShardRecorder`] the process's `metrics` recorder. Idempotent;
/// runs by itself when the first shard starts, so `counter!` and friends
/// work in any runtime. To use another recorder instead, install it before
/// the first runtime starts.
///
/// ```
/// // Either ours already is installed (Ok) or another one is.
/// let _ = seastar_core::metrics::install();
/// ```
pub fn install() -> Result<(), InstallError> {
    let ours = *INSTALLED.get_or_init(|| metrics::set_global_recorder(ShardRecorder(())).is_ok());
    if ours {
        Ok(())
    } else {
        Err(InstallError::OtherRecorder)
    }
}
