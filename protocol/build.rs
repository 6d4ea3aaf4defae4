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
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
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
