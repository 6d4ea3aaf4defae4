//! Remote procedure calls: provide, unprovide, make, and answering requests.
//!
//! This follows the official client (`src/rpc/`): providers are registered
//! with bulk `PROVIDE` messages and again after every reconnection, a request
//! for a name this client does not provide is rejected, calls made while the
//! connection is lost are kept for `offline_buffer_timeout`, and calls in
//! flight when it is lost fail with [`RpcError::ClientOffline`]. Unlike the
//! official client, a call also ends after `rpc_response_timeout` if the
//! server never answers.

use std::collections::HashMap;

use bytes::Bytes;
use deepstream_protocol::{RpcAction, RpcMessage, Topic, TopicMessage};
use indexmap::IndexMap;

use super::bulk::BulkQueue;
use super::error::{SessionError, action_name};
use super::ids::{IncomingRpcId, ProviderId, RequestId};
use super::shared::{AckKey, BulkKind, Shared};
use super::time::TimerId;
use super::{Event, Session, Timestamp, check_json, check_name, payload_text};

/// The reason an RPC failed or an RPC command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The RPC name is empty.
    #[error("RPC name must not be empty")]
    EmptyName,
    /// The payload is not valid JSON text.
    #[error("invalid JSON data: {reason}")]
    InvalidJson {
        /// The JSON parser's message.
        reason: String,
    },
    /// This client already provides the name.
    #[error("RPC {name:?} is already provided by this client")]
    AlreadyProvided {
        /// The RPC name.
        name: String,
    },
    /// The handle is not, or no longer, registered or pending.
    #[error("unknown provider or request handle")]
    UnknownHandle,
    /// The client is offline: the call was not sent, or the connection was
    /// lost before the answer came.
    #[error("client offline")]
    ClientOffline,
    /// No client provides the name, or every provider rejected the call.
    #[error("no provider for the RPC")]
    NoProvider,
    /// The provider did not accept the call within the server's accept timeout.
    #[error("the provider did not accept the call in time")]
    AcceptTimeout,
    /// The provider did not answer within the server's response timeout.
    #[error("the provider did not respond in time")]
    ResponseTimeout,
    /// No answer arrived within `rpc_response_timeout`.
    #[error("no answer from the server within the client's RPC timeout")]
    Timeout,
    /// The provider reported an error; `message` is its data as sent (JSON text).
    #[error("the provider reported an error: {message}")]
    Provider {
        /// The error data the provider sent, as JSON text.
        message: String,
    },
    /// The server's permissions refused the call (`MESSAGE_DENIED` or
    /// `MESSAGE_PERMISSION_ERROR`).
    #[error("the server refused the call: {action}")]
    Denied {
        /// The error action.
        action: String,
    },
}

/// An RPC request for a name this client provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRpc {
    /// The handle to answer it with.
    pub id: IncomingRpcId,
    /// The provider it is for.
    pub provider: ProviderId,
    /// The RPC name.
    pub name: String,
    /// The argument as JSON text, if the caller sent one.
    pub data: Option<String>,
    /// The caller's user name, if the server is configured to pass it.
    pub requestor_name: Option<String>,
    /// The caller's client data as JSON text, if the server is configured to pass it.
    pub requestor_data: Option<String>,
}

#[derive(Debug)]
struct Outgoing {
    correlation_id: String,
    timer: TimerId,
}

#[derive(Debug)]
struct Incoming {
    name: String,
    correlation_id: String,
    accepted: bool,
}

#[derive(Debug)]
struct Queued {
    request: RequestId,
    correlation_id: String,
    frame: Bytes,
    /// Fails the request with `ClientOffline` when it cannot be sent in time.
    timer: TimerId,
}

#[derive(Debug)]
pub(crate) struct RpcHandler {
    providers: IndexMap<String, ProviderId>,
    provider_names: HashMap<ProviderId, String>,
    outgoing: HashMap<RequestId, Outgoing>,
    by_correlation: HashMap<String, RequestId>,
    incoming: HashMap<IncomingRpcId, Incoming>,
    limbo_queue: Vec<Queued>,
    bulk: BulkQueue,
}

impl RpcHandler {
    pub(crate) fn new() -> RpcHandler {
        RpcHandler {
            providers: IndexMap::new(),
            provider_names: HashMap::new(),
            outgoing: HashMap::new(),
            by_correlation: HashMap::new(),
            incoming: HashMap::new(),
            limbo_queue: Vec::new(),
            bulk: BulkQueue::new(
                BulkKind::Rpc,
                Topic::Rpc,
                RpcAction::Provide.into(),
                RpcAction::Unprovide.into(),
            ),
        }
    }

    pub(crate) fn flush(&mut self, shared: &mut Shared) {
        self.bulk.flush(shared);
    }

