//! The tokio driver: one task runs the [`Session`] over a tokio-tungstenite
//! WebSocket, and [`Client`] sends it commands.
//!
//! The task loops on three inputs: frames from the socket, commands from the
//! client's handles, and the session's next timer. Everything the protocol
//! does is decided by the session; this module only moves bytes, time and
//! results. Subscriptions return handles, and dropping a handle ends its
//! subscription.
//!
//! Channels from the task to the handles are unbounded: a handle that is never
//! read keeps every message for it in memory until it is dropped.
//!
//! NOTE: `wss://` URLs need a TLS backend, which this crate does not enable
//! in tokio-tungstenite, so only `ws://` URLs connect.

mod driver;
mod handles;
#[cfg(feature = "serde")]
mod json;
mod link;
mod records;

use std::collections::BTreeMap;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::core::{
    ConnectionState, EventError, InvalidUrl, LoginError, Options, PresenceError, RpcError, Session,
    SessionError, SocketCommand,
};
use driver::{Command, Driver};

pub use driver::{PresenceChange, ReceivedEvent};
pub use handles::{
    EventSubscription, ListenEvent, ListenRequest, Listener, PresenceSubscription, RpcProvider,
    RpcRequest,
};
#[cfg(feature = "serde")]
pub use json::JsonError;
pub use records::{
    AnonymousRecord, AnonymousRecordSubscription, List, ListSubscription, Record,
    RecordSubscription, Records,
};

/// How many session errors [`Client::errors`] keeps for a slow reader.
const ERROR_CHANNEL_CAPACITY: usize = 64;

/// The reason [`Client::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error(transparent)]
    InvalidUrl(#[from] InvalidUrl),
    /// The WebSocket could not be opened.
    #[error("could not open a WebSocket to {reason}")]
    Unreachable {
        /// The URL and the failure.
        reason: String,
    },
}

/// A connection to a deepstream server.
///
/// Cloning a client is cheap and gives another handle to the same connection.
/// The connection closes when [`Client::close`] is called, or when the last
/// client and the last subscription handle are dropped.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use deepstream_client::core::Options;
/// use deepstream_client::tokio::Client;
///
/// let client = Client::connect("ws://127.0.0.1:6020/deepstream", Options::default()).await?;
/// let client_data = client.login(r#"{"username":"ada"}"#).await?;
/// println!("logged in, client data {client_data:?}");
///
/// let mut chat = client.event().subscribe("chat/lobby").await?;
/// client.event().emit("chat/lobby", r#""hello""#).await?;
/// if let Some(event) = chat.next().await {
///     println!("{}: {:?}", event.name, event.data);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<ConnectionState>,
    errors: broadcast::Sender<SessionError>,
}

impl Client {
    /// Opens a WebSocket to `url` and starts the connection's task.
    ///
    /// The first socket must open within 10 seconds: an unreachable server is
    /// an error here, while a connection lost later is retried as [`Options`]
    /// set out. The returned client is not logged in yet, so call
    /// [`Client::login`] next.
    pub async fn connect(url: &str, options: Options) -> Result<Client, ConnectError> {
        let mut session = Session::new(url, options, rand::random())?;
        let Some(SocketCommand::Open { url }) = session.poll_socket() else {
            unreachable!("a new session always asks for a socket first");
        };
        let socket = driver::open_socket(url)
            .await
            .map_err(|reason| ConnectError::Unreachable { reason })?;

        let (commands, receiver) = mpsc::unbounded_channel();
        let (state_sender, state) = watch::channel(session.state());
        let (errors, _) = broadcast::channel(ERROR_CHANNEL_CAPACITY);
        let driver = Driver::new(
            session,
            socket,
            Instant::now(),
            receiver,
            state_sender,
            errors.clone(),
        );
        tokio::spawn(driver.run());
        Ok(Client {
            commands,
            state,
            errors,
        })
    }

    /// Logs in with `auth_data`, a JSON object, and returns the client data
    /// the server sent (JSON text), if any.
    ///
    /// The client logs in with the same data again after every reconnection.
    /// Without an answer within `Options::login_timeout` (a peer that is not
    /// a deepstream server, or a hung one) it fails with
    /// [`LoginError::TimedOut`].
    pub async fn login(&self, auth_data: &str) -> Result<Option<String>, LoginError> {
        let (reply, result) = oneshot::channel();
        self.send(Command::Login {
            auth_data: auth_data.to_owned(),
            reply,
        });
        result.await.unwrap_or(Err(LoginError::Closed))
    }

    /// Returns the current connection state.
    pub fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// Returns a receiver of connection state changes; `changed().await`
    /// waits for the next change after this call.
    pub fn state_changes(&self) -> watch::Receiver<ConnectionState> {
        let mut receiver = self.state.clone();
        receiver.mark_unchanged();
        receiver
    }

    /// Returns a receiver of the problems that no single request owns, such
    /// as an undecodable frame or a lost heartbeat, from the time of this call.
    /// A receiver that falls more than 64 errors behind skips the oldest.
    pub fn errors(&self) -> broadcast::Receiver<SessionError> {
        self.errors.subscribe()
    }

    /// Closes the connection for good. Requests still waiting fail.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        self.send(Command::Close { reply });
        let _ = done.await;
    }

    /// Returns the event API.
    pub fn event(&self) -> Events<'_> {
        Events { client: self }
    }

    /// Returns the RPC API.
    pub fn rpc(&self) -> Rpcs<'_> {
        Rpcs { client: self }
    }

    /// Returns the presence API.
    pub fn presence(&self) -> Presence<'_> {
        Presence { client: self }
    }

    fn send(&self, command: Command) {
        // A closed channel means the task ended; each caller's reply channel
        // then reports the client as closed.
        let _ = self.commands.send(command);
    }
}

