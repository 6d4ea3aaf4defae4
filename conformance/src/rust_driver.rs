//! The driver for this repository's Rust client (`deepstream-client`): it
//! reads commands from stdin and writes replies and observations to stdout,
//! as `conformance/README.md` specifies.
//!
//! Commands run one at a time in arrival order. Subscriptions, listeners and
//! providers run as tasks that write observations as they arrive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deepstream_client::core::{
    EventError, LoginError, Options, PresenceError, RecordError, RpcError,
};
use deepstream_client::tokio::{Client, ListenEvent, ListenRequest, Record};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

type Lines = mpsc::UnboundedSender<Value>;

/// Listen requests waiting for an `accept` or `reject` command, by name.
type PendingListens = Arc<Mutex<HashMap<String, ListenRequest>>>;

/// A command's failure: a protocol-level code and a message.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Failure {
        Failure::new("INVALID_COMMAND", message)
    }
}

/// Maps every other client error to the code `FAILED` with its message.
macro_rules! failed_from {
    ($($error:ty),*) => {$(
        impl From<$error> for Failure {
            fn from(error: $error) -> Failure {
                Failure::new("FAILED", error.to_string())
            }
        }
    )*};
}

failed_from!(EventError, LoginError, PresenceError, RecordError, RpcError);

/// The driver's state: one client and the records it opened.
struct State {
    client: Option<Client>,
    records: HashMap<String, Record>,
    listens: PendingListens,
    output: Lines,
}

/// Runs the driver until stdin closes.
pub async fn run() -> std::io::Result<()> {
    let (output, mut receiver) = mpsc::unbounded_channel::<Value>();
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

    let mut state = State {
        client: None,
        records: HashMap::new(),
        listens: Arc::default(),
        output: output.clone(),
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = state.handle_line(&line).await;
        if output.send(reply).is_err() {
            break;
        }
    }

    if let Some(client) = state.client.take() {
        client.close().await;
    }
    drop(state);
    drop(output);
    let _ = writer.await;
    Ok(())
}

impl State {
    async fn handle_line(&mut self, line: &str) -> Value {
        let command: Map<String, Value> = match serde_json::from_str(line) {
            Ok(command) => command,
            Err(error) => {
                return json!({"kind": "reply", "id": null, "error": "INVALID_COMMAND",
                              "message": format!("invalid command line: {error}")});
            }
        };
        let id = command.get("id").cloned().unwrap_or(Value::Null);
        match self.handle(&command).await {
            Ok(result) => json!({"kind": "reply", "id": id, "result": result}),
            Err(failure) => json!({"kind": "reply", "id": id, "error": failure.code,
                                   "message": failure.message}),
        }
    }

    async fn handle(&mut self, command: &Map<String, Value>) -> Result<Value, Failure> {
        let operation = text(command, "op")?;
        if operation == "connect" {
            let url = text(command, "url")?;
            let client = Client::connect(url, Options::default())
                .await
                .map_err(|error| Failure::new("CONNECT_FAILED", error.to_string()))?;
            self.client = Some(client);
            return Ok(Value::Null);
        }
        let client = self
            .client
            .clone()
            .ok_or_else(|| Failure::invalid("send `connect` first"))?;

        match operation {
            "login" => login(&client, command).await,
            "close" => {
                client.close().await;
                Ok(Value::Null)
            }
            "subscribe" => self.subscribe(&client, command).await,
            "emit" => {
                let data = command.get("data").map(Value::to_string);
                client
                    .event()
                    .emit_data(text(command, "name")?, data.as_deref())
                    .await?;
                Ok(Value::Null)
            }
            "listen" => self.listen(&client, command).await,
            "accept" | "reject" => self.respond_to_listen(operation, command),
            "provide" => self.provide(&client, command).await,
            "make" => make(&client, command).await,
            "presence-get-all" => {
                let mut users = client.presence().get_all().await?;
                users.sort();
                Ok(json!(users))
            }
            "record-get" => {
                let record = self.record(&client, text(command, "name")?).await?;
                parse_json(&record.get().await?)
            }
            "record-set" => self.record_set(&client, command).await,
            "record-subscribe" => self.record_subscribe(&client, command).await,
            "record-delete" => {
                let name = text(command, "name")?;
                let record = match self.records.remove(name) {
                    Some(record) => record,
                    None => client.record().get(name).await?,
                };
                record.delete().await?;
                Ok(Value::Null)
            }
            "record-has" => {
                let has = client.record().has(text(command, "name")?).await?;
                Ok(json!(has))
            }
            other => Err(Failure::invalid(format!("unknown op {other:?}"))),
        }
    }

    async fn subscribe(
        &self,
        client: &Client,
        command: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let mut subscription = client.event().subscribe(text(command, "name")?).await?;
        let output = self.output.clone();
        tokio::spawn(async move {
            while let Some(event) = subscription.next().await {
                let data = event.data.as_deref().map(parse_json_lossy);
                let _ = output.send(json!({"kind": "event", "name": event.name, "data": data}));
            }
        });
        Ok(Value::Null)
    }

