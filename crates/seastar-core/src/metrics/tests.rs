use std::collections::BTreeMap;
use std::time::Duration;

use ::metrics::{counter, describe_counter, gauge, histogram};

use super::prometheus::{ParsedFamily, parse};
use super::*;
use crate::{Runtime, shard_id, smp};

fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .handle_signals(false)
        .pin(false)
        .build()
        .unwrap()
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The samples of family `name` named `sample` with `shard` label `shard`.
fn values(
    fams: &BTreeMap<String, ParsedFamily>,
    name: &str,
    sample: &str,
    shard: &str,
) -> Vec<f64> {
    fams[name]
        .samples
        .iter()
        .filter(|s| s.name == sample && label(&s.labels, "shard") == Some(shard))
        .map(|s| s.value)
        .collect()
}

#[seastar_core::test(shards = 2)]
async fn every_shard_appears_exactly_once_in_the_exposition() {
    let text = {
        describe_counter!("t_requests_total", "Requests served.");
        smp::invoke_on_all(|| async {
            let me = shard_id();
            counter!("t_requests_total", "path" => "/a").increment(me as u64 + 1);
            gauge!("t_open").set(10.0 * (me as f64 + 1.0));
            for v in [0.001, 0.02, 0.02, 3.0, 50.0] {
                histogram!("t_latency_seconds", "op" => "get").record(v * (me as f64 + 1.0));
            }
        })
        .await
        .unwrap();
        prometheus::text().await.unwrap()
    };
    let fams = parse(&text).unwrap();
    let req = &fams["t_requests_total"];
    assert_eq!(req.kind.as_deref(), Some("counter"));
    assert_eq!(req.help.as_deref(), Some("Requests served."));
    assert_eq!(req.samples.len(), 2);
    for (shard, want) in [("0", 1.0), ("1", 2.0)] {
        let s: Vec<_> = req
            .samples
            .iter()
            .filter(|s| label(&s.labels, "shard") == Some(shard))
            .collect();
        assert_eq!(s.len(), 1, "shard {shard} once");
        assert_eq!(s[0].value, want);
        assert_eq!(
            s[0].labels,
            vec![
                ("shard".to_string(), shard.to_string()),
                ("path".to_string(), "/a".to_string())
            ]
        );
    }
    assert_eq!(fams["t_open"].kind.as_deref(), Some("gauge"));
    assert_eq!(values(&fams, "t_open", "t_open", "0"), vec![10.0]);
    assert_eq!(values(&fams, "t_open", "t_open", "1"), vec![20.0]);

    let h = "t_latency_seconds";
    assert_eq!(fams[h].kind.as_deref(), Some("histogram"));
    for shard in ["0", "1"] {
        let buckets: Vec<_> = fams[h]
            .samples
            .iter()
            .filter(|s| s.name == "t_latency_seconds_bucket")
            .filter(|s| label(&s.labels, "shard") == Some(shard))
            .collect();
        assert_eq!(buckets.len(), DEFAULT_BUCKETS.len() + 1);
        let les: Vec<f64> = buckets
            .iter()
            .map(|s| match label(&s.labels, "le").unwrap() {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap(),
            })
            .collect();
        assert!(les.windows(2).all(|w| w[0] < w[1]), "le ascending");
        assert_eq!(les.last(), Some(&f64::INFINITY));
        let counts: Vec<f64> = buckets.iter().map(|s| s.value).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "cumulative");
        assert_eq!(counts.last(), Some(&5.0));
        assert_eq!(
            values(&fams, h, "t_latency_seconds_count", shard),
            vec![5.0]
        );
        assert!(
            buckets
                .iter()
                .all(|s| label(&s.labels, "op") == Some("get"))
        );
    }
    // Shard 0: 0.001 <= 0.005; 0.02 <= 0.025 (twice); 3.0 <= 5; 50 in +Inf.
    let le = |shard: &str, le: &str| {
        fams[h]
            .samples
            .iter()
            .find(|s| {
                s.name == "t_latency_seconds_bucket"
                    && label(&s.labels, "shard") == Some(shard)
                    && label(&s.labels, "le") == Some(le)
            })
            .unwrap()
            .value
    };
    assert_eq!(le("0", "0.005"), 1.0);
    assert_eq!(le("0", "0.01"), 1.0);
    assert_eq!(le("0", "0.025"), 3.0);
    assert_eq!(le("0", "2.5"), 3.0);
    assert_eq!(le("0", "5"), 4.0);
    assert_eq!(le("0", "10"), 4.0);
    assert_eq!(le("1", "0.005"), 1.0);
    assert_eq!(le("1", "0.05"), 3.0);
    let sum0 = values(&fams, h, "t_latency_seconds_sum", "0")[0];
    assert!((sum0 - 53.041).abs() < 1e-9, "{sum0}");
}

