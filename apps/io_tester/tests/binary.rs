//! Runs the io_tester binary on a small file and checks its report.

use std::process::Command;

fn io_tester() -> Command {
    Command::new(env!("CARGO_BIN_EXE_io_tester"))
}

#[test]
fn reports_every_job_as_json_with_latency_percentiles() {
    let dir = std::env::temp_dir().join(format!("io-tester-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("data");
    let props = dir.join("io.json");
    std::fs::write(
        &props,
        r#"{"disks":[{"mountpoint":"/","read_iops":50000,"read_bandwidth":1e9,"write_iops":20000,"write_bandwidth":5e8}]}"#,
    )
    .unwrap();
    let out = io_tester()
        .arg("--file")
        .arg(&file)
        .arg("--io-properties")
        .arg(&props)
        .args([
            "--file-size",
            "4M",
            "--duration",
            "300ms",
            "--smp",
            "1",
            "--json",
            "--quiet",
        ])
        .args(["--job", "name=lat,shares=1000,op=randread,size=4k,depth=1"])
        .args(["--job", "name=bg,shares=100,op=seqwrite,size=64k,depth=4"])
        .args(["--job", "name=more,class=lat,op=seqread,size=8k,depth=2"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    for j in jobs {
        assert!(j["requests"].as_u64().unwrap() > 0, "{j}");
        assert_eq!(j["errors"], 0);
        let (p50, p99, p999) = (
            j["p50_us"].as_f64().unwrap(),
            j["p99_us"].as_f64().unwrap(),
            j["p999_us"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{j}");
    }
    assert_eq!(jobs[2]["class"], "lat", "jobs naming a class share it");
    assert_eq!(jobs[2]["shares"], 1000);
    assert_eq!(jobs[1]["op"], "seqwrite");
    assert_eq!(report["shards"], 1);
    let classes = report["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2, "lat and bg");
    assert_eq!(classes[0]["class"], "lat");
    assert_eq!(
        classes[0]["requests"].as_u64().unwrap(),
        jobs[0]["requests"].as_u64().unwrap() + jobs[2]["requests"].as_u64().unwrap()
    );
}

#[test]
fn bad_jobs_and_files_fail_with_a_message() {
    let out = io_tester()
        .args(["--file", "/tmp/x", "--job", "name=x,op=nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("op is randread"));
    let out = io_tester()
        .args([
            "--file",
            "/proc/no/such/dir/f",
            "--duration",
            "100ms",
            "--smp",
            "1",
            "--job",
            "name=x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/proc/no/such/dir/f"));
}
