//! Regenerates the checked-in gRPC code of apps/rpc (see Cargo.toml).

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no parent")?;
    let out = app.join("src/proto");
    tonic_prost_build::configure()
        .build_transport(false)
        .out_dir(&out)
        .compile_protos(
            &[
                app.join("proto/helloworld.proto"),
                app.join("proto/echo.proto"),
            ],
            &[app.join("proto")],
        )?;
    println!("wrote {}", out.display());
    Ok(())
}
