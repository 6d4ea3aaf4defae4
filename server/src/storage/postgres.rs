//! The PostgreSQL storage: one table of `(name text primary key, version integer, data jsonb)`.

use std::collections::HashMap;
use std::error::Error as _;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};

use super::write_batch::{Batch, QueuedWrite, Write, WriteQueue};
use super::{BoxError, Operation, Storage, StorageError, StoredRecord};
use crate::config::{PostgresConfig, PostgresConnection};

/// Shown to clients of the database in `pg_stat_activity`.
const APPLICATION_NAME: &str = "deepstream";

/// A storage in a PostgreSQL table (`storage: {type: postgres}` or `{name: postgres}`).
///
/// Reads go over a set of connections (`max`, opened on first use), one query each. Writes go
/// through group commit over one more connection: every `set` and `delete` queued while the
/// previous transaction committed is written in one transaction, and each caller gets its
/// result after the commit. When a transaction fails, its writes are retried one by one, so that only
/// the callers whose records caused the failure get an error.
///
/// The `data` column is `jsonb`, so PostgreSQL parses the data and stores a normalized
/// document. A read returns the same JSON value but not the same text: object keys are
/// reordered, whitespace is normalized, and of duplicate keys only the last is kept. Data
/// that is not valid JSON, or that contains the escape `\u0000`, is rejected by PostgreSQL.
/// Connections do not use TLS.
#[derive(Debug)]
pub struct PostgresStorage {
    connector: Arc<Connector>,
    readers: Box<[AsyncMutex<Option<Arc<ReadConnection>>>]>,
    next_reader: AtomicUsize,
    queue: WriteQueue,
    writer: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

/// Opens connections with the configured settings.
#[derive(Debug)]
struct Connector {
    config: tokio_postgres::Config,
    connect_timeout: Duration,
    /// The quoted, schema-qualified table name for SQL text.
    table: String,
    description: String,
}

/// A connection for reads, with its prepared statement.
#[derive(Debug)]
struct ReadConnection {
    client: Client,
    get: Statement,
}

/// The connection for writes, with its prepared statements.
struct WriteConnection {
    client: Client,
    upsert: Statement,
    delete: Statement,
}

/// The writer task's state: it owns the receiving end of the write queue.
struct Writer {
    connector: Arc<Connector>,
    connection: Option<WriteConnection>,
}

/// The outcome of a batch for its callers.
enum BatchOutcome {
    /// Every write committed.
    Committed,
    /// Every write failed with this error.
    Failed(Arc<dyn std::error::Error + Send + Sync>),
    /// Each record's own outcome, after the batch failed and its writes were retried one by
    /// one.
    PerRecord(HashMap<String, Result<(), Arc<dyn std::error::Error + Send + Sync>>>),
}

impl PostgresStorage {
    /// Connects to PostgreSQL, creates the schema and the table when missing, and prepares the
    /// statements.
    ///
    /// # Errors
    ///
    /// [`StorageError::Open`] when the server cannot be reached, rejects the login, or the
    /// schema or table cannot be created or used.
    pub async fn connect(config: &PostgresConfig) -> Result<PostgresStorage, StorageError> {
        let connector = Arc::new(Connector::new(config)?);

        let client = connector.client().await.map_err(|error| {
            connector.open_error(
                error,
                "Check that PostgreSQL is running and reachable at this address, and that \
                 `storage.options` (host, port, user, password, database or connectionString) \
                 are right",
            )
        })?;
        create_table(&client, &config.schema, &config.table, &connector.table)
            .await
            .map_err(|error| {
                connector.open_error(
                    boxed(error),
                    format!(
                        "Check that the user may create schema `{}` and table `{}` in this \
                         database, or create them beforehand as (name text primary key, version \
                         integer not null, data jsonb not null)",
                        config.schema, config.table
                    ),
                )
            })?;
        let table_hint = format!(
            "Check that table `{}.{}` has the columns name text primary key, version integer and \
             data jsonb",
            config.schema, config.table
        );
        let first_reader = connector
            .read_connection_with(client)
            .await
            .map_err(|error| connector.open_error(error, &table_hint))?;
        let write_connection = connector
            .write_connection()
            .await
            .map_err(|error| connector.open_error(error, &table_hint))?;

        let (queue, receiver) = WriteQueue::new();
        let writer = Writer {
            connector: connector.clone(),
            connection: Some(write_connection),
        };
        let handle = tokio::spawn(writer.run(receiver));

        let mut readers: Vec<_> = (0..config.max_connections.max(1))
            .map(|_| AsyncMutex::new(None))
            .collect();
        readers[0] = AsyncMutex::new(Some(Arc::new(first_reader)));

        tracing::info!(storage = %connector.description, "connected to PostgreSQL");
        Ok(PostgresStorage {
            connector,
            readers: readers.into_boxed_slice(),
            next_reader: AtomicUsize::new(0),
            queue,
            writer: Mutex::new(Some(handle)),
            closed: AtomicBool::new(false),
        })
    }

