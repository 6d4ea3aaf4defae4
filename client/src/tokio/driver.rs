//! The task that owns the session and the WebSocket.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::link::{Link, MAX_QUEUED_BYTES, QueueError};
use crate::core::{
    ConnectionState, Event, EventError, IncomingRpc, IncomingRpcId, ListenId, LoginError,
    PresenceError, PresenceSubscriptionId, ProviderId, RecordError, RecordId, RecordSubscriptionId,
    RequestId, RpcError, Session, SessionError, SocketCommand, SubscriptionId, Timestamp,
};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Socket, String>> + Send>>;

/// How long opening a WebSocket, or closing one, may take.
pub(crate) const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// An event delivered to an [`EventSubscription`](super::EventSubscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// The event name.
    pub name: String,
    /// The payload as JSON text, if the emitter sent one.
    pub data: Option<String>,
}

/// A presence change delivered to a [`PresenceSubscription`](super::PresenceSubscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// The user name.
    pub user: String,
    /// Whether the user is online now.
    pub online: bool,
}

/// A notice for a [`Listener`](super::Listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListenNotice {
    Found { name: String },
    Stopped { name: String },
}

/// The application's reply to an incoming RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RpcAnswer {
    Accept,
    Respond(Option<String>),
    Error(String),
    Reject,
}

pub(crate) type Reply<T> = oneshot::Sender<T>;
/// Whether each asked user is online.
pub(crate) type UsersOnline = BTreeMap<String, bool>;

/// A call on the session made inside the driver task, for the record API.
pub(crate) type Call = Box<dyn FnOnce(&mut Session, Timestamp, &mut Routes) + Send>;

/// A request from the public API to the driver task.
pub(crate) enum Command {
    Call(Call),
    Login {
        auth_data: String,
        reply: Reply<Result<Option<String>, LoginError>>,
    },
    Close {
        reply: Reply<()>,
    },
    EventSubscribe {
        name: String,
        sender: mpsc::UnboundedSender<ReceivedEvent>,
        reply: Reply<Result<SubscriptionId, EventError>>,
    },
    EventUnsubscribe {
        subscription: SubscriptionId,
    },
    EventEmit {
        name: String,
        data: Option<String>,
        reply: Reply<Result<(), EventError>>,
    },
    Listen {
        pattern: String,
        sender: mpsc::UnboundedSender<ListenNotice>,
        reply: Reply<Result<ListenId, EventError>>,
    },
    Unlisten {
        listen: ListenId,
    },
    ListenRespond {
        listen: ListenId,
        name: String,
        accept: bool,
    },
    RpcProvide {
        name: String,
        sender: mpsc::UnboundedSender<IncomingRpc>,
        reply: Reply<Result<ProviderId, RpcError>>,
    },
    RpcUnprovide {
        provider: ProviderId,
    },
    RpcMake {
        name: String,
        data: Option<String>,
        reply: Reply<Result<Option<String>, RpcError>>,
    },
    RpcAnswer {
        request: IncomingRpcId,
        answer: RpcAnswer,
        reply: Option<Reply<Result<(), RpcError>>>,
    },
    PresenceSubscribe {
        user: Option<String>,
        sender: mpsc::UnboundedSender<PresenceChange>,
        reply: Reply<Result<PresenceSubscriptionId, PresenceError>>,
    },
    PresenceUnsubscribe {
        subscription: PresenceSubscriptionId,
    },
    PresenceQueryAll {
        reply: Reply<Result<Vec<String>, PresenceError>>,
    },
    PresenceQuery {
        users: Vec<String>,
        reply: Reply<Result<UsersOnline, PresenceError>>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Call(_) => f.write_str("Call(..)"),
            _ => f.write_str("Command(..)"),
        }
    }
}

