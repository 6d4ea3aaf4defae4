//! The workloads. Each opens its own connections, runs a bounded load that
//! stops by itself, and returns what it measured.

pub mod bulk;
pub mod fanout;
pub mod memory;
pub mod records;
pub mod rpc;
