//! DmaFile: reads, writes, alignment, bulk reads, sizes, errors.

mod common;

use std::io::ErrorKind;

use common::{TestDir, pattern, run};
use seastar_io::{AlignedBuf, DmaFile, FileError, IoClass, OpenOptions, sched};

fn rw() -> OpenOptions {
    OpenOptions::new().read(true).write(true).create(true)
}

/// Writes `pattern(0, len)` (len aligned) through a DmaFile.
async fn fill(f: &DmaFile, len: usize) {
    let mut buf = f.alloc_buf(len);
    buf.extend_from_slice(&pattern(0, len));
    let (n, _) = f.write_at(0, buf).await;
    assert_eq!(n.unwrap(), len);
}

#[seastar_core::test]
async fn write_then_read_round_trips_at_any_offset_and_length() {
    let dir = TestDir::new("roundtrip");
    let path = dir.path("f");

    let f = DmaFile::open(&path, &rw()).await.unwrap();
    eprintln!(
        "direct I/O: {} alignment {:?}",
        f.is_direct(),
        f.alignment()
    );
    fill(&f, 3 * 4096).await;
    assert_eq!(f.size().await.unwrap(), 3 * 4096);
    for (pos, len) in [
        (0u64, 4096usize),
        (1, 1),
        (4095, 2),
        (100, 9000),
        (8192, 4096),
        (12_000, 1000),
        (0, 12_288),
    ] {
        let got = f.read_at(pos, len).await.unwrap();
        let want_len = len.min(12_288usize.saturating_sub(pos as usize));
        assert_eq!(&got[..], &pattern(pos, want_len)[..], "pos {pos} len {len}");
    }
    assert!(
        f.read_at(20_000, 10).await.unwrap().is_empty(),
        "past the end"
    );
    assert!(f.read_at(5, 0).await.unwrap().is_empty());
    f.close().await.unwrap();
}

#[seastar_core::test]
async fn read_aligned_reports_a_short_count_at_end_of_file() {
    let dir = TestDir::new("aligned");
    let path = dir.path("f");

    let f = DmaFile::open(&path, &rw()).await.unwrap();
    fill(&f, 4096).await;
    let (n, buf) = f.read_aligned(0, f.alloc_buf(8192)).await;
    assert_eq!(n.unwrap(), 4096);
    assert_eq!(&buf[..], &pattern(0, 4096)[..]);
    let (n, buf) = f.read_aligned(4096, buf).await;
    assert_eq!((n.unwrap(), buf.len()), (0, 0));
}

#[seastar_core::test]
async fn unaligned_direct_write_is_rejected_naming_the_file() {
    let dir = TestDir::new("unaligned");
    let path = dir.path("f");

    let f = DmaFile::open(&path, &rw()).await.unwrap();
    if !f.is_direct() {
        eprintln!("skipped: the file system has no O_DIRECT, so there is no alignment rule");
        return;
    }
    let (res, buf) = f
        .write_at(1, AlignedBuf::from_slice(&[1; 4096], 4096))
        .await;
    let e = res.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(FileError::of(&e).unwrap().path(), path);
    assert_eq!(buf.len(), 4096, "the buffer comes back");
    let (res, _) = f.write_at(0, AlignedBuf::from_slice(&[1; 100], 4096)).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(f.size().await.unwrap(), 0, "nothing was written");
}

#[seastar_core::test]
async fn buffered_mode_accepts_any_offset() {
    let dir = TestDir::new("buffered");
    let path = dir.path("f");

    let f = DmaFile::open(&path, &rw().direct(false)).await.unwrap();
    assert!(!f.is_direct());
    assert_eq!(f.alignment().read, 1);
    let (n, _) = f.write_at(3, AlignedBuf::from_slice(b"abc", 512)).await;
    assert_eq!(n.unwrap(), 3);
    assert_eq!(&f.read_at(0, 10).await.unwrap()[..], b"\0\0\0abc");
}

