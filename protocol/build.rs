//! Generates the Rust message types from `proto/` with protox, so that no
//! `protoc` binary is needed on the build machine.

use std::path::PathBuf;

const PROTO_FILES: &[&str] = &[
    "envelope.proto",
    "connection.proto",
    "auth.proto",
    "event.proto",
    "record.proto",
    "rpc.proto",
    "presence.proto",
    "monitoring.proto",
    "cluster.proto",
    "parser.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): a build script binary compiled for a
    // copy of this crate elsewhere must not point back at that copy.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let proto_dir = PathBuf::from(manifest_dir).join("../proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());

    let descriptors = protox::compile(PROTO_FILES, [&proto_dir])?;
    prost_build::Config::new()
        // Payloads and envelopes stay reference-counted slices of the received frame.
        .bytes(["."])
        // Maps encode in key order, so the same message always gives the same bytes.
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