    /// Commits the writes queued so far and closes every connection. Later operations fail
    /// with [`StorageError::Closed`]. Closing twice succeeds.
    ///
    /// # Errors
    ///
    /// [`StorageError::Operation`] when the writer task panicked.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.closed.store(true, Ordering::Release);
        self.queue.close();
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let joined = match handle {
            Some(handle) => handle.await.is_ok(),
            None => true,
        };
        for reader in &self.readers {
            reader.lock().await.take();
        }

        if !joined {
            return Err(StorageError::Operation {
                backend: self.description(),
                operation: Operation::Close,
                record: None,
                source: "the writer task panicked, so queued writes may be lost".into(),
            });
        }
        tracing::info!(storage = %self.connector.description, "closed the PostgreSQL storage");
        Ok(())
    }

    /// Returns a read connection, taking the slots in turn and reconnecting a slot whose
    /// connection was closed.
    async fn reader(&self) -> Result<Arc<ReadConnection>, BoxError> {
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let mut slot = self.readers[index].lock().await;
        if let Some(connection) = slot.as_ref()
            && !connection.client.is_closed()
        {
            return Ok(connection.clone());
        }

        let client = self.connector.client().await?;
        let connection = Arc::new(self.connector.read_connection_with(client).await?);
        *slot = Some(connection.clone());
        Ok(connection)
    }

    fn operation_error(&self, operation: Operation, name: &str, source: BoxError) -> StorageError {
        StorageError::Operation {
            backend: self.description(),
            operation,
            record: Some(name.to_owned()),
            source,
        }
    }
}

impl Connector {
    fn new(config: &PostgresConfig) -> Result<Connector, StorageError> {
        let mut client_config = match &config.connection {
            PostgresConnection::ConnectionString(text) => {
                tokio_postgres::Config::from_str(text.expose()).map_err(|error| {
                    StorageError::Open {
                        backend: "PostgreSQL storage".to_owned(),
                        hint: "Check `storage.options.connectionString`".to_owned(),
                        source: Box::new(error),
                    }
                })?
            }
            PostgresConnection::Parameters {
                host,
                port,
                user,
                password,
                database,
            } => {
                let mut client_config = tokio_postgres::Config::new();
                client_config
                    .host(host)
                    .port(*port)
                    .user(user)
                    .dbname(database);
                if let Some(password) = password {
                    client_config.password(password.expose());
                }
                client_config
            }
        };

        let connect_timeout = match client_config.get_connect_timeout() {
            Some(timeout) => *timeout,
            None => {
                client_config.connect_timeout(config.connect_timeout);
                config.connect_timeout
            }
        };
        if client_config.get_application_name().is_none() {
            client_config.application_name(APPLICATION_NAME);
        }

        let description = format!(
            "PostgreSQL storage at {} (database {}, table {}.{})",
            addresses(&client_config),
            client_config
                .get_dbname()
                .or(client_config.get_user())
                .unwrap_or("unknown"),
            config.schema,
            config.table,
        );
        Ok(Connector {
            config: client_config,
            connect_timeout,
            table: format!(
                "{}.{}",
                quote_identifier(&config.schema),
                quote_identifier(&config.table)
            ),
            description,
        })
    }