#[seastar_core::test]
async fn a_bucket_bound_is_inclusive() {
    set_buckets("t_incl_", &[1.0, 2.0]).unwrap();
    let h = histogram!("t_incl_x");
    h.record(1.0);
    h.record(2.0);
    h.record(2.5);
    h.record(f64::NAN);
    let snap = local_snapshot();
    let s = snap.samples.iter().find(|s| s.name == "t_incl_x").unwrap();
    let Value::Histogram(v) = &s.value else {
        panic!("not a histogram")
    };
    assert_eq!(v.bounds, vec![1.0, 2.0]);
    assert_eq!(v.buckets, vec![1, 1, 1]);
    assert_eq!(v.count, 3);
    assert_eq!(v.sum, 5.5);
}

#[seastar_core::test(shards = 2)]
async fn a_handle_used_on_another_shard_records_there() {
    let c = counter!("t_moved_total");
    c.increment(5);
    let c2 = c.clone();
    smp::submit_to(1, move || async move { c2.increment(7) })
        .await
        .unwrap();
    let snap = gather().await.unwrap();
    let get = |shard: usize| {
        snap.shards[shard]
            .samples
            .iter()
            .find(|s| s.name == "t_moved_total")
            .map(|s| s.value.clone())
    };
    assert_eq!(get(0), Some(Value::Counter(5)));
    assert_eq!(get(1), Some(Value::Counter(7)));
}

#[test]
fn recording_outside_a_shard_is_a_no_op() {
    let _ = install();
    counter!("t_outside_total").increment(1);
    gauge!("t_outside").set(1.0);
    let text = runtime(1).run(async { prometheus::text().await.unwrap() });
    assert!(!text.contains("t_outside"));
}

#[test]
fn a_new_runtime_starts_from_empty_registries() {
    runtime(1).run(async { counter!("t_fresh_total").increment(3) });
    let text = runtime(1).run(async { prometheus::text().await.unwrap() });
    assert!(!text.contains("t_fresh_total"));
}

#[seastar_core::test]
async fn gauges_go_up_and_down_and_counters_take_absolute_values() {
    let g = gauge!("t_updown");
    g.increment(5.0);
    g.decrement(1.5);
    let c = counter!("t_abs_total");
    c.absolute(10);
    c.absolute(4);
    let snap = local_snapshot();
    let get = |n: &str| {
        snap.samples
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(get("t_updown"), Value::Gauge(3.5));
    assert_eq!(get("t_abs_total"), Value::Counter(10));
}

#[seastar_core::test]
async fn names_labels_and_help_are_escaped_and_parse_back() {
    let text = {
        describe_counter!("t.dotted", "Line one\nback\\slash");
        counter!("t.dotted", "9bad-label" => "a\"b\\c\nd").increment(2);
        prometheus::text().await.unwrap()
    };
    let fams = parse(&text).unwrap();
    let f = &fams["t_dotted"];
    assert_eq!(f.help.as_deref(), Some("Line one\nback\\slash"));
    assert_eq!(
        f.samples[0].labels[1],
        ("_9bad_label".to_string(), "a\"b\\c\nd".to_string())
    );
    assert_eq!(f.samples[0].value, 2.0);
}

#[seastar_core::test(shards = 2)]
async fn builtin_metrics_count_tasks_and_smp_messages_per_pair() {
    let text = {
        for _ in 0..10 {
            smp::submit_to(1, || async {}).await.unwrap();
        }
        prometheus::text().await.unwrap()
    };
    let fams = parse(&text).unwrap();
    let tasks = "seastar_reactor_tasks_run_total";
    for shard in ["0", "1"] {
        assert!(values(&fams, tasks, tasks, shard)[0] >= 10.0);
    }
    let sent = &fams["seastar_smp_messages_sent_total"];
    let pair = |from: &str, to: &str| {
        sent.samples
            .iter()
            .filter(|s| {
                label(&s.labels, "shard") == Some(from) && label(&s.labels, "to") == Some(to)
            })
            .map(|s| s.value)
            .collect::<Vec<_>>()
    };
    assert!(pair("0", "1")[0] >= 10.0);
    assert!(pair("1", "0")[0] >= 10.0, "replies");
    assert!(pair("0", "0").is_empty(), "no self pair");
    let rq = &fams["seastar_reactor_run_queue_length"];
    assert_eq!(rq.kind.as_deref(), Some("gauge"));
    assert!(
        rq.samples
            .iter()
            .any(|s| label(&s.labels, "group") == Some("main"))
    );
    for name in [
        "seastar_reactor_polls_total",
        "seastar_reactor_sleeps_total",
        "seastar_reactor_batched_sleeps_total",
        "seastar_reactor_stalls_total",
        "seastar_reactor_busy_seconds_total",
        "seastar_reactor_cpu_seconds_total",
        "seastar_reactor_utilization",
        "seastar_reactor_group_runtime_seconds_total",
        "seastar_smp_ring_full_total",
        "seastar_smp_backlog_waits_total",
    ] {
        assert!(!fams[name].samples.is_empty(), "{name}");
        assert!(fams[name].help.is_some(), "{name}");
    }
    assert_eq!(fams["seastar_smp_ring_full_total"].samples.len(), 2);
    let u = values(
        &fams,
        "seastar_reactor_utilization",
        "seastar_reactor_utilization",
        "0",
    )[0];
    assert!((0.0..=1.0).contains(&u), "{u}");
}

#[test]
fn a_stall_is_counted() {
    let stalls = Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .pin(false)
        .task_quota(Duration::from_millis(1))
        .blocked_reactor_notify(Duration::from_millis(5))
        .build()
        .unwrap()
        .run(async {
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_millis(60) {
                std::hint::spin_loop();
            }
            crate::yield_now().await;
            let snap = local_snapshot();
            let s = snap
                .samples
                .iter()
                .find(|s| s.name == "seastar_reactor_stalls_total");
            s.unwrap().value.clone()
        });
    let Value::Counter(n) = stalls else { panic!() };
    assert_eq!(n, 1, "one stall, counted once however long it lasts");
}

#[seastar_core::test(shards = 2)]
async fn user_collectors_run_on_every_shard() {
    fn collect(c: &mut Collector<'_>) {
        let shard = c.shard().to_string();
        c.gauge("t_collected", "From a collector.", &[("me", &shard)], 1.0);
    }
    let snap = {
        register_collector("t_collector", collect);
        gather().await.unwrap()
    };
    for (i, s) in snap.shards.iter().enumerate() {
        let mine: Vec<_> = s
            .samples
            .iter()
            .filter(|s| s.name == "t_collected")
            .collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].labels, vec![("me".to_string(), i.to_string())]);
    }
    assert_eq!(snap.help("t_collected"), Some("From a collector."));
}

