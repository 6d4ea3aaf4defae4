//! The driver for this repository's Rust client (`deepstream-client`): it
//! reads commands from stdin and writes replies and observations to stdout,
//! as `conformance/README.md` specifies.
//!
//! Commands run one at a time in arrival order. Each line is parsed into a
//! typed [`Command`] first, so bad input fails before it reaches the client.
//! Subscriptions, listeners, providers and the client's error stream run as
//! tasks that write observations as they arrive.

mod command;
mod events;
mod failure;
mod presence;
mod records;
mod rpc;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use deepstream_client::core::{ConnectionState, Options, SessionError};
use deepstream_client::tokio::{Client, ListenRequest};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use command::Command;
use failure::Failure;
use records::Opened;

/// Runs the driver until stdin closes.
pub async fn run() -> std::io::Result<()> {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = receiver.recv().await {
            let mut text = line.to_string();
            text.push('\n');
            if stdout.write_all(text.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });

    let observations = Observations(sender);
    let mut driver = Driver {
        connection: None,
        observations: observations.clone(),
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = driver.handle_line(&line).await;
        if observations.0.send(reply).is_err() {
            break;
        }
    }

    if let Some(connection) = driver.connection.take() {
        connection.close().await;
    }
    drop(driver);
    drop(observations);
    let _ = writer.await;
    Ok(())
}

/// The driver's state: the connection of the last `connect`, if any.
struct Driver {
    connection: Option<Connection>,
    observations: Observations,
}

impl Driver {
    async fn handle_line(&mut self, line: &str) -> Value {
        let command: Map<String, Value> = match serde_json::from_str(line) {
            Ok(command) => command,
            Err(error) => {
                return json!({"kind": "reply", "id": null, "error": "INVALID_COMMAND",
                              "message": format!("invalid command line: {error}")});
            }
        };
        let id = command.get("id").cloned().unwrap_or(Value::Null);
        let result = match Command::parse(&command) {
            Ok(command) => self.handle(command).await,
            Err(failure) => Err(failure),
        };
        match result {
            Ok(result) => json!({"kind": "reply", "id": id, "result": result}),
            Err(failure) => json!({"kind": "reply", "id": id, "error": failure.code,
                                   "message": failure.message}),
        }
    }

    async fn handle(&mut self, command: Command) -> Result<Value, Failure> {
        if let Command::Connect { url } = command {
            // A new `connect` replaces the previous client and all it opened.
            if let Some(previous) = self.connection.take() {
                previous.close().await;
            }
            self.connection = Some(Connection::open(&url, self.observations.clone()).await?);
            return Ok(Value::Null);
        }
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| Failure::invalid("send `connect` first"))?;
        connection.execute(command).await
    }
}

/// The sending side of stdout, shared by replies and observations.
#[derive(Debug, Clone)]
struct Observations(mpsc::UnboundedSender<Value>);

impl Observations {
    fn send(&self, observation: Value) {
        // The receiver is gone only once the driver is stopping.
        let _ = self.0.send(observation);
    }
}

/// Listen requests waiting for an `accept` or `reject` command, by name.
type PendingListens = Arc<Mutex<HashMap<String, ListenRequest>>>;

/// The client of one `connect` and everything opened through it.
struct Connection {
    client: Client,
    /// Records and lists by name, kept until `record-delete`.
    opened: HashMap<String, Opened>,
    /// The tasks of event subscriptions by name, for `unsubscribe`.
    event_tasks: HashMap<String, Vec<JoinHandle<()>>>,
    listens: PendingListens,
    /// Every other task that writes observations.
    tasks: JoinSet<()>,
    observations: Observations,
}

impl Connection {
    async fn open(url: &str, observations: Observations) -> Result<Connection, Failure> {
        let client = Client::connect(url, Options::default())
            .await
            .map_err(|error| Failure::new("CONNECT_FAILED", error.to_string()))?;
        let mut tasks = JoinSet::new();
        tasks.spawn(forward_errors(client.errors(), observations.clone()));
        tasks.spawn(report_connection_errors(
            client.state_changes(),
            observations.clone(),
        ));
        Ok(Connection {
            client,
            opened: HashMap::new(),
            event_tasks: HashMap::new(),
            listens: Arc::default(),
            tasks,
            observations,
        })
    }