    /// Opens a connection and runs its I/O on a task of its own until the client is dropped.
    async fn client(&self) -> Result<Client, BoxError> {
        let connecting = self.config.connect(NoTls);
        let (client, connection) =
            match tokio::time::timeout(self.connect_timeout, connecting).await {
                Ok(connected) => connected.map_err(boxed)?,
                Err(_elapsed) => {
                    return Err(Box::new(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "connecting timed out after {} ms",
                            self.connect_timeout.as_millis()
                        ),
                    )));
                }
            };

        let description = self.description.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                let error = PostgresError(error);
                tracing::warn!(%error, storage = %description, "a PostgreSQL connection failed");
            }
        });
        Ok(client)
    }

    async fn read_connection_with(&self, client: Client) -> Result<ReadConnection, BoxError> {
        let get = client
            .prepare(&format!(
                "SELECT version, data::text FROM {} WHERE name = $1",
                self.table
            ))
            .await
            .map_err(boxed)?;
        let version_type = get.columns()[0].type_();
        if *version_type != Type::INT4 {
            return Err(format!(
                "column `version` has type {version_type}, expected integer (int4)"
            )
            .into());
        }
        Ok(ReadConnection { client, get })
    }

    async fn write_connection(&self) -> Result<WriteConnection, BoxError> {
        let client = self.client().await?;
        let upsert = client
            .prepare(&format!(
                "INSERT INTO {} (name, version, data) \
                 SELECT name, version, data::jsonb \
                 FROM unnest($1::text[], $2::int4[], $3::text[]) AS batch(name, version, data) \
                 ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, data = EXCLUDED.data",
                self.table
            ))
            .await
            .map_err(boxed)?;
        let delete = client
            .prepare(&format!(
                "DELETE FROM {} WHERE name = ANY($1::text[])",
                self.table
            ))
            .await
            .map_err(boxed)?;
        Ok(WriteConnection {
            client,
            upsert,
            delete,
        })
    }

    fn open_error(&self, source: BoxError, hint: impl Into<String>) -> StorageError {
        StorageError::Open {
            backend: self.description.clone(),
            hint: hint.into(),
            source,
        }
    }
}

impl Writer {
    /// Commits batches until the queue is closed and empty.
    async fn run(mut self, mut receiver: mpsc::Receiver<QueuedWrite>) {
        while let Some(first) = receiver.recv().await {
            let batch = Batch::fill(first, &mut receiver);
            let outcome = self.write_batch(&batch).await;
            let backend = &self.connector.description;
            let error =
                |name: &str, write: &Write, source: &Arc<dyn std::error::Error + Send + Sync>| {
                    StorageError::Operation {
                        backend: backend.clone(),
                        operation: write.operation(),
                        record: Some(name.to_owned()),
                        source: Box::new(source.clone()),
                    }
                };
            match outcome {
                BatchOutcome::Committed => batch.send_results(|_, _| Ok(())),
                BatchOutcome::Failed(source) => {
                    tracing::warn!(error = %source, writes = batch.len(), storage = %backend, "failed to write a batch to PostgreSQL");
                    batch.send_results(|name, write| Err(error(name, write, &source)));
                }
                BatchOutcome::PerRecord(results) => {
                    batch.send_results(|name, write| match results.get(name) {
                        Some(Ok(())) => Ok(()),
                        Some(Err(source)) => Err(error(name, write, source)),
                        None => Err(error(
                            name,
                            write,
                            &Arc::from(BoxError::from("the write was not attempted")),
                        )),
                    })
                }
            }
        }
    }

    /// Writes the latest write of each record in one transaction. When the transaction fails
    /// but the connection is still up, the failure came from the data of some records, so
    /// the writes are retried one by one to find them.
    async fn write_batch(&mut self, batch: &Batch) -> BatchOutcome {
        let latest = batch.latest();
        let first_error = match self.write(&latest).await {
            Ok(()) => return BatchOutcome::Committed,
            Err(error) => Arc::from(error),
        };
        if latest.len() == 1 || !self.is_connected() {
            return BatchOutcome::Failed(first_error);
        }

        let mut results = HashMap::with_capacity(latest.len());
        let mut connection_error = None;
        for &(name, write) in &latest {
            // Once the connection is lost, each retry would wait for a reconnection, so the
            // remaining writes fail with the error that ended it.
            let result = match &connection_error {
                Some(error) => Err(Arc::clone(error)),
                None => self.write(&[(name, write)]).await.map_err(Arc::from),
            };
            if let Err(error) = &result {
                tracing::warn!(%error, record = name, storage = %self.connector.description, "failed to write a record to PostgreSQL");
                if connection_error.is_none() && !self.is_connected() {
                    connection_error = Some(Arc::clone(error));
                }
            }
            results.insert(name.to_owned(), result);
        }
        BatchOutcome::PerRecord(results)
    }