/// The destinations of the session's events: the senders of the pending
/// requests and of the open handles.
#[derive(Default)]
pub(crate) struct Routes {
    login: Option<Reply<Result<Option<String>, LoginError>>>,
    events: HashMap<SubscriptionId, mpsc::UnboundedSender<ReceivedEvent>>,
    listens: HashMap<ListenId, mpsc::UnboundedSender<ListenNotice>>,
    providers: HashMap<ProviderId, mpsc::UnboundedSender<IncomingRpc>>,
    rpcs: HashMap<RequestId, Reply<Result<Option<String>, RpcError>>>,
    presence: HashMap<PresenceSubscriptionId, mpsc::UnboundedSender<PresenceChange>>,
    queries_all: HashMap<RequestId, Reply<Result<Vec<String>, PresenceError>>>,
    queries: HashMap<RequestId, Reply<Result<UsersOnline, PresenceError>>>,
    pub(crate) record_ready: HashMap<RecordId, Reply<Result<(), RecordError>>>,
    pub(crate) record_changes:
        HashMap<RecordSubscriptionId, (RecordId, mpsc::UnboundedSender<Option<String>>)>,
    pub(crate) record_done: HashMap<RequestId, Reply<Result<(), RecordError>>>,
    pub(crate) record_snapshots: HashMap<RequestId, Reply<Result<String, RecordError>>>,
    pub(crate) record_heads: HashMap<RequestId, Reply<Result<i32, RecordError>>>,
}

/// The driver task's state.
pub(crate) struct Driver {
    session: Session,
    link: Option<Link>,
    connecting: Option<Connecting>,
    commands: mpsc::UnboundedReceiver<Command>,
    routes: Routes,
    state: watch::Sender<ConnectionState>,
    errors: broadcast::Sender<SessionError>,
    start: Instant,
    closed_replies: Vec<Reply<()>>,
}

impl Driver {
    pub(crate) fn new(
        session: Session,
        socket: Socket,
        start: Instant,
        commands: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<ConnectionState>,
        errors: broadcast::Sender<SessionError>,
    ) -> Driver {
        Driver {
            session,
            link: Some(Link::new(socket)),
            connecting: None,
            commands,
            routes: Routes::default(),
            state,
            errors,
            start,
            closed_replies: Vec::new(),
        }
    }

    fn now(&self) -> Timestamp {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Timestamp::from_millis(millis)
    }

