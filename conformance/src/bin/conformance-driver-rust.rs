//! Driver for the Rust client, for runners other than `deepstream-conformance`:
//! JSON commands on stdin, replies and observations on stdout.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    deepstream_conformance::rust_driver::run().await
}