/// Events: publish and subscribe, and listening. See [`Client::event`].
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    client: &'a Client,
}

impl Events<'_> {
    /// Subscribes to the event `name`. Dropping the handle unsubscribes.
    ///
    /// The handle is returned once the session has the subscription; the
    /// server learns of it with the next bulk message, after
    /// `Options::subscription_interval`. Events emitted by others before the
    /// server has it are not delivered, and a subscription the server rejects
    /// is reported on [`Client::errors`].
    pub async fn subscribe(&self, name: &str) -> Result<EventSubscription, EventError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (reply, result) = oneshot::channel();
        self.client.send(Command::EventSubscribe {
            name: name.to_owned(),
            sender,
            reply,
        });
        let id = result.await.unwrap_or(Err(EventError::ClientOffline))?;
        Ok(EventSubscription::new(
            id,
            name.to_owned(),
            receiver,
            self.client.commands.clone(),
        ))
    }

    /// Emits the event `name` with `data`, which must be JSON text.
    pub async fn emit(&self, name: &str, data: &str) -> Result<(), EventError> {
        self.emit_data(name, Some(data)).await
    }

    /// Emits the event `name` with optional JSON data.
    pub async fn emit_data(&self, name: &str, data: Option<&str>) -> Result<(), EventError> {
        let (reply, result) = oneshot::channel();
        self.client.send(Command::EventEmit {
            name: name.to_owned(),
            data: data.map(str::to_owned),
            reply,
        });
        result.await.unwrap_or(Err(EventError::ClientOffline))
    }

    /// Listens to subscriptions of names that match `pattern`, a regular
    /// expression evaluated by the server. Dropping the handle stops listening.
    pub async fn listen(&self, pattern: &str) -> Result<Listener, EventError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (reply, result) = oneshot::channel();
        self.client.send(Command::Listen {
            pattern: pattern.to_owned(),
            sender,
            reply,
        });
        let id = result.await.unwrap_or(Err(EventError::ClientOffline))?;
        Ok(Listener::new(
            id,
            pattern.to_owned(),
            receiver,
            self.client.commands.clone(),
        ))
    }
}

/// Remote procedure calls. See [`Client::rpc`].
#[derive(Debug, Clone, Copy)]
pub struct Rpcs<'a> {
    client: &'a Client,
}

impl Rpcs<'_> {
    /// Provides the RPC `name`. Dropping the handle stops providing it.
    ///
    /// As with event subscriptions, the server learns of the provider with the
    /// next bulk message, so a request made before that finds no provider.
    pub async fn provide(&self, name: &str) -> Result<RpcProvider, RpcError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (reply, result) = oneshot::channel();
        self.client.send(Command::RpcProvide {
            name: name.to_owned(),
            sender,
            reply,
        });
        let id = result.await.unwrap_or(Err(RpcError::ClientOffline))?;
        Ok(RpcProvider::new(
            id,
            name.to_owned(),
            receiver,
            self.client.commands.clone(),
        ))
    }

    /// Calls the RPC `name` with `data` (JSON text) and returns the result as
    /// JSON text; a response without data is returned as `null`.
    pub async fn make(&self, name: &str, data: &str) -> Result<String, RpcError> {
        let result = self.make_data(name, Some(data)).await?;
        Ok(result.unwrap_or_else(|| "null".to_owned()))
    }

    /// Calls the RPC `name` with optional JSON data and returns the response
    /// data, `None` when the provider sent none.
    pub async fn make_data(
        &self,
        name: &str,
        data: Option<&str>,
    ) -> Result<Option<String>, RpcError> {
        let (reply, result) = oneshot::channel();
        self.client.send(Command::RpcMake {
            name: name.to_owned(),
            data: data.map(str::to_owned),
            reply,
        });
        result.await.unwrap_or(Err(RpcError::ClientOffline))
    }
}

/// Presence. See [`Client::presence`].
#[derive(Debug, Clone, Copy)]
pub struct Presence<'a> {
    client: &'a Client,
}

impl Presence<'_> {
    /// Follows every user coming online and going offline. Dropping the
    /// handle unsubscribes.
    pub async fn subscribe_all(&self) -> Result<PresenceSubscription, PresenceError> {
        self.subscribe_user(None).await
    }

    /// Follows one user. Dropping the handle unsubscribes.
    pub async fn subscribe(&self, user: &str) -> Result<PresenceSubscription, PresenceError> {
        self.subscribe_user(Some(user.to_owned())).await
    }

    async fn subscribe_user(
        &self,
        user: Option<String>,
    ) -> Result<PresenceSubscription, PresenceError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (reply, result) = oneshot::channel();
        self.client.send(Command::PresenceSubscribe {
            user,
            sender,
            reply,
        });
        let id = result.await.unwrap_or(Err(PresenceError::ClientOffline))?;
        Ok(PresenceSubscription::new(
            id,
            receiver,
            self.client.commands.clone(),
        ))
    }

    /// Returns the users online, without this client's own user.
    pub async fn get_all(&self) -> Result<Vec<String>, PresenceError> {
        let (reply, result) = oneshot::channel();
        self.client.send(Command::PresenceQueryAll { reply });
        result.await.unwrap_or(Err(PresenceError::ClientOffline))
    }

    /// Returns whether each of `users` is online.
    pub async fn get(&self, users: &[&str]) -> Result<BTreeMap<String, bool>, PresenceError> {
        let (reply, result) = oneshot::channel();
        self.client.send(Command::PresenceQuery {
            users: users.iter().map(|user| (*user).to_owned()).collect(),
            reply,
        });
        result.await.unwrap_or(Err(PresenceError::ClientOffline))
    }
}
