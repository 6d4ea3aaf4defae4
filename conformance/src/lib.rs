//! The deepstream conformance suite: runs scenario files against every pair
//! of client implementation and server and reports the matrix.
//!
//! Scenarios are YAML files (see `conformance/README.md`). Clients are
//! driven as child processes through a line-based JSON protocol, so any
//! client implementation with a driver can be tested. The crate starts our
//! server or the official Node.js server on free loopback ports, or uses a
//! given URL. It does not check performance or cluster behaviour.

pub mod driver;
pub mod error;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod report;
pub mod run;
pub mod rust_driver;
pub mod scenario;
pub mod target;
