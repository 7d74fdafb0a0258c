//! [`Admin`]: what the admin server says about the app, and who may ask.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use seastar_io::IoClass;

use super::sampler::Sources;

/// Figures an app adds to each shard's entry in `/api/v1/shards` (under
/// `app`), computed on that shard: `(name, value)` pairs, e.g. memcached's
/// items, hit ratio and evictions.
pub type ShardView = Arc<dyn Fn() -> Vec<(String, f64)> + Send + Sync>;

/// The admin server's settings, shared by every shard.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) app: String,
    pub(crate) app_version: String,
    pub(crate) network_stack: String,
    pub(crate) options: BTreeMap<String, String>,
    pub(crate) token: Option<String>,
    pub(crate) sources: Sources,
    pub(crate) shard_view: Option<ShardView>,
    pub(crate) io_classes: Vec<IoClass>,
    pub(crate) shutdown_timeout: Duration,
}

/// The admin REST API and dashboard of an app: what it reports and who
/// may read it. Build one, then [`start`](super::AdminServer::start) it on an address
/// (usually from [`AdminArgs`](super::AdminArgs)).
///
/// ```
/// use seastar_http::admin::Admin;
///
/// let admin = Admin::new("httpd", "0.1.0")
///     .option("port", "10000")
///     .token(Some("s3cret".into()))
///     .requests_metric("seastar_http_requests_total");
/// # drop(admin);
/// ```
#[derive(Clone)]
pub struct Admin {
    pub(crate) config: Config,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("Admin")
            .field("app", &c.app)
            .field("app_version", &c.app_version)
            .field("network_stack", &c.network_stack)
            .field("options", &c.options)
            .field("token", &c.token.as_ref().map(|_| "<set>"))
            .field("requests_metric", &c.sources.requests)
            .field("latency_metric", &c.sources.latency)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Settings for app `app` at version `version`: no options listed, no
    /// token, requests and latency read from seastar-http's own metrics,
    /// network stack `posix`, stops within 2 s.
    pub fn new(app: &str, version: &str) -> Admin {
        Admin {
            config: Config {
                app: app.to_owned(),
                app_version: version.to_owned(),
                network_stack: "posix".to_owned(),
                options: BTreeMap::new(),
                token: None,
                sources: Sources {
                    requests: vec![crate::metrics::REQUESTS_TOTAL.to_owned()],
                    latency: crate::metrics::REQUEST_DURATION.to_owned(),
                },
                shard_view: None,
                io_classes: Vec::new(),
                shutdown_timeout: Duration::from_secs(2),
            },
        }
    }

    /// Lists an option in force under `/api/v1/runtime`'s `options`.
    pub fn option(mut self, name: &str, value: impl fmt::Display) -> Admin {
        self.config
            .options
            .insert(name.to_owned(), value.to_string());
        self
    }

    /// Lists the runtime's options (`--smp`, `--reactor-backend`, ...).
    pub fn runtime_args(self, r: &seastar_core::runtime::RuntimeArgs) -> Admin {
        let or_auto = |v: Option<String>| v.unwrap_or_else(|| "auto".to_owned());
        self.option("smp", or_auto(r.smp.map(|n| n.to_string())))
            .option("cpuset", or_auto(r.cpuset.clone()))
            .option("reactor-backend", &r.reactor_backend)
            .option("poll-mode", r.poll_mode)
            .option("idle-poll-time-us", r.idle_poll_time_us)
            .option("smp-poll-time-us", r.smp_poll_time_us)
            .option("file-submit-batch", r.file_submit_batch)
            .option("task-quota-ms", r.task_quota_ms)
            .option("blocked-reactor-notify-ms", r.blocked_reactor_notify_ms)
            .option("shutdown-timeout", r.shutdown_timeout)
    }

    /// The network stack to report (`posix` unless told).
    pub fn network_stack(mut self, stack: &str) -> Admin {
        self.config.network_stack = stack.to_owned();
        self
    }

    /// Requires `Authorization: Bearer <token>` on `/api/*` (the dashboard
    /// page itself holds no data and is served to anyone; it reads the
    /// token from its URL's fragment, `/#token=...`).
    pub fn token(mut self, token: Option<String>) -> Admin {
        self.config.token = token.filter(|t| !t.is_empty());
        self
    }

    /// The counter whose total (all labels) counts requests, for
    /// requests per second (default `seastar_http_requests_total`).
    pub fn requests_metric(self, name: &str) -> Admin {
        self.requests_metrics(&[name])
    }

    /// Several counters whose totals add up to the requests (e.g.
    /// memcached's gets and sets).
    pub fn requests_metrics(mut self, names: &[&str]) -> Admin {
        self.config.sources.requests = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// The histogram of request latencies in seconds (all label sets
    /// merged), for percentiles (default
    /// `seastar_http_request_duration_seconds`).
    pub fn latency_metric(mut self, name: &str) -> Admin {
        self.config.sources.latency = name.to_owned();
        self
    }

    /// Adds the app's own per-shard figures (run on each shard).
    pub fn shard_view(
        mut self,
        view: impl Fn() -> Vec<(String, f64)> + Send + Sync + 'static,
    ) -> Admin {
        self.config.shard_view = Some(Arc::new(view));
        self
    }

    /// Names an I/O class for `/api/v1/io` (with its shares and dispatch
    /// counts; classes seen only in the metrics are listed without).
    pub fn io_class(mut self, class: IoClass) -> Admin {
        self.config.io_classes.push(class);
        self
    }

    /// How long a stop waits for open admin requests (default 2 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Admin {
        self.config.shutdown_timeout = d;
        self
    }
}
