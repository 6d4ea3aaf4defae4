//! Integration tests of the tokio client against our server and the official
//! Node.js server. Each test runs once per server; see [`common::Target`].

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

mod connection;
mod events;
mod example;
mod presence;
mod records;
mod rpc;
mod stalled;
