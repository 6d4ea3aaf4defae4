//! Handles returned by subscriptions. Dropping one ends its subscription.

use tokio::sync::mpsc;

use super::driver::{Command, ListenNotice, PresenceChange, ReceivedEvent, RpcAnswer};
use crate::core::{
    IncomingRpc, ListenId, PresenceSubscriptionId, ProviderId, RpcError, SubscriptionId,
};

/// A subscription to one event name, from [`Events::subscribe`](super::Events::subscribe).
#[derive(Debug)]
pub struct EventSubscription {
    id: SubscriptionId,
    name: String,
    receiver: mpsc::UnboundedReceiver<ReceivedEvent>,
    commands: mpsc::UnboundedSender<Command>,
}

impl EventSubscription {
    pub(crate) fn new(
        id: SubscriptionId,
        name: String,
        receiver: mpsc::UnboundedReceiver<ReceivedEvent>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> EventSubscription {
        EventSubscription {
            id,
            name,
            receiver,
            commands,
        }
    }

    /// Returns the event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the next event. Returns `None` once the subscription has
    /// ended: the server refused it, or the client closed.
    pub async fn next(&mut self) -> Option<ReceivedEvent> {
        self.receiver.recv().await
    }
}

impl Drop for EventSubscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::EventUnsubscribe {
            subscription: self.id,
        });
    }
}

/// What a [`Listener`] yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenEvent {
    /// Somebody subscribed to a matching name: accept or reject it.
    Request(ListenRequest),
    /// A name this client accepted has no subscribers any more, or the
    /// connection was lost: stop publishing it.
    Stopped {
        /// The name.
        name: String,
    },
}

/// A listen registration, from [`Events::listen`](super::Events::listen).
#[derive(Debug)]
pub struct Listener {
    id: ListenId,
    pattern: String,
    receiver: mpsc::UnboundedReceiver<ListenNotice>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Listener {
    pub(crate) fn new(
        id: ListenId,
        pattern: String,
        receiver: mpsc::UnboundedReceiver<ListenNotice>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Listener {
        Listener {
            id,
            pattern,
            receiver,
            commands,
        }
    }

    /// Returns the pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Waits for the next request or stop notice. Returns `None` once the
    /// client has closed, or when the server rejected the pattern as an
    /// invalid regular expression or its permissions denied listening (the
    /// client's error stream reports it).
    pub async fn next(&mut self) -> Option<ListenEvent> {
        let notice = self.receiver.recv().await?;
        Some(match notice {
            ListenNotice::Found { name } => ListenEvent::Request(ListenRequest {
                listen: self.id,
                name,
                commands: self.commands.clone(),
                answered: false,
            }),
            ListenNotice::Stopped { name } => ListenEvent::Stopped { name },
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unlisten { listen: self.id });
    }
}

/// A subscription to a name that matches a [`Listener`]'s pattern. Dropping
/// it without an answer rejects it.
#[derive(Debug)]
pub struct ListenRequest {
    listen: ListenId,
    name: String,
    commands: mpsc::UnboundedSender<Command>,
    answered: bool,
}

impl ListenRequest {
    /// Returns the subscribed name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Becomes the provider of the name.
    pub fn accept(mut self) {
        self.answer(true);
    }

    /// Declines, so that the server asks the next listener.
    pub fn reject(mut self) {
        self.answer(false);
    }

    fn answer(&mut self, accept: bool) {
        self.answered = true;
        let _ = self.commands.send(Command::ListenRespond {
            listen: self.listen,
            name: self.name.clone(),
            accept,
        });
    }
}

impl Drop for ListenRequest {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(false);
        }
    }
}

/// A provided RPC, from [`Rpcs::provide`](super::Rpcs::provide).
#[derive(Debug)]
pub struct RpcProvider {
    id: ProviderId,
    name: String,
    receiver: mpsc::UnboundedReceiver<IncomingRpc>,
    commands: mpsc::UnboundedSender<Command>,
}

impl RpcProvider {
    pub(crate) fn new(
        id: ProviderId,
        name: String,
        receiver: mpsc::UnboundedReceiver<IncomingRpc>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> RpcProvider {
        RpcProvider {
            id,
            name,
            receiver,
            commands,
        }
    }

    /// Returns the RPC name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the next request. Returns `None` once providing has ended:
    /// the server refused it, or the client closed.
    pub async fn next(&mut self) -> Option<RpcRequest> {
        let incoming = self.receiver.recv().await?;
        Some(RpcRequest {
            incoming,
            commands: self.commands.clone(),
            answered: false,
        })
    }
}

impl Drop for RpcProvider {
    fn drop(&mut self) {
        let _ = self
            .commands
            .send(Command::RpcUnprovide { provider: self.id });
    }
}

/// An RPC request to answer. Dropping it without an answer rejects it.
#[derive(Debug)]
pub struct RpcRequest {
    incoming: IncomingRpc,
    commands: mpsc::UnboundedSender<Command>,
    answered: bool,
}

impl RpcRequest {
    /// Returns the RPC name.
    pub fn name(&self) -> &str {
        &self.incoming.name
    }

