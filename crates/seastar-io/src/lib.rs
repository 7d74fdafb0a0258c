//! `seastar-io`: direct file I/O for the seastar-rs thread-per-core runtime.
//!
//! Files are read and written with `O_DIRECT` into aligned buffers
//! ([`DmaFile`], [`AlignedBuf`]), bypassing the page cache so the
//! application decides what to cache; a buffered [`File`] serves small
//! files. Every read and write passes through its shard's I/O scheduler
//! ([`sched`]): requests are queued by priority class ([`IoClass`], with
//! shares) and dispatched by fair queuing while the disk time in flight
//! stays under a bound derived from the disk's measured properties, so a
//! background class cannot inflate a foreground class's latency.
//!
//! On the io_uring backend each request is one submission; on the epoll
//! backend the same API runs on the runtime's small blocking thread pool
//! (four threads: at most four file requests in flight per process).
//!
//! # Map of the crate
//!
//! | module | what it holds |
//! |---|---|
//! | `dma` | [`DmaFile`]: open with `O_DIRECT` (buffered fallback), alignment discovery, `read_at`/`write_at`/`read_bulk`, sync, allocate, truncate, stat, close |
//! | `aligned` | [`AlignedBuf`]: aligned heap buffers with slice views and zero-copy `freeze` |
//! | `buffered` | [`File`]: page-cache file I/O at any offset with any owned buffer |
//! | `options` | [`OpenOptions`] for both |
//! | [`fs`] | directories, remove, rename, link, [`metadata`](fs::metadata), [`read_dir`](fs::read_dir) as a stream, whole-file read/write |
//! | [`stream`] | [`FileInputStream`] (read-ahead), [`FileOutputStream`] (write-behind, unaligned tail); both are seastar-core stream sources/sinks, so `InputStream`/`OutputStream` work over files as over sockets |
//! | [`sched`] | the per-shard I/O scheduler: [`IoClass`], the disk model ([`IoProperties`](sched::IoProperties), `io_properties` files), metrics |
//! | `error` | [`FileError`]: the path and operation inside every `io::Error` |
//!
//! # Example
//!
//! ```
//! # seastar_core::block_on(async {
//! use seastar_io::{DmaFile, IoClass, OpenOptions};
//! let path = std::env::temp_dir().join(format!("sio-lib-doc-{}", std::process::id()));
//! let class = IoClass::new("example", 200);
//! let opts = OpenOptions::new().read(true).write(true).create(true).class(class);
//! let f = DmaFile::open(&path, &opts).await.unwrap();
//! let mut buf = f.alloc_buf(8192);
//! buf.resize(8192);
//! buf[..5].copy_from_slice(b"hello");
//! let (n, _) = f.write_at(0, buf).await;
//! assert_eq!(n.unwrap(), 8192);
//! assert_eq!(&f.read_at(0, 5).await.unwrap()[..], b"hello");
//! f.close().await.unwrap();
//! seastar_io::fs::remove_file(&path).await.unwrap();
//! # });
//! ```
#![deny(missing_docs)]

mod aligned;
mod buffered;
mod dma;
mod error;
pub mod fs;
mod options;
pub mod sched;
pub mod stream;

pub use aligned::AlignedBuf;
pub use buffered::File;
pub use dma::{Alignment, DmaFile, MAX_COALESCED_READ};
pub use error::FileError;
pub use fs::Metadata;
pub use options::OpenOptions;
pub use sched::IoClass;
pub use stream::{FileInputStream, FileOutputStream, InputStreamOptions, OutputStreamOptions};