    async fn listen(
        &self,
        client: &Client,
        command: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let pattern = text(command, "pattern")?.to_owned();
        let mut listener = client.event().listen(&pattern).await?;
        let output = self.output.clone();
        let listens = Arc::clone(&self.listens);
        tokio::spawn(async move {
            while let Some(event) = listener.next().await {
                let (name, state) = match event {
                    ListenEvent::Request(request) => {
                        let name = request.name().to_owned();
                        lock(&listens).insert(name.clone(), request);
                        (name, "start")
                    }
                    ListenEvent::Stopped { name } => (name, "stop"),
                    _ => continue,
                };
                let _ = output.send(
                    json!({"kind": "listen", "pattern": pattern, "name": name, "state": state}),
                );
            }
        });
        Ok(Value::Null)
    }

    fn respond_to_listen(
        &self,
        operation: &str,
        command: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let name = text(command, "name")?;
        let request = lock(&self.listens)
            .remove(name)
            .ok_or_else(|| Failure::invalid(format!("no listen request for {name:?}")))?;
        if operation == "accept" {
            request.accept();
        } else {
            request.reject();
        }
        Ok(Value::Null)
    }

    async fn provide(
        &self,
        client: &Client,
        command: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let reply = command
            .get("reply")
            .ok_or_else(|| Failure::invalid("`provide` needs `reply`"))?
            .to_string();
        let mut provider = client.rpc().provide(text(command, "name")?).await?;
        let output = self.output.clone();
        tokio::spawn(async move {
            while let Some(request) = provider.next().await {
                let data = request.data().map(parse_json_lossy);
                let _ = output
                    .send(json!({"kind": "rpc-request", "name": request.name(), "data": data}));
                if let Err(error) = request.send(&reply).await {
                    tracing::warn!(%error, "sending the RPC response failed");
                }
            }
        });
        Ok(Value::Null)
    }

    /// Returns the record `name`, opening it on first use.
    async fn record(&mut self, client: &Client, name: &str) -> Result<&Record, Failure> {
        if !self.records.contains_key(name) {
            let record = client.record().get(name).await?;
            self.records.insert(name.to_owned(), record);
        }
        self.records
            .get(name)
            .ok_or_else(|| Failure::new("FAILED", "record missing right after opening it"))
    }

    async fn record_set(
        &mut self,
        client: &Client,
        command: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let data = command
            .get("data")
            .ok_or_else(|| Failure::invalid("`record-set` needs `data`"))?
            .to_string();
        let path = optional_text(command, "path")?;
        let record = self.record(client, text(command, "name")?).await?;
        match path {
            Some(path) => record.set_path_with_ack(path, &data).await,
            None => record.set_with_ack(&data).await,
        }?;
        Ok(Value::Null)
    }

    async fn record_subscribe(
        &mut self,
        client: &Client,
        command: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let name = text(command, "name")?.to_owned();
        let path = optional_text(command, "path")?.map(str::to_owned);
        let record = self.record(client, &name).await?;
        let mut subscription = match &path {
            Some(path) => record.subscribe_path(path).await,
            None => record.subscribe().await,
        }?;
        let output = self.output.clone();
        tokio::spawn(async move {
            while let Some(value) = subscription.next().await {
                let data = value.as_deref().map(parse_json_lossy);
                let _ = output
                    .send(json!({"kind": "record", "name": name, "path": path, "data": data}));
            }
            let _ = output.send(json!({"kind": "record-deleted", "name": name}));
        });
        Ok(Value::Null)
    }
}

async fn login(client: &Client, command: &Map<String, Value>) -> Result<Value, Failure> {
    let auth = command.get("auth").cloned().unwrap_or_else(|| json!({}));
    match client.login(&auth.to_string()).await {
        Ok(client_data) => Ok(client_data
            .as_deref()
            .map(parse_json_lossy)
            .unwrap_or(Value::Null)),
        Err(error @ LoginError::Rejected { .. }) => {
            Err(Failure::new("LOGIN_REJECTED", error.to_string()))
        }
        Err(error) => Err(error.into()),
    }
}

async fn make(client: &Client, command: &Map<String, Value>) -> Result<Value, Failure> {
    let data = command.get("data").map(Value::to_string);
    match client
        .rpc()
        .make_data(text(command, "name")?, data.as_deref())
        .await
    {
        Ok(Some(result)) => parse_json(&result),
        Ok(None) => Ok(Value::Null),
        Err(error @ RpcError::NoProvider) => {
            Err(Failure::new("NO_RPC_PROVIDER", error.to_string()))
        }
        Err(error) => Err(error.into()),
    }
}

fn text<'a>(command: &'a Map<String, Value>, field: &str) -> Result<&'a str, Failure> {
    optional_text(command, field)?.ok_or_else(|| Failure::invalid(format!("`{field}` is missing")))
}

fn optional_text<'a>(
    command: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, Failure> {
    match command.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(other) => Err(Failure::invalid(format!(
            "`{field}` must be a string, not {other}"
        ))),
    }
}

fn parse_json(text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|error| Failure::new("FAILED", format!("invalid JSON from the client: {error}")))
}

/// Parses JSON text that the client received, keeping invalid text as a string.
fn parse_json_lossy(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn lock(listens: &PendingListens) -> std::sync::MutexGuard<'_, HashMap<String, ListenRequest>> {
    // A panic while holding the lock leaves only a map of pending requests,
    // which stays usable.
    listens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