    pub(crate) fn handle(&mut self, shared: &mut Shared, message: RpcMessage) {
        let action = RpcAction::try_from(message.action);
        if action == Ok(RpcAction::Request) {
            self.request_received(shared, message);
            return;
        }
        if message.is_ack {
            shared.clear_ack(&AckKey {
                topic: Topic::Rpc,
                action: message.action,
                key: message.correlation_id.clone(),
            });
            return;
        }
        match action {
            Ok(RpcAction::MessageDenied | RpcAction::MessagePermissionError) => {
                self.denied(shared, &message);
            }
            Ok(RpcAction::Accept) => {
                if !self.by_correlation.contains_key(&message.correlation_id) {
                    unknown_correlation(shared, &message);
                }
            }
            Ok(RpcAction::Response) => {
                let Ok(data) = payload_text(shared, Topic::Rpc, message.action, &message.data)
                else {
                    self.finish(
                        shared,
                        &message,
                        Err(RpcError::Provider {
                            message: "response data is not UTF-8".to_owned(),
                        }),
                    );
                    return;
                };
                self.finish(shared, &message, Ok(data));
            }
            Ok(RpcAction::RequestError) => {
                let text = String::from_utf8_lossy(&message.data).into_owned();
                self.finish(shared, &message, Err(RpcError::Provider { message: text }));
            }
            Ok(RpcAction::NoRpcProvider) => {
                self.finish(shared, &message, Err(RpcError::NoProvider))
            }
            Ok(RpcAction::AcceptTimeout) => {
                self.finish(shared, &message, Err(RpcError::AcceptTimeout));
            }
            Ok(RpcAction::ResponseTimeout) => {
                self.finish(shared, &message, Err(RpcError::ResponseTimeout));
            }
            _ => server_error(shared, &message),
        }
    }

    /// Ends the call with `result` if it is still in flight.
    fn finish(
        &mut self,
        shared: &mut Shared,
        message: &RpcMessage,
        result: Result<Option<String>, RpcError>,
    ) {
        let Some(request) = self.by_correlation.remove(&message.correlation_id) else {
            unknown_correlation(shared, message);
            return;
        };
        if let Some(outgoing) = self.outgoing.remove(&request) {
            shared.timers.cancel(outgoing.timer);
        }
        shared.emit(Event::RpcResult { request, result });
    }

    fn request_received(&mut self, shared: &mut Shared, message: RpcMessage) {
        let Some(provider) = self.providers.get(&message.name).copied() else {
            send_reply(
                shared,
                RpcAction::Reject,
                &message.name,
                &message.correlation_id,
                None,
            );
            return;
        };
        let Ok(data) = payload_text(shared, Topic::Rpc, message.action, &message.data) else {
            send_reply(
                shared,
                RpcAction::Reject,
                &message.name,
                &message.correlation_id,
                None,
            );
            return;
        };
        let requestor_data = String::from_utf8(message.requestor_data.to_vec())
            .ok()
            .filter(|text| !text.is_empty());
        let requestor_name = Some(message.requestor_name).filter(|name| !name.is_empty());
        let id = IncomingRpcId(shared.next_id());
        let accepted = shared.options.rpc_auto_accept;
        if accepted {
            send_reply(
                shared,
                RpcAction::Accept,
                &message.name,
                &message.correlation_id,
                None,
            );
        }
        self.incoming.insert(
            id,
            Incoming {
                name: message.name.clone(),
                correlation_id: message.correlation_id,
                accepted,
            },
        );
        shared.emit(Event::RpcRequest(IncomingRpc {
            id,
            provider,
            name: message.name,
            data,
            requestor_name,
            requestor_data,
        }));
    }

    fn denied(&mut self, shared: &mut Shared, message: &RpcMessage) {
        let provide: i32 = RpcAction::Provide.into();
        let unprovide: i32 = RpcAction::Unprovide.into();
        let request: i32 = RpcAction::Request.into();
        if message.original_action == provide || message.original_action == unprovide {
            // Our server sends no acknowledgement for a bulk message whose
            // names are all denied. When some were allowed, the
            // acknowledgement that still comes finds no timeout.
            shared.clear_ack(&AckKey {
                topic: Topic::Rpc,
                action: message.original_action,
                key: message.correlation_id.clone(),
            });
            if let Some(provider) = self.providers.shift_remove(&message.name) {
                self.provider_names.remove(&provider);
                shared.emit(Event::RpcProviderEnded {
                    provider,
                    name: message.name.clone(),
                });
            }
            server_error(shared, message);
        } else if message.original_action == request {
            let error = RpcError::Denied {
                action: action_name(Topic::Rpc, message.action),
            };
            self.finish(shared, message, Err(error));
        } else {
            server_error(shared, message);
        }
    }

