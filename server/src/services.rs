//! The handlers and settings shared by every connection.

use std::sync::Arc;

use tokio::sync::watch;

use crate::access::Access;
use crate::auth::Authenticator;
use crate::config::{Config, EnabledFeatures, WebSocketConfig};
use crate::handlers::event::EventHandler;
use crate::handlers::presence::PresenceHandler;
use crate::handlers::record::RecordHandler;
use crate::handlers::rpc::RpcHandler;
use crate::monitoring::Monitor;
use crate::storage::{Cache, Storage};

/// Everything a connection needs besides its socket.
pub(crate) struct Services {
    pub(crate) websocket: WebSocketConfig,
    pub(crate) features: EnabledFeatures,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) events: EventHandler,
    pub(crate) rpc: Arc<RpcHandler>,
    pub(crate) presence: PresenceHandler,
    pub(crate) records: Arc<RecordHandler>,
    pub(crate) monitor: Monitor,
    /// The permission rules.
    pub(crate) access: Access,
    /// Turns true when the server shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Services {
    /// Creates the handlers. `websocket` is the endpoint's configuration.
    pub(crate) fn new(
        config: &Config,
        websocket: WebSocketConfig,
        authenticator: Arc<dyn Authenticator>,
        (cache, storage): (Arc<dyn Cache>, Arc<dyn Storage>),
        monitor: Monitor,
        shutdown: watch::Receiver<bool>,
    ) -> Services {
        let records =
            RecordHandler::new(cache, storage, config.record.clone(), config.listen.clone());
        Services {
            websocket,
            features: config.features,
            authenticator,
            events: EventHandler::new(config.listen.clone()),
            rpc: RpcHandler::new(config.rpc.clone()),
            presence: PresenceHandler::new(),
            access: Access::new(config.permission.permissions(), records.clone()),
            records,
            monitor,
            shutdown,
        }
    }

    /// Returns the number of subscribed names per topic, named as deepstream names topics.
    pub(crate) fn subscription_counts(&self) -> [(&'static str, usize); 4] {
        [
            ("EVENT", self.events.subscription_count()),
            ("RECORD", self.records.subscription_count()),
            ("RPC", self.rpc.subscription_count()),
            ("PRESENCE", self.presence.subscription_count()),
        ]
    }

    /// Starts the handlers' background timers. Must run inside the runtime.
    pub(crate) fn start(&self) {
        self.events.set_monitor(self.monitor.clone());
        self.records.set_monitor(self.monitor.clone());
        self.presence.set_monitor(self.monitor.clone());
        self.events.start();
        self.records.start();
    }
}