#[seastar_core::test]
async fn read_bulk_merges_nearby_ranges_into_fewer_requests() {
    let dir = TestDir::new("bulk");
    let path = dir.path("f");

    let class = IoClass::new("bulk", 100);
    let f = DmaFile::open(&path, &rw().class(class.clone()))
        .await
        .unwrap();
    fill(&f, 64 * 1024).await;
    let base = sched::class_stats(&class).0;
    let ranges = [
        (8192u64, 100usize),
        (0, 10),
        (8292, 4000),
        (60_000, 10_000),
        (30, 5),
        (500_000, 4),
    ];
    let got = f.read_bulk(&ranges).await;
    for (r, g) in ranges.iter().zip(&got) {
        let g = g.as_ref().unwrap();
        let want = r.1.min(65_536usize.saturating_sub(r.0 as usize));
        assert_eq!(&g[..], &pattern(r.0, want)[..], "{r:?}");
    }
    let requests = sched::class_stats(&class).0 - base;
    assert!(
        requests <= 4,
        "{requests} requests for 6 ranges in 4 groups"
    );
}

#[seastar_core::test]
async fn truncate_allocate_stat_and_sync() {
    let dir = TestDir::new("sizes");
    let path = dir.path("f");

    let f = DmaFile::open(&path, &rw()).await.unwrap();
    f.truncate(10_000).await.unwrap();
    assert_eq!(f.size().await.unwrap(), 10_000);
    assert_eq!(&f.read_at(9_990, 100).await.unwrap()[..], &[0; 10]);
    f.allocate(0, 1 << 20).await.unwrap();
    let st = f.stat().await.unwrap();
    assert_eq!(st.len(), 10_000, "allocate keeps the size");
    assert!(
        st.blocks() * 512 >= 1 << 20,
        "space reserved: {} blocks",
        st.blocks()
    );
    assert!(st.is_file());
    f.truncate(0).await.unwrap();
    assert_eq!(f.size().await.unwrap(), 0);
    f.fdatasync().await.unwrap();
    f.fsync().await.unwrap();
}

#[seastar_core::test]
async fn open_errors_carry_the_path_and_kind() {
    let dir = TestDir::new("errors");
    let root = dir.root().to_path_buf();

    let missing = root.join("missing");
    let e = DmaFile::open(&missing, &OpenOptions::new().read(true))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let fe = FileError::of(&e).unwrap();
    assert_eq!(
        (fe.op(), fe.path(), fe.raw_os_error()),
        ("open", missing.as_path(), Some(libc::ENOENT))
    );

    let e = DmaFile::open(&root, &OpenOptions::new().write(true))
        .await
        .unwrap_err();
    assert_eq!(
        FileError::of(&e).unwrap().raw_os_error(),
        Some(libc::EISDIR)
    );

    let e = DmaFile::open(&missing, &OpenOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = DmaFile::open(&missing, &OpenOptions::new().read(true).create(true))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    // Writing through a read-only descriptor: EBADF, with the path.
    let p = root.join("ro");
    DmaFile::open(&p, &rw())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let f = DmaFile::open(&p, &OpenOptions::new().read(true))
        .await
        .unwrap();
    let (res, _) = f.write_at(0, f.alloc_buf(4096).tap_resize(4096)).await;
    let e = res.unwrap_err();
    assert_eq!(FileError::of(&e).unwrap().raw_os_error(), Some(libc::EBADF));
    assert!(e.to_string().contains("ro"), "{e}");
}

trait TapResize {
    fn tap_resize(self, n: usize) -> Self;
}
impl TapResize for AlignedBuf {
    fn tap_resize(mut self, n: usize) -> Self {
        self.resize(n);
        self
    }
}

#[seastar_core::test]
async fn clones_share_the_descriptor_until_the_last_closes() {
    let dir = TestDir::new("clones");
    let path = dir.path("f");

    let f = DmaFile::open(&path, &rw()).await.unwrap();
    let g = f.with_class(IoClass::new("other", 10));
    assert_eq!(g.class().name(), "other");
    f.close().await.unwrap();
    fill(&g, 4096).await;
    assert_eq!(g.size().await.unwrap(), 4096);
    g.close().await.unwrap();
}

#[seastar_core::test]
async fn many_concurrent_reads_complete_on_either_backend() {
    let dir = TestDir::new("concurrent");
    let path = dir.path("f");

    let f = DmaFile::open(&path, &rw()).await.unwrap();
    fill(&f, 256 * 1024).await;
    let reads = (0..64u64).map(|i| {
        let f = f.clone();
        async move { (i, f.read_at(i * 4096, 4096).await.unwrap()) }
    });
    for (i, buf) in futures::future::join_all(reads).await {
        assert_eq!(&buf[..], &pattern(i * 4096, 4096)[..]);
    }
    assert_eq!(sched::stats().in_flight, 0);
}

/// The attribute's backend wins over `SEASTAR_REACTOR_BACKEND`: this runs on
/// epoll in every pass of the suite.
#[seastar_core::test(backend = "epoll")]
async fn epoll_backend_runs_file_io_on_the_blocking_pool() {
    let dir = TestDir::new("epoll");
    let path = dir.path("f");
    assert_eq!(
        seastar_core::runtime::backend(),
        seastar_core::BackendKind::Epoll
    );
    let f = DmaFile::open(&path, &rw()).await.unwrap();
    fill(&f, 8192).await;
    assert_eq!(
        &f.read_at(4000, 200).await.unwrap()[..],
        &pattern(4000, 200)[..]
    );
}

#[seastar_core::test]
async fn falls_back_to_buffered_io_where_o_direct_is_refused() {
    // ramfs has no direct I/O: open(O_DIRECT) fails with EINVAL.
    let fs = match common::SmallFs::mount_fs("ramfs", "ramfs", "mode=0755") {
        Ok(m) => m,
        Err(reason) => {
            println!("skipped: cannot mount a ramfs: {reason}");
            return;
        }
    };
    let path = fs.0.join("f");

    let f = DmaFile::open(&path, &rw().create_new(true)).await.unwrap();
    assert!(!f.is_direct(), "ramfs refuses O_DIRECT");
    assert_eq!(f.alignment().read, 1);
    let (n, _) = f.write_at(5, AlignedBuf::from_slice(b"hello", 512)).await;
    assert_eq!(n.unwrap(), 5);
    assert_eq!(&f.read_at(4, 100).await.unwrap()[..], b"\0hello");
    assert_eq!(f.stat().await.unwrap().dio_alignment(), None);
}

#[test]
fn permission_errors_name_the_file() {
    let dir = TestDir::new("perm");
    let path = dir.path("immutable");
    std::fs::write(&path, b"x").unwrap();
    // Root bypasses permission bits, but not the immutable attribute.
    let ok = std::process::Command::new("chattr")
        .arg("+i")
        .arg(&path)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: chattr +i is not possible here");
        return;
    }
    let p = path.clone();
    let res = run(async move {
        DmaFile::open(&p, &OpenOptions::new().write(true))
            .await
            .map(drop)
    });
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(&path)
        .status();
    let e = res.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let fe = FileError::of(&e).unwrap();
    assert_eq!(
        (fe.op(), fe.path(), fe.raw_os_error()),
        ("open", path.as_path(), Some(libc::EPERM))
    );
}

