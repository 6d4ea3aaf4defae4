//! The RPC topic: providers, requests and their routing.
//!
//! A request goes to one provider chosen at random. The provider must ACCEPT
//! within `rpc.ackTimeout` and answer with RESPONSE or REQUEST_ERROR within
//! `rpc.responseTimeout`; a REJECT moves the request to a provider that has
//! not seen it yet. Requests are identified by their correlation id, which
//! the official clients make unique.
//!
//! When a provider disconnects, its requests that it had not accepted yet
//! move on like after a REJECT; requests it had accepted fail at once with
//! REQUEST_ERROR, since the provider may have started working on them. When a
//! requestor disconnects, its requests stay known until they end or time out,
//! so that the provider's later answers are dropped without an error.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use deepstream_protocol::{RpcAction, RpcMessage, Topic, encode_frame};
use rand::Rng;
use tokio::task::AbortHandle;

use crate::config::RpcConfig;
use crate::peer::{ConnectionId, Peer};
use crate::registry::{SubscriptionRegistry, lock};

use super::bulk_names;

/// The error data sent when the provider that accepted a request disconnects.
const PROVIDER_LOST: &[u8] = br#""RPC provider disconnected""#;

/// Handles RPC messages of authenticated connections.
pub struct RpcHandler {
    providers: SubscriptionRegistry,
    config: RpcConfig,
    requests: Mutex<HashMap<String, Request>>,
    this: Weak<RpcHandler>,
}

struct Request {
    name: String,
    requestor: Arc<Peer>,
    provider: Arc<Peer>,
    tried: HashSet<ConnectionId>,
    accepted: bool,
    /// The requestor disconnected: answers are dropped, nothing moves on.
    requestor_gone: bool,
    /// The REQUEST as forwarded to providers, encoded once.
    forward: Bytes,
    timers: Vec<AbortHandle>,
    /// Counts provider changes, so that a timer of an earlier provider is ignored.
    attempt: u64,
}

#[derive(Debug, Clone, Copy)]
enum Deadline {
    Accept,
    Response,
}

impl RpcHandler {
    /// Returns the number of RPC names with at least one provider.
    pub fn subscription_count(&self) -> usize {
        self.providers.name_count()
    }
    /// Creates the handler.
    pub fn new(config: RpcConfig) -> Arc<RpcHandler> {
        Arc::new_cyclic(|this| RpcHandler {
            providers: SubscriptionRegistry::new(),
            config,
            requests: Mutex::new(HashMap::new()),
            this: this.clone(),
        })
    }

    /// Handles one RPC message from `peer`.
    pub fn handle(&self, peer: &Arc<Peer>, message: RpcMessage) {
        match message.action() {
            RpcAction::Provide => self.provide(peer, message),
            RpcAction::Unprovide => self.unprovide(peer, message),
            RpcAction::Request => self.request(peer, message),
            RpcAction::Accept
            | RpcAction::Response
            | RpcAction::RequestError
            | RpcAction::Reject
            | RpcAction::NoRpcProvider => self.answer(peer, &message),
            other => {
                tracing::debug!(action = ?other, "rpc action not accepted from clients");
                peer.send(reply(
                    RpcAction::InvalidMessageData,
                    &message.name,
                    &message.correlation_id,
                    Some(message.action),
                ));
            }
        }
    }

    /// Removes the providers and requests of a closed connection.
    pub fn remove_connection(&self, id: ConnectionId) {
        self.providers.remove_connection(id);

        let mut requests = lock(&self.requests);
        let affected: Vec<String> = requests
            .iter()
            .filter(|(_, request)| request.provider.id() == id || request.requestor.id() == id)
            .map(|(correlation_id, _)| correlation_id.clone())
            .collect();
        for correlation_id in affected {
            let request = requests
                .get_mut(&correlation_id)
                .expect("collected from the map above");
            if request.requestor.id() == id {
                request.requestor_gone = true;
            }
            if request.provider.id() != id {
                continue;
            }
            if request.requestor_gone {
                finish(&mut requests, &correlation_id);
            } else if request.accepted {
                let failure = RpcMessage {
                    action: RpcAction::RequestError.into(),
                    name: request.name.clone(),
                    correlation_id: correlation_id.clone(),
                    data: Bytes::from_static(PROVIDER_LOST),
                    ..Default::default()
                };
                request.requestor.send(encode_frame(Topic::Rpc, &failure));
                finish(&mut requests, &correlation_id);
            } else {
                self.reroute(&mut requests, &correlation_id);
            }
        }
    }

