//! The HTTP listener: the WebSocket endpoint, the health check, and shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::header;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::access::unix_millis;
use crate::auth::{self, AuthError, Authenticator, ConnectionData};
use crate::config::{Config, MonitoringConfig};
use crate::connection;
use crate::http_api::HttpApi;
use crate::monitoring::report::StatsReport;
use crate::monitoring::{Monitor, Monitoring, prometheus};
use crate::services::Services;
use crate::storage::{self, Cache, Storage, StorageError};

/// Initial size of a connection's read buffer. Small, because most clients
/// are idle most of the time; the buffer grows for larger messages.
const READ_BUFFER_BYTES: usize = 1024;
/// Bytes the WebSocket layer collects before it writes to the socket on its
/// own; the connection's writer also flushes after every batch.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// How long shutdown waits for connections to close, and then for pending
/// record writes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers. An HTTP
/// connection idle for this long, before or between requests, is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The URL path of the Prometheus text endpoint.
pub const METRICS_PATH: &str = "/metrics";
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
    /// Two endpoints of the configuration have the same URL path.
    #[error(
        "the URL path {path} is configured for both {first} and {second}; give each endpoint its own path"
    )]
    PathConflict {
        /// The path.
        path: String,
        /// One endpoint that uses it.
        first: &'static str,
        /// The other endpoint that uses it.
        second: &'static str,
    },
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
    monitoring: Option<Arc<dyn Monitoring>>,
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
        check_paths(&config)?;
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
            monitoring: None,
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

    /// Adds monitoring hooks, called besides the server's own counters.
    pub fn with_monitoring(mut self, monitoring: Arc<dyn Monitoring>) -> Server {
        self.monitoring = Some(monitoring);
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
            Monitor::new(self.monitoring),
            stop_receiver.clone(),
        ));
        services.start();
        tracing::info!(authentication = %services.authenticator.description(), "handlers started");

        let tracker = TaskTracker::new();
        let mut router = Router::new()
            .route(&self.config.http.health_check_path, get(health_check))
            .route(METRICS_PATH, get(metrics));
        router = monitoring_report(
            router,
            &self.config.monitoring,
            &services,
            &tracker,
            &stop_receiver,
        );
        if let Some(config) = &self.config.http_api {
            let api = HttpApi::new(config.clone(), &self.config.http, services.clone());
            router = router.merge(api.routes());
            let auth_path = config
                .enable_auth_endpoint
                .then_some(config.auth_path.as_str());
            tracing::info!(path = %config.post_path, auth_path, "HTTP API ready");
        }
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

/// Checks that no two endpoints share a URL path, which the router cannot serve.
fn check_paths(config: &Config) -> Result<(), ServerError> {
    let mut paths: Vec<(&str, &'static str)> = vec![
        (config.http.health_check_path.as_str(), "the health check"),
        (METRICS_PATH, "the Prometheus metrics"),
    ];
    if let Some(websocket) = &config.websocket {
        paths.push((websocket.url_path.as_str(), "the WebSocket endpoint"));
    }
    if let MonitoringConfig::Http(http) = &config.monitoring {
        paths.push((http.path.as_str(), "monitoring.options.url"));
    }
    if let Some(api) = &config.http_api {
        paths.push((api.post_path.as_str(), "the HTTP API (postPath)"));
        if api.enable_auth_endpoint {
            paths.push((api.auth_path.as_str(), "the HTTP API tokens (authPath)"));
        }
    }
    for (index, (path, first)) in paths.iter().enumerate() {
        if let Some((_, second)) = paths[index + 1..].iter().find(|(other, _)| other == path) {
            return Err(ServerError::PathConflict {
                path: (*path).to_owned(),
                first,
                second,
            });
        }
    }
    Ok(())
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

/// Adds the report that `config` selects: a route for `http`, a logging task for `log`.
fn monitoring_report(
    router: Router<Endpoint>,
    config: &MonitoringConfig,
    services: &Arc<Services>,
    tracker: &TaskTracker,
    stop: &watch::Receiver<bool>,
) -> Router<Endpoint> {
    match config {
        MonitoringConfig::Http(http) => {
            let report = Arc::new(HttpReport {
                report: StatsReport::new(services.monitor.metrics.snapshot(), unix_millis()),
                required_header: http.required_header.clone(),
            });
            tracing::info!(path = %http.path, "monitoring endpoint ready");
            router.route(
                &http.path,
                get(
                    move |headers: HeaderMap, State(endpoint): State<Endpoint>| {
                        monitoring_stats(headers, endpoint, report.clone())
                    },
                ),
            )
        }
        MonitoringConfig::Log { interval, key } => {
            tracker.spawn(log_stats(
                services.clone(),
                *interval,
                key.clone(),
                stop.clone(),
            ));
            tracing::info!(interval_ms = interval.as_millis(), "monitoring log started");
            router
        }
        _ => router,
    }
}

struct HttpReport {
    report: StatsReport,
    required_header: Option<(String, String)>,
}

/// Serves deepstream's statistics since the previous request, to callers with the configured
/// header. Others get 404, as in deepstream, so the endpoint does not reveal itself.
async fn monitoring_stats(
    headers: HeaderMap,
    endpoint: Endpoint,
    report: Arc<HttpReport>,
) -> Response {
    if let Some((name, value)) = &report.required_header {
        let matches = headers
            .get(name.as_str())
            .is_some_and(|header| header.as_bytes() == value.as_bytes());
        if !matches {
            tracing::warn!(
                "monitoring request without the configured header value; responded with 404"
            );
            return (StatusCode::NOT_FOUND, "Endpoint not found.").into_response();
        }
    }
    let services = &endpoint.services;
    let stats = report.report.take(
        &services.monitor.metrics.snapshot(),
        &services.subscription_counts(),
        unix_millis(),
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        stats.to_string(),
    )
        .into_response()
}

/// Logs deepstream's statistics every `interval` until the server stops.
async fn log_stats(
    services: Arc<Services>,
    interval: Duration,
    key: String,
    mut stop: watch::Receiver<bool>,
) {
    let report = StatsReport::new(services.monitor.metrics.snapshot(), unix_millis());
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let stats = report.take(
            &services.monitor.metrics.snapshot(),
            &services.subscription_counts(),
            unix_millis(),
        );
        let mut line = serde_json::Map::new();
        line.insert(key.clone(), stats);
        tracing::info!(stats = %serde_json::Value::Object(line), "monitoring statistics");
    }
}

/// Serves the counters in the Prometheus text format.
async fn metrics(State(endpoint): State<Endpoint>) -> Response {
    let services = &endpoint.services;
    let text = prometheus::render(
        &services.monitor.metrics.snapshot(),
        &services.subscription_counts(),
    );
    ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response()
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
