//! A realtime data server that speaks the deepstream.io protocol, version 4
//! and later, so that the official deepstream clients work with it unchanged.
//!
//! The crate is a library plus the `deepstream` binary. [`Server`] binds the
//! listener from a [`Config`] and serves the binary WebSocket endpoint,
//! deepstream's HTTP API and the health check on it. Messages are handled per
//! topic in [`handlers`]; each connection queues its outgoing frames in an
//! [`peer::Outbox`] drained by a writer task.
//!
//! [`permission`] compiles deepstream's Valve rules, which every client message
//! is checked against before it reaches its handler. [`storage`] contains the
//! cache and storage backends that records use, and [`monitoring`] the counters.
//! Clustering is not part of this crate yet.

mod access;
pub mod auth;
pub mod config;
mod connection;
pub mod handlers;
mod http_api;
pub mod listen;
pub mod monitoring;
pub mod peer;
pub mod permission;
pub mod registry;
mod server;
mod services;
pub mod storage;

pub use config::Config;
pub use server::{Server, ServerError};