#[test]
fn parse_rejects_malformed_exposition() {
    assert!(parse("x 1\n").is_err(), "no TYPE");
    assert!(parse("# TYPE x counter\nx{a=\"1} 1\n").is_err());
    assert!(parse("# TYPE x counter\nx{a=\"\\q\"} 1\n").is_err());
    assert!(parse("# TYPE x counter\nx one\n").is_err());
    assert!(parse("# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\n# TYPE x counter\nx 2\n").is_err());
    assert!(parse("# TYPE x widget\n").is_err());
    let ok = parse("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n").unwrap();
    assert_eq!(ok["h"].samples.len(), 3);
}

#[test]
fn bucket_lists_are_validated() {
    assert_eq!(set_buckets("t_b", &[]), Err(BucketsError::Empty));
    assert_eq!(
        set_buckets("t_b", &[1.0, 1.0]),
        Err(BucketsError::NotIncreasing)
    );
    assert_eq!(
        set_buckets("t_b", &[1.0, f64::INFINITY]),
        Err(BucketsError::NotIncreasing)
    );
    set_buckets("t_b", &[1.0]).unwrap();
    set_buckets("t_bb", &[2.0]).unwrap();
    assert_eq!(&*buckets_for("t_bbx"), &[2.0]);
    assert_eq!(&*buckets_for("t_bx"), &[1.0]);
    assert_eq!(&*buckets_for("other"), DEFAULT_BUCKETS);
}

/// The rules `promtool check metrics` applies to names: counters end in
/// `_total`, and units are base units (seconds, bytes), never micro- or
/// milliseconds.
#[seastar_core::test]
async fn builtin_metrics_are_named_in_base_units() {
    let text = {
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        prometheus::text().await.unwrap()
    };
    let fams = parse(&text).unwrap();
    for (name, fam) in &fams {
        for bad in [
            "microsecond",
            "millisecond",
            "_us_",
            "_ms_",
            "_usec",
            "_msec",
        ] {
            assert!(!name.contains(bad), "{name}: not a base unit");
        }
        if fam.kind.as_deref() == Some("counter") {
            assert!(name.ends_with("_total"), "{name}: a counter ends in _total");
        }
    }
    let cpu = "seastar_reactor_cpu_seconds_total";
    let secs = values(&fams, cpu, cpu, "0")[0];
    assert!(
        secs > 0.0 && secs < 3600.0,
        "{cpu} = {secs}: seconds, not micro"
    );
}