    fn provide(&self, peer: &Arc<Peer>, message: RpcMessage) {
        for name in bulk_names(message.names, message.name) {
            if name.is_empty() {
                peer.send(reply(
                    RpcAction::InvalidMessageData,
                    "",
                    "",
                    Some(message.action),
                ));
                continue;
            }
            if self.providers.subscribe(&name, peer).is_err() {
                peer.send(reply(
                    RpcAction::MultipleProviders,
                    &name,
                    "",
                    Some(message.action),
                ));
            }
        }
        peer.send(ack(RpcAction::Provide, message.correlation_id));
    }

    fn unprovide(&self, peer: &Arc<Peer>, message: RpcMessage) {
        for name in bulk_names(message.names, message.name) {
            if self.providers.unsubscribe(&name, peer).is_err() {
                peer.send(reply(
                    RpcAction::NotProvided,
                    &name,
                    "",
                    Some(message.action),
                ));
            }
        }
        peer.send(ack(RpcAction::Unprovide, message.correlation_id));
    }

    fn request(&self, peer: &Arc<Peer>, message: RpcMessage) {
        if message.name.is_empty() || message.correlation_id.is_empty() {
            peer.send(reply(
                RpcAction::InvalidMessageData,
                &message.name,
                &message.correlation_id,
                Some(message.action),
            ));
            return;
        }
        let mut requests = lock(&self.requests);
        if requests.contains_key(&message.correlation_id) {
            tracing::debug!(correlation_id = %message.correlation_id, "rpc correlation id already in use");
            peer.send(reply(
                RpcAction::InvalidRpcCorrelationId,
                &message.name,
                &message.correlation_id,
                Some(message.action),
            ));
            return;
        }

        let candidates = self.providers.subscribers(&message.name);
        if candidates.is_empty() {
            peer.send(reply(
                RpcAction::NoRpcProvider,
                &message.name,
                &message.correlation_id,
                None,
            ));
            return;
        }
        let provider = candidates[rand::rng().random_range(0..candidates.len())].clone();

        let forward = RpcMessage {
            action: RpcAction::Request.into(),
            name: message.name.clone(),
            correlation_id: message.correlation_id.clone(),
            data: message.data,
            requestor_name: if self.config.provide_requestor_name {
                peer.user().to_string()
            } else {
                String::new()
            },
            requestor_data: match (self.config.provide_requestor_data, peer.client_data()) {
                (true, Some(data)) => data.clone(),
                _ => Bytes::new(),
            },
            ..Default::default()
        };
        let request = Request {
            name: message.name,
            requestor: peer.clone(),
            provider: provider.clone(),
            tried: HashSet::from([provider.id()]),
            accepted: false,
            requestor_gone: false,
            forward: encode_frame(Topic::Rpc, &forward),
            timers: Vec::new(),
            attempt: 0,
        };
        let correlation_id = message.correlation_id;
        requests.insert(correlation_id.clone(), request);
        self.send_to_provider(&mut requests, &correlation_id);
    }

    fn answer(&self, peer: &Arc<Peer>, message: &RpcMessage) {
        let mut requests = lock(&self.requests);
        let known = requests
            .get(&message.correlation_id)
            .is_some_and(|request| request.provider.id() == peer.id());
        if !known {
            tracing::debug!(correlation_id = %message.correlation_id, "rpc response for an unknown request");
            peer.send(reply(
                RpcAction::InvalidRpcCorrelationId,
                &message.name,
                &message.correlation_id,
                Some(message.action),
            ));
            return;
        }
        let correlation_id = message.correlation_id.clone();
        let request = requests
            .get_mut(&correlation_id)
            .expect("request checked above");

        match message.action() {
            RpcAction::Accept if request.accepted => {
                peer.send(reply(
                    RpcAction::MultipleAccept,
                    &request.name,
                    &correlation_id,
                    None,
                ));
            }
            RpcAction::Accept => {
                request.accepted = true;
                // The first timer is the accept deadline; the response deadline keeps running.
                if let Some(accept_timer) = request.timers.first() {
                    accept_timer.abort();
                }
                request.requestor.send(encode_frame(Topic::Rpc, message));
            }
            RpcAction::Response | RpcAction::RequestError => {
                request.requestor.send(encode_frame(Topic::Rpc, message));
                finish(&mut requests, &correlation_id);
            }
            _ => self.reroute(&mut requests, &correlation_id),
        }
    }

