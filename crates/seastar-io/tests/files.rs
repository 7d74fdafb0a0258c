//! The buffered File, fs operations, streams, and ENOSPC.

mod common;

use std::io::ErrorKind;

use common::{SmallFs, TestDir, pattern};
use futures::TryStreamExt;
use seastar_io::fs::{self, EntryType};
use seastar_io::{
    DmaFile, File, FileError, FileInputStream, FileOutputStream, InputStreamOptions, OpenOptions,
    OutputStreamOptions,
};

#[seastar_core::test]
async fn buffered_file_reads_and_writes_at_any_offset() {
    let dir = TestDir::new("file");
    let path = dir.path("f");

    let f = File::create(&path).await.unwrap();
    f.write_all_at(0, pattern(0, 10_000)).await.unwrap();
    f.write_all_at(10_000, &b"tail"[..]).await.unwrap();
    let (n, buf) = f
        .read_at(9_998, vec![0u8; 0].into_iter().collect::<Vec<u8>>())
        .await;
    assert_eq!(
        (n.unwrap(), buf.len()),
        (0, 0),
        "a zero-capacity read reads nothing"
    );
    let (n, buf) = f.read_at(9_998, Vec::with_capacity(100)).await;
    assert_eq!(
        &buf[..n.unwrap()],
        &[pattern(9_998, 2), b"tail".to_vec()].concat()[..]
    );
    assert_eq!(f.size().await.unwrap(), 10_004);
    let all = File::open(&path)
        .await
        .unwrap()
        .read_to_end()
        .await
        .unwrap();
    assert_eq!(&all[..10_000], &pattern(0, 10_000)[..]);
    f.set_len(3).await.unwrap();
    assert_eq!(fs::read(&path).await.unwrap(), pattern(0, 3));
    f.sync_all().await.unwrap();
    f.sync_data().await.unwrap();
    f.close().await.unwrap();
    let e = File::open(dir_missing(&path)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

fn dir_missing(p: &std::path::Path) -> std::path::PathBuf {
    p.with_file_name("does-not-exist")
}

#[seastar_core::test]
async fn fs_operations_create_list_rename_link_and_remove() {
    let dir = TestDir::new("fsops");
    let root = dir.root().to_path_buf();

    let deep = root.join("a/b/c");
    fs::create_dir_all(&deep).await.unwrap();
    fs::create_dir_all(&deep).await.unwrap(); // exists: fine
    assert!(fs::metadata(&deep).await.unwrap().is_dir());
    let e = fs::create_dir(&deep).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(FileError::of(&e).unwrap().path(), deep);

    // More entries than one batch of the listing.
    for i in 0..300 {
        fs::write(root.join(format!("a/f{i:03}")), format!("{i}"))
            .await
            .unwrap();
    }
    let mut names: Vec<String> = fs::read_dir(root.join("a"))
        .await
        .unwrap()
        .map_ok(|e| {
            let want = if e.file_name() == "b" {
                EntryType::Dir
            } else {
                EntryType::File
            };
            assert_eq!(e.entry_type(), Some(want));
            assert_eq!(e.path().parent().unwrap(), root.join("a"));
            e.file_name().to_string_lossy().into_owned()
        })
        .try_collect()
        .await
        .unwrap();
    names.sort();
    assert_eq!(names.len(), 301);
    assert_eq!((names[0].as_str(), names[300].as_str()), ("b", "f299"));

    let (f0, moved, linked) = (root.join("a/f000"), root.join("moved"), root.join("linked"));
    fs::rename(&f0, &moved).await.unwrap();
    assert!(!fs::exists(&f0).await.unwrap());
    fs::hard_link(&moved, &linked).await.unwrap();
    assert_eq!(fs::metadata(&linked).await.unwrap().nlink(), 2);
    assert_eq!(fs::read_to_string(&linked).await.unwrap(), "0");
    std::os::unix::fs::symlink(&moved, root.join("sym")).unwrap();
    assert!(
        fs::symlink_metadata(root.join("sym"))
            .await
            .unwrap()
            .is_symlink()
    );
    assert!(fs::metadata(root.join("sym")).await.unwrap().is_file());

    let e = fs::remove_dir(root.join("a")).await.unwrap_err();
    assert_eq!(
        FileError::of(&e).unwrap().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    fs::remove_file(&moved).await.unwrap();
    fs::remove_dir(&deep).await.unwrap();
    fs::remove_dir_all(root.join("a")).await.unwrap();
    assert!(!fs::exists(root.join("a")).await.unwrap());
    let e = fs::read_dir(root.join("a")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = fs::rename(root.join("nope"), root.join("x"))
        .await
        .unwrap_err();
    assert_eq!(FileError::of(&e).unwrap().path(), root.join("nope"));
}

#[seastar_core::test]
async fn input_stream_reads_any_range_with_read_ahead() {
    let dir = TestDir::new("instream");
    let path = dir.path("f");

    let size = 100_000usize;
    fs::write(&path, pattern(0, size)).await.unwrap();
    let f = DmaFile::open(&path, &OpenOptions::new().read(true))
        .await
        .unwrap();
    for (start, len, ra) in [
        (0u64, u64::MAX, 1usize),
        (1, 50_000, 3),
        (4096, 8192, 8),
        (99_999, 10, 2),
        (200_000, 5, 2),
        (7, 0, 2),
    ] {
        let opts = InputStreamOptions {
            buffer_size: 8192,
            read_ahead: ra,
        };
        let bufs: Vec<_> = FileInputStream::range(f.clone(), start, len, opts)
            .try_collect()
            .await
            .unwrap();
        let got: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let end = (start.saturating_add(len)).min(size as u64);
        let want = if start >= end {
            vec![]
        } else {
            pattern(start, (end - start) as usize)
        };
        assert_eq!(got.len(), want.len(), "start {start} len {len}");
        assert_eq!(got, want, "start {start} len {len}");
        assert!(bufs.iter().all(|b| b.len() <= 8192 && !b.is_empty()));
    }
    let whole: Vec<_> = FileInputStream::new(f, InputStreamOptions::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(whole.iter().map(|b| b.len()).sum::<usize>(), size);
}

#[seastar_core::test]
async fn output_stream_writes_unaligned_lengths_and_flushes_the_tail() {
    let dir = TestDir::new("outstream");
    let path = dir.path("f");

    let opts = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true);
    let f = DmaFile::open(&path, &opts).await.unwrap();
    let mut out = FileOutputStream::new(
        f.clone(),
        OutputStreamOptions {
            buffer_size: 4096,
            write_behind: 3,
        },
    );
    let data = pattern(0, 50_001);
    for chunk in data[..30_000].chunks(777) {
        out.write(chunk).await.unwrap();
    }
    out.flush().await.unwrap();
    assert_eq!(f.size().await.unwrap(), 30_000, "flush cuts the padding");
    out.write(&data[30_000..]).await.unwrap();
    assert_eq!(out.len(), 50_001);
    out.close().await.unwrap();
    assert_eq!(fs::read(&path).await.unwrap(), data);
}

#[seastar_core::test]
async fn a_full_disk_reports_enospc_with_the_path() {
    let small = match SmallFs::mount("enospc", "256k") {
        Ok(m) => m,
        Err(reason) => {
            println!("skipped: cannot mount a small tmpfs: {reason}");
            return;
        }
    };
    let root = small.0.clone();

    let path = root.join("big");
    let opts = OpenOptions::new().read(true).write(true).create(true);
    let f = DmaFile::open(&path, &opts).await.unwrap();
    println!("tmpfs direct I/O: {}", f.is_direct());

    // Reserving more than the file system holds.
    let e = f.allocate(0, 4 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StorageFull);
    assert_eq!(FileError::of(&e).unwrap().path(), path);

    // Writing until the disk is full: the error, not a panic or a hang.
    let mut pos = 0u64;
    let err = loop {
        let mut buf = f.alloc_buf(64 * 1024);
        buf.resize(64 * 1024);
        let (res, _) = f.write_at(pos, buf).await;
        match res {
            Ok(0) => break None,
            Ok(n) => pos += n as u64,
            Err(e) => break Some(e),
        }
        assert!(pos < 1 << 20, "wrote past the size of the file system");
    };
    let e = err.expect("ENOSPC");
    assert_eq!(
        FileError::of(&e).unwrap().raw_os_error(),
        Some(libc::ENOSPC)
    );
    assert!(e.to_string().contains("big"), "{e}");

    // A stream reports it too, at the latest on close.
    let g = DmaFile::open(root.join("stream"), &opts).await.unwrap();
    let mut out = FileOutputStream::new(
        g,
        OutputStreamOptions {
            buffer_size: 8192,
            write_behind: 2,
        },
    );
    let mut res = Ok(());
    for _ in 0..64 {
        res = out.write(&[1u8; 8192]).await;
        if res.is_err() {
            break;
        }
    }
    let e = match res {
        Err(e) => e,
        Ok(()) => out.close().await.unwrap_err(),
    };
    assert_eq!(e.kind(), ErrorKind::StorageFull, "{e}");
}
