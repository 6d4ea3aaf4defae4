//! A client for deepstream.io servers, protocol version 4 and later.
//!
//! The crate has two layers:
//!
//! - [`core`]: the whole client protocol as a state machine without I/O. It
//!   takes received frames and the current time and returns frames to send,
//!   socket commands, events and the next timer deadline. Drivers for other
//!   runtimes (a browser's WebSocket, a binding's event loop) use it directly.
//! - [`tokio`] (feature `tokio`, on by default): a driver over
//!   tokio-tungstenite and an async API with handles that end their
//!   subscription when dropped.
//!
//! Payloads cross the API as JSON text (`&str` in, `String` out), so each
//! application uses the JSON library it already has. The feature `serde` adds
//! typed helpers such as `Record::set_json` and `Rpcs::make_json`.
//!
//! The behaviour follows the official JavaScript client 7.x: bulk
//! subscriptions, heartbeats, reconnection with a growing delay, login and
//! re-subscription after a reconnection, versioned records with a merge
//! strategy. Where this client differs, the item's documentation states it.
//! Most differences ensure that every request that waits for the server ends
//! with exactly one result, if need be by a timeout.
//!
//! Offline behaviour: emits, RPCs and presence queries made while the client
//! is not logged in (before the first login, after a rejected one, or while
//! reconnecting) are kept and sent after the next login. An RPC or presence
//! query still unsent after `Options::offline_buffer_timeout` fails with a
//! `ClientOffline` error, and once a lost connection has stayed lost that
//! long, new ones fail at once. Subscriptions are kept and sent again after
//! every login. Record writes made offline change the local data and are sent
//! after the next login. A write acknowledgement requested offline fails at
//! once with `RecordError::ClientOffline`, which then means "not stored yet",
//! because the write is still sent after the login. Snapshots, heads and `has` of a
//! record this client has open return its local copy; for other records
//! they fail at once with `RecordError::ClientOffline`, as deletes and
//! notifies do. Opening a record waits for the login, up to
//! `Options::record_read_timeout`. Once the client is closed or
//! has given up reconnecting, everything still waiting fails and new requests
//! fail at once.
//!
//! # Differences from the official client
//!
//! Each difference makes sure that a request waiting for the server ends with
//! exactly one result:
//!
//! - Logins, RPCs, record write acknowledgements, snapshots, heads, deletes
//!   and notifies have client-side timeouts (`Options::login_timeout`,
//!   `rpc_response_timeout`, `record_request_timeout`). The official client
//!   waits for the server's own timeouts or forever.
//! - Reconnection attempts are counted from zero again only after a
//!   successful login, or after the server was heard from and the socket
//!   stayed open for a heartbeat interval. The official client restarts the
//!   count whenever a socket opens, so a server that accepts sockets and
//!   closes them at once is retried without pause, forever.
//! - `VERSION_EXISTS` always runs the merge strategy. When the merged data
//!   differs from the server's, it is written again with the next version. A
//!   write acknowledgement requested for the rejected write ends with
//!   `RecordError::VersionExists`.
//! - Opening a record that the server's permissions deny fails at once with
//!   `RecordError::Server` (`MESSAGE_DENIED` or `MESSAGE_PERMISSION_ERROR`),
//!   and the record is forgotten, so a later open subscribes again. The
//!   official client 7.0.5 emits a record error and its open never resolves.
//! - Opening a record that is being subscribed again after a reconnection
//!   waits until its version is checked, and merged if it changed, or fails
//!   after `Options::record_read_timeout`. The official client 7.0.5
//!   resolves such an open at once with the data from before the
//!   reconnection.
//! - When the server's permissions deny subscribing to an open record again
//!   after a reconnection, the record is closed. Opens still waiting and
//!   writes kept for it fail with `RecordError::Server`, the other handles get
//!   `Event::RecordClosed`, and the denial is reported once on the error
//!   stream. The official client 7.0.5 emits a record error and leaves the
//!   record resubscribing for good.
//! - Discarding the last handle of a record unsubscribes at once. The
//!   official client waits `recordDiscardTimeout` first.
//! - A listen pattern that the server rejects as an invalid regular
//!   expression, or whose listen its permissions deny, ends the listen
//!   registration.
//! - Record listening, TLS (`wss://`) and offline record storage are not
//!   implemented.
//!
//! # Connecting and logging in
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use deepstream_client::core::{ConnectionState, Options};
//! use deepstream_client::tokio::Client;
//!
//! let client = Client::connect("ws://127.0.0.1:6020/deepstream", Options::default()).await?;
//! let client_data = client.login(r#"{"username":"ada","password":"s3cret"}"#).await?;
//! assert_eq!(client.state(), ConnectionState::Open);
//! println!("client data from the server: {client_data:?}");
//!
//! let mut states = client.state_changes();
//! tokio::spawn(async move {
//!     while states.changed().await.is_ok() {
//!         println!("connection state: {:?}", *states.borrow());
//!     }
//! });
//! # Ok(())
//! # }
//! ```
//!
//! # Events
//!
//! ```no_run
//! # async fn example(client: deepstream_client::tokio::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use deepstream_client::tokio::ListenEvent;
//!
//! let mut news = client.event().subscribe("news").await?;
//! client.event().emit("news", r#"{"headline":"hello"}"#).await?;
//! while let Some(event) = news.next().await {
//!     println!("{}: {:?}", event.name, event.data);
//! }
//!
//! // Provide data only while somebody subscribes to a matching name.
//! let mut listener = client.event().listen("^prices/.*").await?;
//! while let Some(notice) = listener.next().await {
//!     match notice {
//!         ListenEvent::Request(request) if request.name() == "prices/eur" => request.accept(),
//!         ListenEvent::Request(request) => request.reject(),
//!         ListenEvent::Stopped { name } => println!("nobody wants {name} any more"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Remote procedure calls
//!
//! ```no_run
//! # async fn example(client: deepstream_client::tokio::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let mut add = client.rpc().provide("math/add").await?;
//! tokio::spawn(async move {
//!     while let Some(request) = add.next().await {
//!         let numbers: Vec<i64> = serde_json::from_str(request.data().unwrap_or("[]"))
//!             .unwrap_or_default();
//!         let _ = request.send(&numbers.iter().sum::<i64>().to_string()).await;
//!     }
//! });
//! let sum = client.rpc().make("math/add", "[1,2]").await?;
//! assert_eq!(sum, "3");
//! # Ok(())
//! # }
//! ```
//!
//! # Presence
//!
//! ```no_run
//! # async fn example(client: deepstream_client::tokio::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let online = client.presence().get_all().await?;
//! let some = client.presence().get(&["ada", "bob"]).await?;
//! println!("{online:?} {some:?}");
//! let mut changes = client.presence().subscribe_all().await?;
//! let mut bob = client.presence().subscribe("bob").await?;
//! if let Some(change) = changes.next().await {
//!     println!("{} is {}", change.user, if change.online { "online" } else { "offline" });
//! }
//! # drop(bob.next().await);
//! # Ok(())
//! # }
//! ```
//!
//! # Records
//!
//! ```no_run
//! # async fn example(client: deepstream_client::tokio::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let record = client.record().get("user/ada").await?; // waits until ready
//! record.set(r#"{"name":"Ada","age":36}"#).await?;
//! record.set_path("age", "37").await?;
//! record.set_path_with_ack("city", r#""London""#).await?; // waits for the server
//! record.erase("city").await?;
//! println!("{} at version {}", record.get().await?, record.version().await?);
//! println!("age: {:?}", record.get_path("age").await?);
//!
//! let mut age = record.subscribe_path("age").await?;
//! while let Some(value) = age.next().await {
//!     println!("age is now {value:?}");
//! }
//!
//! // Without subscribing:
//! let records = client.record();
//! records.set_data("settings/ada", r#"{"theme":"dark"}"#).await?;
//! println!("{}", records.snapshot("settings/ada").await?);
//! println!("exists: {}, version {}", records.has("settings/ada").await?, records.head("settings/ada").await?);
//! records.notify(&["settings/ada"]).await?; // after changing the storage directly
//!
//! record.delete().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Lists and anonymous records
//!
//! ```no_run
//! # async fn example(client: deepstream_client::tokio::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let todos = client.record().list("todos").await?;
//! todos.add_entry("todo/1", None).await?;
//! todos.add_entry("todo/0", Some(0)).await?;
//! todos.remove_entry("todo/1", None).await?;
//! println!("{:?}", todos.entries().await?);
//!
//! let mut selected = client.record().anonymous();
//! let mut title = selected.subscribe_path("title").await?;
//! selected.set_name("todo/0").await?;
//! println!("{:?}", title.next().await);
//! # Ok(())
//! # }
//! ```
//!
//! # Version conflicts
//!
//! When two clients write the same version, the server rejects one write
//! with `VERSION_EXISTS` and the merge strategy decides: by default the
//! server's data wins.
//!
//! ```no_run
//! # async fn example(client: deepstream_client::tokio::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use deepstream_client::core::MergeStrategy;
//!
//! let record = client.record().get("counter").await?;
//! record
//!     .set_merge_strategy(MergeStrategy::custom(|conflict| {
//!         // Keep the larger of both counts.
//!         let local: i64 = serde_json::from_str::<serde_json::Value>(&conflict.local)
//!             .map_err(|error| error.to_string())?["count"]
//!             .as_i64()
//!             .unwrap_or(0);
//!         let remote = conflict.remote.as_deref().unwrap_or("{}");
//!         let remote: i64 = serde_json::from_str::<serde_json::Value>(remote)
//!             .map_err(|error| error.to_string())?["count"]
//!             .as_i64()
//!             .unwrap_or(0);
//!         Ok(format!(r#"{{"count":{}}}"#, local.max(remote)))
//!     }))
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Driving the core yourself
//!
//! ```
//! use deepstream_client::core::{Event, Options, Session, SocketCommand, Timestamp};
//!
//! let mut session = Session::new("ws://127.0.0.1:6020/deepstream", Options::default(), 42)
//!     .expect("a valid URL");
//! let Some(SocketCommand::Open { url }) = session.poll_socket() else { unreachable!() };
//! // ... open a WebSocket to `url`, then:
//! session.connected(Timestamp::from_millis(0));
//! while let Some(frame) = session.poll_transmit() {
//!     // ... send `frame` as one binary message
//!     # let _ = frame;
//! }
//! session.login("{}", Timestamp::from_millis(5)).expect("a JSON object");
//! while let Some(event) = session.poll_event() {
//!     if let Event::ConnectionStateChanged(state) = event {
//!         println!("{state:?}");
//!     }
//! }
//! let next_timer = session.poll_timeout();
//! # let _ = (url, next_timer);
//! ```

pub mod core;
#[cfg(feature = "tokio")]
pub mod tokio;