    /// Returns the argument as JSON text, if the caller sent one.
    pub fn data(&self) -> Option<&str> {
        self.incoming.data.as_deref()
    }

    /// Returns the caller's user name, if the server passes it on.
    pub fn requestor_name(&self) -> Option<&str> {
        self.incoming.requestor_name.as_deref()
    }

    /// Returns the caller's client data as JSON text, if the server passes it on.
    pub fn requestor_data(&self) -> Option<&str> {
        self.incoming.requestor_data.as_deref()
    }

    /// Tells the server this client works on the request. Only needed with
    /// `rpc_auto_accept` off.
    pub fn accept(&self) {
        self.answer(RpcAnswer::Accept, None);
    }

    /// Answers with `data`, which must be JSON text.
    ///
    /// Data that is not valid JSON returns [`RpcError::InvalidJson`], and the
    /// request is rejected, as on drop, so that the caller is not left waiting.
    pub async fn send(mut self, data: &str) -> Result<(), RpcError> {
        crate::core::check_json(data).map_err(|reason| RpcError::InvalidJson { reason })?;
        self.answered = true;
        let (reply, result) = tokio::sync::oneshot::channel();
        self.answer(RpcAnswer::Respond(Some(data.to_owned())), Some(reply));
        result.await.unwrap_or(Err(RpcError::ClientOffline))
    }

    /// Answers with an error; the caller receives `message` as a JSON string.
    pub fn error(mut self, message: &str) {
        self.answered = true;
        self.answer(RpcAnswer::Error(message.to_owned()), None);
    }

    /// Declines, so that the server offers the request to another provider.
    pub fn reject(mut self) {
        self.answered = true;
        self.answer(RpcAnswer::Reject, None);
    }

    fn answer(
        &self,
        answer: RpcAnswer,
        reply: Option<tokio::sync::oneshot::Sender<Result<(), RpcError>>>,
    ) {
        let _ = self.commands.send(Command::RpcAnswer {
            request: self.incoming.id,
            answer,
            reply,
        });
    }
}

impl Drop for RpcRequest {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(RpcAnswer::Reject, None);
        }
    }
}

/// A presence subscription, from [`Presence::subscribe`](super::Presence::subscribe)
/// or [`Presence::subscribe_all`](super::Presence::subscribe_all).
#[derive(Debug)]
pub struct PresenceSubscription {
    id: PresenceSubscriptionId,
    receiver: mpsc::UnboundedReceiver<PresenceChange>,
    commands: mpsc::UnboundedSender<Command>,
}

impl PresenceSubscription {
    pub(crate) fn new(
        id: PresenceSubscriptionId,
        receiver: mpsc::UnboundedReceiver<PresenceChange>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> PresenceSubscription {
        PresenceSubscription {
            id,
            receiver,
            commands,
        }
    }

    /// Waits for the next change. Returns `None` once the client has closed.
    pub async fn next(&mut self) -> Option<PresenceChange> {
        self.receiver.recv().await
    }
}

impl Drop for PresenceSubscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::PresenceUnsubscribe {
            subscription: self.id,
        });
    }
}