    /// Fails a call whose answer did not come in time. Returns whether
    /// `request` was an RPC.
    pub(crate) fn request_timed_out(&mut self, shared: &mut Shared, request: RequestId) -> bool {
        if let Some(index) = self
            .limbo_queue
            .iter()
            .position(|queued| queued.request == request)
        {
            self.limbo_queue.remove(index);
            shared.emit(Event::RpcResult {
                request,
                result: Err(RpcError::ClientOffline),
            });
            return true;
        }
        let Some(outgoing) = self.outgoing.remove(&request) else {
            return false;
        };
        self.by_correlation.remove(&outgoing.correlation_id);
        shared.emit(Event::RpcResult {
            request,
            result: Err(RpcError::Timeout),
        });
        true
    }

    pub(crate) fn on_lost(&mut self, shared: &mut Shared) {
        self.bulk.reset(shared);
        self.incoming.clear();
        self.by_correlation.clear();
        let mut failed: Vec<(RequestId, Outgoing)> = self.outgoing.drain().collect();
        failed.sort_by_key(|(request, _)| *request);
        for (request, outgoing) in failed {
            shared.timers.cancel(outgoing.timer);
            shared.emit(Event::RpcResult {
                request,
                result: Err(RpcError::ClientOffline),
            });
        }
    }

    pub(crate) fn on_reestablished(&mut self, shared: &mut Shared) {
        let names: Vec<String> = self.providers.keys().cloned().collect();
        for name in names {
            self.bulk.subscribe(shared, &name);
        }
        for queued in std::mem::take(&mut self.limbo_queue) {
            shared.timers.cancel(queued.timer);
            self.send_request(shared, queued.request, queued.correlation_id, queued.frame);
        }
    }

    pub(crate) fn on_limbo_expired(&mut self, shared: &mut Shared) {
        for queued in self.limbo_queue.drain(..) {
            shared.timers.cancel(queued.timer);
            shared.emit(Event::RpcResult {
                request: queued.request,
                result: Err(RpcError::ClientOffline),
            });
        }
    }

    fn send_request(
        &mut self,
        shared: &mut Shared,
        request: RequestId,
        correlation_id: String,
        frame: Bytes,
    ) {
        shared.send(frame);
        let timer = shared.request_timer(request, shared.options.rpc_response_timeout);
        self.by_correlation.insert(correlation_id.clone(), request);
        self.outgoing.insert(
            request,
            Outgoing {
                correlation_id,
                timer,
            },
        );
    }
}

impl Session {
    /// Provides the RPC `name`: requests arrive as [`Event::RpcRequest`].
    ///
    /// The registration goes out in the next bulk `PROVIDE` once logged in,
    /// and again after every reconnection.
    pub fn rpc_provide(&mut self, name: &str, now: Timestamp) -> Result<ProviderId, RpcError> {
        self.shared.now = now;
        if self.connection.state().is_final() {
            return Err(RpcError::ClientOffline);
        }
        if !check_name(name) {
            return Err(RpcError::EmptyName);
        }
        if self.rpc.providers.contains_key(name) {
            return Err(RpcError::AlreadyProvided {
                name: name.to_owned(),
            });
        }
        let id = ProviderId(self.shared.next_id());
        self.rpc.providers.insert(name.to_owned(), id);
        self.rpc.provider_names.insert(id, name.to_owned());
        if self.shared.logged_in {
            self.rpc.bulk.subscribe(&mut self.shared, name);
        }
        Ok(id)
    }

    /// Stops providing an RPC.
    pub fn rpc_unprovide(&mut self, provider: ProviderId, now: Timestamp) -> Result<(), RpcError> {
        self.shared.now = now;
        let name = self
            .rpc
            .provider_names
            .remove(&provider)
            .ok_or(RpcError::UnknownHandle)?;
        self.rpc.providers.shift_remove(&name);
        if self.shared.logged_in {
            self.rpc.bulk.unsubscribe(&mut self.shared, &name);
        }
        Ok(())
    }