    /// Runs until every handle of the client is gone, or the client is closed.
    pub(crate) async fn run(mut self) {
        let now = self.now();
        self.session.connected(now);
        loop {
            self.drain_outputs().await;
            let deadline = self
                .session
                .poll_timeout()
                .map(|at| self.start + Duration::from_millis(at.as_millis()));
            tokio::select! {
                message = next_message(&mut self.link) => self.socket_message(message),
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => {
                        let now = self.now();
                        self.session.close(now);
                        self.drain_outputs().await;
                        return;
                    }
                },
                () = sleep_until(deadline) => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                }
                result = connect(&mut self.connecting) => {
                    self.connecting = None;
                    let now = self.now();
                    match result {
                        Ok(socket) => {
                            self.link = Some(Link::new(socket));
                            self.session.connected(now);
                        }
                        Err(error) => {
                            tracing::debug!(%error, "opening the WebSocket failed");
                            self.session.connection_lost(now);
                        }
                    }
                }
            }
        }
    }

    fn socket_message(
        &mut self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) {
        let now = self.now();
        match message {
            Some(Ok(Message::Binary(frame))) => self.session.handle_frame(frame, now),
            Some(Ok(Message::Text(_))) => {
                tracing::debug!("ignoring a text frame; the protocol uses binary frames");
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                if let Some(Err(error)) = &message {
                    tracing::debug!(%error, "WebSocket failed");
                }
                self.link = None;
                self.session.connection_lost(now);
            }
        }
    }

    async fn drain_outputs(&mut self) {
        while let Some(command) = self.session.poll_socket() {
            match command {
                SocketCommand::Open { url } => {
                    self.close_socket();
                    self.connecting = Some(Box::pin(open_socket(url)));
                }
                SocketCommand::Close => self.close_socket(),
            }
        }
        self.transmit();
        while let Some(event) = self.session.poll_event() {
            self.route(event);
        }
        if self.session.state().is_final() {
            // Nothing more will arrive: end every handle's stream.
            self.routes.events.clear();
            self.routes.listens.clear();
            self.routes.providers.clear();
            self.routes.presence.clear();
            self.routes.record_changes.clear();
        }
        for reply in self.closed_replies.drain(..) {
            let _ = reply.send(());
        }
    }

    fn transmit(&mut self) {
        let Some(link) = self.link.as_ref() else {
            while self.session.poll_transmit().is_some() {}
            return;
        };
        let mut failure = None;
        while let Some(frame) = self.session.poll_transmit() {
            if failure.is_none() {
                failure = link.queue(frame).err();
            }
        }
        if let Some(failure) = failure {
            match failure {
                QueueError::Full => tracing::warn!(
                    max_bytes = MAX_QUEUED_BYTES,
                    "the server does not read what this client sends; closing the connection"
                ),
                QueueError::Closed => tracing::debug!("writing to the WebSocket failed"),
            }
            self.link = None;
            let now = self.now();
            self.session.connection_lost(now);
        }
    }

    fn close_socket(&mut self) {
        // Dropping the link lets its writer close the socket.
        self.link = None;
        self.connecting = None;
    }

    fn command(&mut self, command: Command) {
        let now = self.now();
        let session = &mut self.session;
        let routes = &mut self.routes;
        match command {
            Command::Call(call) => call(session, now, routes),
            Command::Login { auth_data, reply } => match session.login(&auth_data, now) {
                Ok(()) => routes.login = Some(reply),
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            Command::Close { reply } => {
                session.close(now);
                // Replied to once the state change has been routed.
                self.closed_replies.push(reply);
            }
            Command::EventSubscribe {
                name,
                sender,
                reply,
            } => {
                let result = session.event_subscribe(&name, now);
                if let Ok(subscription) = result {
                    routes.events.insert(subscription, sender);
                }
                let _ = reply.send(result);
            }
            Command::EventUnsubscribe { subscription } => {
                routes.events.remove(&subscription);
                let _ = session.event_unsubscribe(subscription, now);
            }
            Command::EventEmit { name, data, reply } => {
                let _ = reply.send(session.event_emit(&name, data.as_deref(), now));
            }
            Command::Listen {
                pattern,
                sender,
                reply,
            } => {
                let result = session.event_listen(&pattern, now);
                if let Ok(listen) = result {
                    routes.listens.insert(listen, sender);
                }
                let _ = reply.send(result);
            }
            Command::Unlisten { listen } => {
                routes.listens.remove(&listen);
                let _ = session.event_unlisten(listen, now);
            }
            Command::ListenRespond {
                listen,
                name,
                accept,
            } => {
                let _ = session.event_listen_respond(listen, &name, accept, now);
            }
            Command::RpcProvide {
                name,
                sender,
                reply,
            } => {
                let result = session.rpc_provide(&name, now);
                if let Ok(provider) = result {
                    routes.providers.insert(provider, sender);
                }
                let _ = reply.send(result);
            }
            Command::RpcUnprovide { provider } => {
                routes.providers.remove(&provider);
                let _ = session.rpc_unprovide(provider, now);
            }
            Command::RpcMake { name, data, reply } => {
                match session.rpc_make(&name, data.as_deref(), now) {
                    Ok(request) => {
                        routes.rpcs.insert(request, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Command::RpcAnswer {
                request,
                answer,
                reply,
            } => {
                let result = match answer {
                    RpcAnswer::Accept => session.rpc_accept(request),
                    RpcAnswer::Respond(data) => session.rpc_respond(request, data.as_deref()),
                    RpcAnswer::Error(message) => session.rpc_error(request, &message),
                    RpcAnswer::Reject => session.rpc_reject(request),
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Command::PresenceSubscribe {
                user,
                sender,
                reply,
            } => {
                let result = if session.state().is_final() {
                    Err(PresenceError::ClientOffline)
                } else {
                    match user {
                        Some(user) => session.presence_subscribe(&user, now),
                        None => Ok(session.presence_subscribe_all(now)),
                    }
                };
                if let Ok(subscription) = result {
                    routes.presence.insert(subscription, sender);
                }
                let _ = reply.send(result);
            }
            Command::PresenceUnsubscribe { subscription } => {
                routes.presence.remove(&subscription);
                let _ = session.presence_unsubscribe(subscription, now);
            }
            Command::PresenceQueryAll { reply } => match session.presence_query_all(now) {
                Ok(request) => {
                    routes.queries_all.insert(request, reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            Command::PresenceQuery { users, reply } => {
                let users: Vec<&str> = users.iter().map(String::as_str).collect();
                match session.presence_query(&users, now) {
                    Ok(request) => {
                        routes.queries.insert(request, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
        }
    }

    fn route(&mut self, event: Event) {
        let routes = &mut self.routes;
        match event {
            Event::ConnectionStateChanged(state) => {
                self.state.send_replace(state);
            }
            Event::LoggedIn { client_data } => {
                if let Some(reply) = routes.login.take() {
                    let _ = reply.send(Ok(client_data));
                }
            }
            Event::LoginFailed(error) => {
                if let Some(reply) = routes.login.take() {
                    let _ = reply.send(Err(error));
                }
            }
            Event::Error(error) => {
                tracing::debug!(%error, "deepstream client error");
                let _ = self.errors.send(error);
            }
            Event::EventReceived {
                subscription,
                name,
                data,
            } => {
                if let Some(sender) = routes.events.get(&subscription) {
                    let _ = sender.send(ReceivedEvent { name, data });
                }
            }
            Event::EventSubscriptionEnded { subscription, .. } => {
                routes.events.remove(&subscription);
            }
            Event::ListenRequest { listen, name, .. } => {
                if let Some(sender) = routes.listens.get(&listen) {
                    let _ = sender.send(ListenNotice::Found { name });
                }
            }
            Event::ListenStopped { listen, name, .. } => {
                if let Some(sender) = routes.listens.get(&listen) {
                    let _ = sender.send(ListenNotice::Stopped { name });
                }
            }
            Event::ListenRejected { listen, .. } => {
                routes.listens.remove(&listen);
            }
            Event::RpcRequest(incoming) => {
                let id = incoming.id;
                let delivered = routes
                    .providers
                    .get(&incoming.provider)
                    .is_some_and(|sender| sender.send(incoming).is_ok());
                if !delivered {
                    let _ = self.session.rpc_reject(id);
                }
            }
            Event::RpcProviderEnded { provider, .. } => {
                routes.providers.remove(&provider);
            }
            Event::RpcResult { request, result } => {
                if let Some(reply) = routes.rpcs.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Event::PresenceChanged {
                subscription,
                user,
                online,
            } => {
                if let Some(sender) = routes.presence.get(&subscription) {
                    let _ = sender.send(PresenceChange { user, online });
                }
            }
            Event::PresenceQueryAllResult { request, result } => {
                if let Some(reply) = routes.queries_all.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Event::PresenceQueryResult { request, result } => {
                if let Some(reply) = routes.queries.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Event::RecordReady { record } => {
                if let Some(reply) = routes.record_ready.remove(&record) {
                    let _ = reply.send(Ok(()));
                }
            }
            Event::RecordReadFailed { record, error } => {
                if let Some(reply) = routes.record_ready.remove(&record) {
                    let _ = reply.send(Err(error));
                }
            }
            Event::RecordChanged { subscription, data } => {
                if let Some((_, sender)) = routes.record_changes.get(&subscription) {
                    let _ = sender.send(data);
                }
            }
            Event::RecordDeleted { record } => {
                routes
                    .record_changes
                    .retain(|_, (owner, _)| *owner != record);
                if let Some(reply) = routes.record_ready.remove(&record) {
                    let _ = reply.send(Err(RecordError::UnknownHandle));
                }
            }
            Event::RecordClosed { record, error } => {
                routes
                    .record_changes
                    .retain(|_, (owner, _)| *owner != record);
                if let Some(reply) = routes.record_ready.remove(&record) {
                    let _ = reply.send(Err(error));
                }
            }
            Event::RecordProviderChanged { .. } => {}
            Event::RecordWriteResult { request, result }
            | Event::RecordDeleteResult { request, result }
            | Event::RecordNotifyResult { request, result } => {
                if let Some(reply) = routes.record_done.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Event::RecordSnapshotResult { request, result } => {
                if let Some(reply) = routes.record_snapshots.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Event::RecordHeadResult { request, result } => {
                if let Some(reply) = routes.record_heads.remove(&request) {
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Opens a WebSocket within [`SOCKET_TIMEOUT`].
pub(crate) async fn open_socket(url: String) -> Result<Socket, String> {
    match tokio::time::timeout(
        SOCKET_TIMEOUT,
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(error)) => Err(format!("{url}: {error}")),
        Err(_) => Err(format!("{url}: no connection within {SOCKET_TIMEOUT:?}")),
    }
}

async fn next_message(
    link: &mut Option<Link>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match link {
        Some(link) => link.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn connect(connecting: &mut Option<Connecting>) -> Result<Socket, String> {
    match connecting {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}