    /// Moves a request to a provider that has not seen it, or fails it with
    /// NO_RPC_PROVIDER when none is left.
    fn reroute(&self, requests: &mut HashMap<String, Request>, correlation_id: &str) {
        let Some(request) = requests.get_mut(correlation_id) else {
            return;
        };
        let untried: Vec<Arc<Peer>> = self
            .providers
            .subscribers(&request.name)
            .into_iter()
            .filter(|provider| !request.tried.contains(&provider.id()) && !provider.is_closed())
            .collect();
        if untried.is_empty() {
            request.requestor.send(reply(
                RpcAction::NoRpcProvider,
                &request.name,
                correlation_id,
                None,
            ));
            finish(requests, correlation_id);
            return;
        }
        let provider = untried[rand::rng().random_range(0..untried.len())].clone();
        request.tried.insert(provider.id());
        request.provider = provider;
        request.accepted = false;
        self.send_to_provider(requests, correlation_id);
    }

    fn send_to_provider(&self, requests: &mut HashMap<String, Request>, correlation_id: &str) {
        let Some(request) = requests.get_mut(correlation_id) else {
            return;
        };
        for timer in request.timers.drain(..) {
            timer.abort();
        }
        request.attempt += 1;
        request.timers = vec![
            self.spawn_deadline(correlation_id, request.attempt, Deadline::Accept),
            self.spawn_deadline(correlation_id, request.attempt, Deadline::Response),
        ];
        request.provider.send(request.forward.clone());
    }

    fn spawn_deadline(
        &self,
        correlation_id: &str,
        attempt: u64,
        deadline: Deadline,
    ) -> AbortHandle {
        let delay = match deadline {
            Deadline::Accept => self.config.ack_timeout,
            Deadline::Response => self.config.response_timeout,
        };
        let handler = self.this.clone();
        let correlation_id = correlation_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(handler) = handler.upgrade() {
                handler.on_deadline(&correlation_id, attempt, deadline);
            }
        })
        .abort_handle()
    }

    fn on_deadline(&self, correlation_id: &str, attempt: u64, deadline: Deadline) {
        let mut requests = lock(&self.requests);
        let Some(request) = requests.get(correlation_id) else {
            return;
        };
        if request.attempt != attempt {
            return;
        }
        if request.requestor_gone {
            finish(&mut requests, correlation_id);
            return;
        }
        let action = match deadline {
            Deadline::Accept if request.accepted => return,
            Deadline::Accept => RpcAction::AcceptTimeout,
            Deadline::Response => RpcAction::ResponseTimeout,
        };
        tracing::debug!(correlation_id, rpc = %request.name, ?action, "rpc timed out");
        request
            .requestor
            .send(reply(action, &request.name, correlation_id, None));
        finish(&mut requests, correlation_id);
    }
}

fn finish(requests: &mut HashMap<String, Request>, correlation_id: &str) {
    if let Some(request) = requests.remove(correlation_id) {
        for timer in request.timers {
            timer.abort();
        }
    }
}

fn ack(action: RpcAction, correlation_id: String) -> Bytes {
    let message = RpcMessage {
        action: action.into(),
        correlation_id,
        is_ack: true,
        ..Default::default()
    };
    encode_frame(Topic::Rpc, &message)
}

fn reply(
    action: RpcAction,
    name: &str,
    correlation_id: &str,
    original_action: Option<i32>,
) -> Bytes {
    let message = RpcMessage {
        action: action.into(),
        name: name.to_owned(),
        correlation_id: correlation_id.to_owned(),
        original_action: original_action.unwrap_or_default(),
        is_error: original_action.is_some(),
        ..Default::default()
    };
    encode_frame(Topic::Rpc, &message)
}