    fn is_connected(&self) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|connection| !connection.client.is_closed())
    }

    /// Writes `writes` in one transaction, reconnecting first when the connection was closed.
    async fn write(&mut self, writes: &[(&str, &Write)]) -> Result<(), BoxError> {
        let mut set_names = Vec::new();
        let mut set_versions = Vec::new();
        let mut set_data = Vec::new();
        let mut delete_names = Vec::new();
        for &(name, write) in writes {
            match write {
                Write::Set(record) => {
                    let data = std::str::from_utf8(&record.data)
                        .map_err(|error| format!("the data is not valid UTF-8 ({error})"))?;
                    set_names.push(name);
                    set_versions.push(record.version);
                    set_data.push(data);
                }
                Write::Delete => delete_names.push(name),
            }
        }

        let connection = self.connection().await?;
        let transaction = connection.client.transaction().await.map_err(boxed)?;
        if !delete_names.is_empty() {
            transaction
                .execute(&connection.delete, &[&delete_names])
                .await
                .map_err(boxed)?;
        }
        if !set_names.is_empty() {
            transaction
                .execute(&connection.upsert, &[&set_names, &set_versions, &set_data])
                .await
                .map_err(boxed)?;
        }
        transaction.commit().await.map_err(boxed)?;
        Ok(())
    }

    async fn connection(&mut self) -> Result<&mut WriteConnection, BoxError> {
        if !self.is_connected() {
            self.connection = None;
            tracing::info!(storage = %self.connector.description, "reconnecting the PostgreSQL write connection");
            self.connection = Some(self.connector.write_connection().await?);
        }
        // Set just above when it was missing or closed.
        self.connection
            .as_mut()
            .ok_or_else(|| "the write connection is missing".into())
    }
}

/// Creates the schema and the table when they do not exist. Existence is checked first, so a
/// user without the CREATE privilege can use a table that an administrator created.
async fn create_table(
    client: &Client,
    schema: &str,
    table: &str,
    qualified: &str,
) -> Result<(), tokio_postgres::Error> {
    let schema_exists = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await?
        .is_some();
    if !schema_exists {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_identifier(schema)
            ))
            .await?;
        tracing::info!(schema, "created the PostgreSQL schema");
    }

    let table_exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])
        .await?
        .get(0);
    if !table_exists {
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {qualified} \
                 (name text PRIMARY KEY, version integer NOT NULL, data jsonb NOT NULL)"
            ))
            .await?;
        tracing::info!(schema, table, "created the PostgreSQL table");
    }
    Ok(())
}

/// A tokio-postgres error whose message includes its cause, such as the server's error text,
/// which tokio-postgres's own message leaves out (it prints only "db error").
#[derive(Debug)]
struct PostgresError(tokio_postgres::Error);

fn boxed(error: tokio_postgres::Error) -> BoxError {
    Box::new(PostgresError(error))
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db_error) = self.0.as_db_error() {
            write!(
                f,
                "{} {}: {}",
                db_error.severity(),
                db_error.code().code(),
                db_error.message()
            )?;
            if let Some(detail) = db_error.detail() {
                write!(f, " ({detail})")?;
            }
            return Ok(());
        }
        write!(f, "{}", self.0)?;
        if let Some(cause) = self.0.source() {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PostgresError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Quotes an SQL identifier, doubling any quote inside it.
fn quote_identifier(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Returns the configured hosts and ports for a description, such as `127.0.0.1:5432`.
fn addresses(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let host = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            // libpq uses one port for every host when only one is given.
            let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    if hosts.is_empty() {
        "an unnamed host".to_owned()
    } else {
        hosts.join(",")
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed {
                backend: self.description(),
                operation: Operation::Get,
                record: Some(name.to_owned()),
            });
        }
        let connection = self
            .reader()
            .await
            .map_err(|error| self.operation_error(Operation::Get, name, error))?;
        let row = connection
            .client
            .query_opt(&connection.get, &[&name])
            .await
            .map_err(|error| self.operation_error(Operation::Get, name, boxed(error)))?;
        let Some(row) = row else {
            return Ok(None);
        };

        let version: i32 = row
            .try_get(0)
            .map_err(|error| self.operation_error(Operation::Get, name, boxed(error)))?;
        let data: String = row
            .try_get(1)
            .map_err(|error| self.operation_error(Operation::Get, name, boxed(error)))?;
        Ok(Some(StoredRecord {
            version,
            data: Bytes::from(data),
        }))
    }

    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError> {
        self.queue
            .submit(name, Write::Set(record), || self.description())
            .await
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.queue
            .submit(name, Write::Delete, || self.description())
            .await
    }

    fn description(&self) -> String {
        self.connector.description.clone()
    }

    async fn close(&self) -> Result<(), StorageError> {
        PostgresStorage::close(self).await
    }
}