    /// Calls the RPC `name` with an optional JSON argument.
    ///
    /// The result comes as [`Event::RpcResult`] with the returned id, exactly
    /// once. A call made while the client is not logged in (before the
    /// first login, after a rejected one, or while reconnecting) is kept and
    /// sent after the login. It fails with [`RpcError::ClientOffline`] if it
    /// is still unsent after `offline_buffer_timeout`. Once a lost connection
    /// has stayed lost for that long, new calls fail at once.
    pub fn rpc_make(
        &mut self,
        name: &str,
        data: Option<&str>,
        now: Timestamp,
    ) -> Result<RequestId, RpcError> {
        self.shared.now = now;
        if !check_name(name) {
            return Err(RpcError::EmptyName);
        }
        if let Some(data) = data {
            check_json(data).map_err(|reason| RpcError::InvalidJson { reason })?;
        }
        if !self.shared.logged_in && !self.shared.in_limbo {
            return Err(RpcError::ClientOffline);
        }
        let request = RequestId(self.shared.next_id());
        let correlation_id = format!("{}-{}", self.shared.id_prefix, request.0);
        let frame = TopicMessage::Rpc(RpcMessage {
            action: RpcAction::Request.into(),
            name: name.to_owned(),
            correlation_id: correlation_id.clone(),
            data: data.map_or_else(Bytes::new, |data| Bytes::copy_from_slice(data.as_bytes())),
            ..Default::default()
        })
        .encode_frame();
        if self.shared.logged_in {
            self.rpc
                .send_request(&mut self.shared, request, correlation_id, frame);
        } else {
            let timer = self
                .shared
                .request_timer(request, self.shared.options.offline_buffer_timeout);
            self.rpc.limbo_queue.push(Queued {
                request,
                correlation_id,
                frame,
                timer,
            });
        }
        Ok(request)
    }

    /// Accepts an incoming request without answering it yet. Responding
    /// accepts as well, so this is needed only when `rpc_auto_accept` is off
    /// and the answer takes a while.
    pub fn rpc_accept(&mut self, request: IncomingRpcId) -> Result<(), RpcError> {
        let incoming = self
            .rpc
            .incoming
            .get_mut(&request)
            .ok_or(RpcError::UnknownHandle)?;
        if !incoming.accepted {
            incoming.accepted = true;
            let (name, correlation_id) = (incoming.name.clone(), incoming.correlation_id.clone());
            send_reply(
                &mut self.shared,
                RpcAction::Accept,
                &name,
                &correlation_id,
                None,
            );
        }
        Ok(())
    }

    /// Answers an incoming request with a result (JSON text, or none).
    pub fn rpc_respond(
        &mut self,
        request: IncomingRpcId,
        data: Option<&str>,
    ) -> Result<(), RpcError> {
        if let Some(data) = data {
            check_json(data).map_err(|reason| RpcError::InvalidJson { reason })?;
        }
        let incoming = self
            .rpc
            .incoming
            .remove(&request)
            .ok_or(RpcError::UnknownHandle)?;
        if !incoming.accepted {
            send_reply(
                &mut self.shared,
                RpcAction::Accept,
                &incoming.name,
                &incoming.correlation_id,
                None,
            );
        }
        let data = data.map(|data| Bytes::copy_from_slice(data.as_bytes()));
        send_reply(
            &mut self.shared,
            RpcAction::Response,
            &incoming.name,
            &incoming.correlation_id,
            data,
        );
        Ok(())
    }

    /// Answers an incoming request with an error. The caller receives
    /// `message` as a JSON string, as with the official client.
    pub fn rpc_error(&mut self, request: IncomingRpcId, message: &str) -> Result<(), RpcError> {
        let incoming = self
            .rpc
            .incoming
            .remove(&request)
            .ok_or(RpcError::UnknownHandle)?;
        let data = serde_json::Value::String(message.to_owned()).to_string();
        send_reply(
            &mut self.shared,
            RpcAction::RequestError,
            &incoming.name,
            &incoming.correlation_id,
            Some(Bytes::from(data)),
        );
        Ok(())
    }

    /// Rejects an incoming request, so that the server offers it to another provider.
    pub fn rpc_reject(&mut self, request: IncomingRpcId) -> Result<(), RpcError> {
        let incoming = self
            .rpc
            .incoming
            .remove(&request)
            .ok_or(RpcError::UnknownHandle)?;
        send_reply(
            &mut self.shared,
            RpcAction::Reject,
            &incoming.name,
            &incoming.correlation_id,
            None,
        );
        Ok(())
    }
}

fn send_reply(
    shared: &mut Shared,
    action: RpcAction,
    name: &str,
    correlation_id: &str,
    data: Option<Bytes>,
) {
    shared.send(
        TopicMessage::Rpc(RpcMessage {
            action: action.into(),
            name: name.to_owned(),
            correlation_id: correlation_id.to_owned(),
            data: data.unwrap_or_default(),
            ..Default::default()
        })
        .encode_frame(),
    );
}

fn unknown_correlation(shared: &mut Shared, message: &RpcMessage) {
    shared.error(SessionError::Unsolicited {
        topic: Topic::Rpc,
        action: action_name(Topic::Rpc, message.action),
        name: message.correlation_id.clone(),
    });
}

fn server_error(shared: &mut Shared, message: &RpcMessage) {
    let original_action =
        (message.original_action != 0).then(|| action_name(Topic::Rpc, message.original_action));
    shared.error(SessionError::Server {
        topic: Topic::Rpc,
        action: action_name(Topic::Rpc, message.action),
        name: message.name.clone(),
        original_action,
    });
}
