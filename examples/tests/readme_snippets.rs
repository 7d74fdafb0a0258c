//! The examples in the seastar-json and seastar-io READMEs, run as they are
//! written (the READMEs are not doctested by their crates).

#[test]
fn seastar_json_readme() {
    use seastar_json::Json;

    #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
    struct User {
        id: u32,
    }

    let Json(u) = Json::<User>::from_slice(br#"{"id": 7}"#).unwrap();
    assert_eq!(u, User { id: 7 });
    let err = Json::<User>::from_slice(b"{\"id\": }").unwrap_err();
    assert_eq!((err.line(), err.column()), (1, 8));
}

#[test]
fn seastar_io_readme() {
    seastar_core::block_on(async {
        use seastar_io::{DmaFile, OpenOptions};
        let path = std::env::temp_dir().join(format!("seastar-io-readme-{}", std::process::id()));
        let f = DmaFile::open(
            &path,
            &OpenOptions::new().read(true).write(true).create(true),
        )
        .await
        .unwrap();
        let mut buf = f.alloc_buf(4096);
        buf.resize(4096);
        let (n, _buf) = f.write_at(0, buf).await;
        assert_eq!(n.unwrap(), 4096);
        assert_eq!(f.read_at(100, 10).await.unwrap().len(), 10);
        f.close().await.unwrap();
        seastar_io::fs::remove_file(&path).await.unwrap();
    });
}