    async fn execute(&mut self, command: Command) -> Result<Value, Failure> {
        match command {
            Command::Connect { .. } => Err(Failure::invalid("`connect` is handled by the driver")),
            Command::Login { auth } => self.login(&auth).await,
            Command::Close => {
                self.client.close().await;
                Ok(Value::Null)
            }
            Command::Subscribe { name } => self.subscribe(&name).await,
            Command::SubscribeMany { names } => self.subscribe_many(&names).await,
            Command::Unsubscribe { name } => self.unsubscribe(&name).await,
            Command::Emit { name, data } => self.emit(&name, data.as_deref()).await,
            Command::Listen { pattern } => self.listen(pattern).await,
            Command::RecordListen => Err(Failure::new(
                "UNSUPPORTED",
                "deepstream-client has no record listening",
            )),
            Command::AnswerListen { name, accept } => self.answer_listen(&name, accept),
            Command::Provide { name, response } => self.provide(&name, response).await,
            Command::Make { name, data } => self.make(&name, data.as_deref()).await,
            Command::PresenceGetAll => self.presence_get_all().await,
            Command::PresenceGet { users } => self.presence_get(&users).await,
            Command::PresenceSubscribe { user } => self.presence_subscribe(user.as_deref()).await,
            Command::RecordGet { name } => self.record_get(&name).await,
            Command::RecordVersion { name } => self.record_version(&name).await,
            Command::RecordSet(write) => self.record_set(&write).await,
            Command::RecordErase { name, path } => self.record_erase(&name, &path).await,
            Command::RecordSubscribe { name, path } => self.record_subscribe(name, path).await,
            Command::RecordSubscribeMany { names } => self.record_subscribe_many(&names).await,
            Command::RecordDelete { name } => self.record_delete(&name).await,
            Command::RecordHas { name } => self.record_has(&name).await,
            Command::RecordSnapshot { name } => self.record_snapshot(&name).await,
            Command::RecordHead { name } => self.record_head(&name).await,
            Command::RecordSetData(write) => self.record_set_data(&write).await,
            Command::RecordNotify { names } => self.record_notify(&names).await,
            Command::ListGet { name } => self.list_get(&name).await,
            Command::ListSet { name, entries } => self.list_set(&name, &entries).await,
            Command::ListAdd { name, entry, index } => self.list_add(&name, &entry, index).await,
            Command::ListRemove { name, entry } => self.list_remove(&name, &entry).await,
            Command::ListSubscribe { name } => self.list_subscribe(name).await,
        }
    }

    async fn login(&self, auth: &str) -> Result<Value, Failure> {
        // A client closed for good fails every login with the reason it
        // closed, such as `TooManyAttempts`. The server judged no credentials
        // here, so this is `FAILED`, not that reason's code.
        let state = self.client.state();
        if state.is_final() {
            return Err(Failure::failed(format!(
                "the client is closed for good ({state:?}) and cannot log in"
            )));
        }
        let client_data = self.client.login(auth).await?;
        Ok(client_data
            .as_deref()
            .map(parse_json_lossy)
            .unwrap_or(Value::Null))
    }

    /// Closes the client and stops every task that writes observations.
    async fn close(mut self) {
        self.client.close().await;
        for task in self.event_tasks.drain().flat_map(|(_, tasks)| tasks) {
            task.abort();
            let _ = task.await;
        }
        self.tasks.shutdown().await;
    }
}

/// Writes the server errors that the client reports outside any command as
/// `error` observations.
async fn forward_errors(mut errors: broadcast::Receiver<SessionError>, observations: Observations) {
    loop {
        let (topic, code, name) = match errors.recv().await {
            Ok(SessionError::Server {
                topic,
                action,
                name,
                ..
            }) => {
                let topic = topic.as_str_name();
                (topic.strip_prefix("TOPIC_").unwrap_or(topic), action, name)
            }
            Ok(SessionError::Parser { action, .. }) => ("PARSER", action, String::new()),
            Ok(other) => {
                tracing::debug!(error = %other, "client error without an error action");
                continue;
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::warn!(
                    skipped,
                    "client errors were lost because the driver fell behind"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let name = (!name.is_empty()).then_some(name);
        observations.send(json!({"kind": "error", "topic": topic, "code": code, "name": name}));
    }
}

/// Writes `error` observations for connection changes that the client
/// reports only as state changes: the connection lost (the client then
/// reconnects), and the close after too many failed logins, whose last
/// login ended with a rejection.
async fn report_connection_errors(
    mut states: watch::Receiver<ConnectionState>,
    observations: Observations,
) {
    let mut previous = *states.borrow_and_update();
    while states.changed().await.is_ok() {
        let state = *states.borrow_and_update();
        let (topic, code) = match state {
            ConnectionState::Reconnecting if previous != ConnectionState::Reconnecting => {
                ("CONNECTION", "CONNECTION_ERROR")
            }
            ConnectionState::TooManyAuthAttempts => ("AUTH", "TOO_MANY_AUTH_ATTEMPTS"),
            _ => {
                previous = state;
                continue;
            }
        };
        previous = state;
        observations.send(json!({"kind": "error", "topic": topic, "code": code, "name": null}));
    }
}

/// Polls every future once, so that each one sends its request to the
/// client before any is awaited, then awaits them in order.
///
/// The client collects subscriptions made within a few milliseconds into
/// bulk messages, so starting them together gives one bulk message as the
/// official client sends, where awaiting one at a time would not.
async fn start_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        for (future, output) in futures.iter_mut().zip(&mut outputs) {
            if let Poll::Ready(value) = future.as_mut().poll(context) {
                *output = Some(value);
            }
        }
        Poll::Ready(())
    })
    .await;

    let mut results = Vec::with_capacity(futures.len());
    for (future, output) in futures.into_iter().zip(outputs) {
        // A future that finished in the first poll must not be polled again.
        let value = match output {
            Some(value) => value,
            None => future.await,
        };
        results.push(value);
    }
    results
}

fn parse_json(text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|error| Failure::failed(format!("invalid JSON from the client: {error}")))
}

/// Parses JSON text that the client received, keeping invalid text as a string.
fn parse_json_lossy(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}
