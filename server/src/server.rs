//! The HTTP listener: the WebSocket endpoint, the health check, and shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::auth::{self, AuthError, Authenticator, ConnectionData};
use crate::config::Config;
use crate::connection;
use crate::services::Services;
use crate::storage::{self, Cache, Storage, StorageError};

/// Initial size of a connection's read buffer. Small, because most clients
/// are idle most of the time; the buffer grows for larger messages.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes the WebSocket layer collects before it writes to the socket on its
/// own; the connection's writer also flushes after every batch.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// How long shutdown waits for connections to close, and then for pending
/// record writes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers. An HTTP
/// connection idle for this long, before or between requests, is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed accept, such as when file descriptors ran out.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("failed to listen on {address}")]
    Bind {
        /// The address from the configuration.
        address: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The configured cache or storage could not be opened.
    #[error("opening the record cache and storage failed")]
    Storage(#[source] StorageError),
    /// The configured authentication could not be set up.
    #[error("setting up authentication failed")]
    Auth(#[source] AuthError),
}

/// A bound, not yet running deepstream server.
///
/// ```no_run
/// # async fn example() -> Result<(), deepstream_server::ServerError> {
/// use deepstream_server::{Config, Server};
///
/// let server = Server::bind(Config::embedded()).await?;
/// println!("listening on {}", server.local_addr());
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: Config,
    authenticator: Arc<dyn Authenticator>,
    stores: Option<(Arc<dyn Cache>, Arc<dyn Storage>)>,
}

impl Server {
    /// Sets up the authentication services of `config.auth` and opens the listening socket
    /// at `http.host` and `http.port` of `config`. Port 0 lets the operating system choose;
    /// see [`Server::local_addr`].
    ///
    /// # Errors
    ///
    /// [`ServerError::Auth`] when a users file cannot be loaded, and [`ServerError::Bind`]
    /// when the socket cannot be opened.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let authenticator = auth::from_config(&config.auth).map_err(ServerError::Auth)?;
        let address = format!("{}:{}", config.http.host, config.http.port);
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| ServerError::Bind {
                address: address.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { address, source })?;
        Ok(Server {
            listener,
            local_addr,
            config,
            authenticator,
            stores: None,
        })
    }

    /// Replaces the authentication services that the configuration selects.
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Server {
        self.authenticator = authenticator;
        self
    }

    /// Replaces the record cache and storage that the configuration selects.
    pub fn with_stores(mut self, cache: Arc<dyn Cache>, storage: Arc<dyn Storage>) -> Server {
        self.stores = Some((cache, storage));
        self
    }

    /// Returns the address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Opens the record cache and storage, then serves until `shutdown`
    /// completes. Shutdown closes every connection and waits up to ten seconds
    /// for them, then up to ten seconds for pending record writes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let stores = match self.stores {
            Some(stores) => stores,
            None => storage::open(&self.config)
                .await
                .map_err(ServerError::Storage)?,
        };
        tracing::info!(cache = %stores.0.description(), storage = %stores.1.description(), "record cache and storage ready");

        let (stop_sender, stop_receiver) = watch::channel(false);
        let websocket = self.config.websocket.clone();
        let services = Arc::new(Services::new(
            &self.config,
            websocket.clone().unwrap_or_default(),
            self.authenticator,
            stores,
            stop_receiver.clone(),
        ));
        services.start();
        tracing::info!(authentication = %services.authenticator.description(), "handlers started");

        let tracker = TaskTracker::new();
        let mut router =
            Router::new().route(&self.config.http.health_check_path, get(health_check));
        match &websocket {
            Some(endpoint) => {
                router = router.route(&endpoint.url_path, get(upgrade));
                tracing::info!(path = %endpoint.url_path, "WebSocket endpoint ready");
            }
            None => tracing::warn!("no ws-binary endpoint configured; clients cannot connect"),
        }
        let router = router.with_state(Endpoint {
            services: services.clone(),
            tracker: tracker.clone(),
        });

        tracing::info!(address = %self.local_addr, health_check = %self.config.http.health_check_path, "listening for HTTP and WebSocket connections");
        let accepting = accept_connections(self.listener, router, stop_receiver, tracker.clone());
        tokio::pin!(accepting);
        tokio::select! {
            () = &mut accepting => {}
            () = shutdown => {
                tracing::info!("shutting down: closing connections");
                let _ = stop_sender.send(true);
                accepting.await;
            }
        }

        tracker.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = tracker.len(),
                "connections still open after the shutdown timeout"
            );
        }
        if !services.records.drain(DRAIN_TIMEOUT).await {
            tracing::error!(
                "record operations still pending after the shutdown timeout; their writes may be lost"
            );
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Accepts TCP connections and serves HTTP/1.1 on each, with WebSocket
/// upgrades, until `stop` turns true. Connections are tracked by `tracker`;
/// on stop each finishes its current request and closes.
async fn accept_connections(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    tracker: TaskTracker,
) {
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually too many open files: wait instead of spinning.
                    tracing::warn!(%error, "accepting a TCP connection failed");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "setting TCP_NODELAY failed");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                router.clone().oneshot(request)
            },
        );
        let mut stop = stop.clone();
        tracker.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "HTTP connection ended with an error");
            }
        });
    }
}

#[derive(Clone)]
struct Endpoint {
    services: Arc<Services>,
    tracker: TaskTracker,
}

async fn health_check() -> StatusCode {
    StatusCode::OK
}

async fn upgrade(
    upgrade: WebSocketUpgrade,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(endpoint): State<Endpoint>,
) -> Response {
    let limit = endpoint.services.websocket.max_message_size;
    let tracker = endpoint.tracker.clone();
    let connection = ConnectionData::from_request(remote, &headers);
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            tracker.track_future(connection::serve(
                socket,
                endpoint.services,
                remote,
                connection,
            ))
        })
}
