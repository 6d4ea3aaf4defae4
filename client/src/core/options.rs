//! Session options and their defaults.

use std::time::Duration;

use super::record::MergeStrategy;

/// Settings of a [`Session`](super::Session).
///
/// The defaults are those of the official JavaScript client 7.x
/// (`@deepstream/client`, `src/client-options.ts`) unless a field states otherwise.
/// Create the defaults with [`Options::default`] and change fields as needed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// How often the client sends `PING`. The server is considered lost when
    /// it has been silent for more than two intervals at a heartbeat, so a
    /// loss is noticed after two to three intervals. Before a login the
    /// silence is tolerated, because servers send nothing then. Default 30 s;
    /// values below 100 ms are raised to 100 ms.
    pub heartbeat_interval: Duration,
    /// The delay added before each further reconnection attempt: the first
    /// attempt starts at once, the second after one increment, the third after
    /// two. Default 4 s.
    pub reconnect_interval_increment: Duration,
    /// The maximum delay between two reconnection attempts. Default 180 s.
    pub max_reconnect_interval: Duration,
    /// The number of reconnection attempts after which the client gives up and
    /// closes. Default 5.
    pub max_reconnect_attempts: u32,
    /// How long subscriptions are collected before they go out as one bulk
    /// message per topic and action. Zero sends each at once. Default 100 ms.
    pub subscription_interval: Duration,
    /// How long a subscribe, unsubscribe, listen or provide request, and a
    /// presence query, waits for the server's acknowledgement before an
    /// [`Event::Error`](super::Event::Error) or a failed query reports it.
    /// Default 2 s.
    pub subscription_timeout: Duration,
    /// How long emits, RPCs and presence queries made while the client is not
    /// logged in are kept to be sent after the login. An RPC or query still
    /// unsent after this time fails with `ClientOffline`. Once a lost
    /// connection has stayed lost this long, new ones fail at once until the
    /// client is logged in again. Default 2 s.
    pub offline_buffer_timeout: Duration,
    /// How long [`Session::rpc_make`](super::Session::rpc_make) waits for a
    /// response. The official client has no such timer and relies on the
    /// server's `RESPONSE_TIMEOUT` (10 s by default); this one is longer and
    /// ends a request whose answer never comes. Default 20 s.
    pub rpc_response_timeout: Duration,
    /// How long a login may wait for the server's answer, from the call until
    /// the server accepts or rejects it, across reconnections. Default 15 s.
    pub login_timeout: Duration,
    /// Whether an incoming RPC request is accepted (`ACCEPT` sent) as soon as
    /// it is handed to the application, as the official client does. When
    /// false, the application accepts explicitly or by responding. Default true.
    pub rpc_auto_accept: bool,
    /// The path used when the URL names none. Default `/deepstream`.
    pub path: String,
    /// How long opening a record waits for its data before
    /// [`Event::RecordReadFailed`](super::Event::RecordReadFailed). The
    /// official client's `recordReadTimeout`. Default 15 s.
    pub record_read_timeout: Duration,
    /// How long record snapshots, heads, deletes, notifies and write
    /// acknowledgements wait for the server. The official client's
    /// `recordDeleteTimeout` for deletes; it has no timer for the others.
    /// Default 15 s.
    pub record_request_timeout: Duration,
    /// The strategy for version conflicts of records, unless a record has
    /// its own strategy. Default [`MergeStrategy::RemoteWins`].
    pub merge_strategy: MergeStrategy,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            heartbeat_interval: Duration::from_secs(30),
            reconnect_interval_increment: Duration::from_secs(4),
            max_reconnect_interval: Duration::from_secs(180),
            max_reconnect_attempts: 5,
            subscription_interval: Duration::from_millis(100),
            subscription_timeout: Duration::from_secs(2),
            offline_buffer_timeout: Duration::from_secs(2),
            rpc_response_timeout: Duration::from_secs(20),
            login_timeout: Duration::from_secs(15),
            rpc_auto_accept: true,
            path: "/deepstream".to_owned(),
            record_read_timeout: Duration::from_secs(15),
            record_request_timeout: Duration::from_secs(15),
            merge_strategy: MergeStrategy::RemoteWins,
        }
    }
}