#[seastar_core::test]
async fn dropped_requests_give_back_their_admission() {
    let dir = TestDir::new("dropped");
    let path = dir.path("f");

    sched::configure_shard(sched::IoConfig {
        max_requests: Some(2),
        ..sched::IoConfig::default()
    });
    let f = DmaFile::open(&path, &rw()).await.unwrap();
    fill(&f, 64 * 1024).await;
    // Admission alone, deterministically: two permits granted, eight
    // waiting; dropping them all (granted and waiting) frees everything.
    let class = IoClass::new("dropped", 100);
    let mut admits: Vec<_> = (0..10)
        .map(|_| Box::pin(sched::admit(&class, sched::Dir::Read, 4096)))
        .collect();
    let mut granted = Vec::new();
    for a in &mut admits {
        if let std::task::Poll::Ready(p) = futures::poll!(a.as_mut()) {
            granted.push(p);
        }
    }
    assert_eq!((granted.len(), sched::stats().in_flight), (2, 2));
    assert_eq!(sched::class_stats(&class), (2, 8));
    drop(admits);
    drop(granted);
    assert_eq!(sched::stats().in_flight, 0);
    assert_eq!(sched::class_stats(&class), (2, 0));
    // Real reads abandoned after one poll: on io_uring two are
    // submitted and eight queued; on epoll the blocking pool may finish
    // one within its first poll, so only the bound is exact.
    let mut reads: Vec<_> = (0..10u64)
        .map(|i| Box::pin(f.read_at(i * 4096, 4096)))
        .collect();
    for r in &mut reads {
        let _ = futures::poll!(r.as_mut());
        assert!(sched::stats().in_flight <= 2);
    }
    drop(reads);
    assert_eq!(sched::stats().in_flight, 0);
    // The queue still admits, and reads still return the right bytes.
    let got = futures::future::join_all((0..4u64).map(|i| f.read_at(i * 4096 + 1, 10))).await;
    for (i, g) in got.into_iter().enumerate() {
        assert_eq!(&g.unwrap()[..], &pattern(i as u64 * 4096 + 1, 10)[..]);
    }
}
