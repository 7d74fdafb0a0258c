//! Runs iotune on a small file and reads back what it wrote.

use seastar_io::sched::IoPropertiesFile;

#[test]
fn writes_positive_figures_the_scheduler_can_load() {
    let dir = std::env::temp_dir().join(format!("iotune-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("io_properties.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iotune"))
        .arg("--dir")
        .arg(&dir)
        .arg("--output")
        .arg(&output)
        .args(["--file-size-mib", "8", "--duration", "0.2", "--smp", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let props = IoPropertiesFile::load(&output).unwrap();
    let d = &props.disks[0];
    assert!(
        d.read_iops > 0.0
            && d.write_iops > 0.0
            && d.read_bandwidth > 0.0
            && d.write_bandwidth > 0.0,
        "{d:?}"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "the test file is removed"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_directory_fails_with_its_path() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iotune"))
        .args(["--dir", "/no/such/dir", "--duration", "0.1", "--smp", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/dir"));
}
