//! Chapter 8: files and the I/O scheduler.
use seastar_core::Runtime;
use seastar_io::{DmaFile, IoClass, OpenOptions, fs};

fn main() {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let path = std::env::temp_dir().join(format!("seastar-example-{}", std::process::id()));
            // Requests of this class get 200 shares of the disk against other classes.
            let class = IoClass::new("tutorial", 200);
            let opts = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .class(class);
            let f = DmaFile::open(&path, &opts).await.unwrap();
            let mut buf = f.alloc_buf(4096); // aligned for O_DIRECT
            buf.resize(4096);
            buf[..13].copy_from_slice(b"hello, files!");
            let (n, _buf) = f.write_at(0, buf).await;
            println!("wrote {} bytes", n.unwrap());
            let back = f.read_at(0, 13).await.unwrap();
            println!("read back: {}", String::from_utf8_lossy(&back));
            f.close().await.unwrap();
            fs::remove_file(&path).await.unwrap();
        });
}
