//! Bulk subscriptions: names subscribed or unsubscribed within
//! `subscription_interval` go out as one message per topic and action.
//!
//! This follows the official client's `BulkSubscriptionService`: a subscribe
//! followed by an unsubscribe of the same name within one interval cancel each
//! other, each message gets a decimal correlation id counted from `"0"` per
//! queue, the count starts again after a lost connection, and names still
//! collected when the connection is lost are dropped (the topic handlers
//! subscribe everything again after the next login).

use bytes::Bytes;
use deepstream_protocol::{
    EventMessage, PresenceMessage, RecordMessage, RpcMessage, Topic, TopicMessage,
};
use indexmap::IndexSet;

use super::shared::{AckKey, BulkKind, Shared, Timer};
use super::time::TimerId;

/// One queue of names for a topic and its subscribe and unsubscribe actions.
#[derive(Debug)]
pub(crate) struct BulkQueue {
    kind: BulkKind,
    topic: Topic,
    subscribe_action: i32,
    unsubscribe_action: i32,
    subscribe_names: IndexSet<String>,
    unsubscribe_names: IndexSet<String>,
    timer: Option<TimerId>,
    next_correlation_id: u64,
}

impl BulkQueue {
    pub(crate) fn new(
        kind: BulkKind,
        topic: Topic,
        subscribe_action: i32,
        unsubscribe_action: i32,
    ) -> BulkQueue {
        BulkQueue {
            kind,
            topic,
            subscribe_action,
            unsubscribe_action,
            subscribe_names: IndexSet::new(),
            unsubscribe_names: IndexSet::new(),
            timer: None,
            next_correlation_id: 0,
        }
    }

    pub(crate) fn subscribe(&mut self, shared: &mut Shared, name: &str) {
        if shared.options.subscription_interval.is_zero() {
            self.send(shared, self.subscribe_action, vec![name.to_owned()]);
            return;
        }
        if !self.unsubscribe_names.shift_remove(name) {
            self.subscribe_names.insert(name.to_owned());
            self.schedule(shared);
        }
    }

    pub(crate) fn unsubscribe(&mut self, shared: &mut Shared, name: &str) {
        if shared.options.subscription_interval.is_zero() {
            self.send(shared, self.unsubscribe_action, vec![name.to_owned()]);
            return;
        }
        if !self.subscribe_names.shift_remove(name) {
            self.unsubscribe_names.insert(name.to_owned());
            self.schedule(shared);
        }
    }

    /// Sends the collected names, called when the queue's timer fires.
    pub(crate) fn flush(&mut self, shared: &mut Shared) {
        self.timer = None;
        if !shared.logged_in {
            self.reset(shared);
            return;
        }
        if !self.subscribe_names.is_empty() {
            let names = std::mem::take(&mut self.subscribe_names)
                .into_iter()
                .collect();
            self.send(shared, self.subscribe_action, names);
        }
        if !self.unsubscribe_names.is_empty() {
            let names = std::mem::take(&mut self.unsubscribe_names)
                .into_iter()
                .collect();
            self.send(shared, self.unsubscribe_action, names);
        }
    }

    /// Drops collected names and restarts the correlation ids, because the
    /// connection was lost.
    pub(crate) fn reset(&mut self, shared: &mut Shared) {
        if let Some(timer) = self.timer.take() {
            shared.timers.cancel(timer);
        }
        self.subscribe_names.clear();
        self.unsubscribe_names.clear();
        self.next_correlation_id = 0;
    }

    fn schedule(&mut self, shared: &mut Shared) {
        if self.timer.is_none() {
            let deadline = shared.now.after(shared.options.subscription_interval);
            self.timer = Some(shared.timers.add(deadline, Timer::BulkFlush(self.kind)));
        }
    }

    fn send(&mut self, shared: &mut Shared, action: i32, names: Vec<String>) {
        let correlation_id = self.next_correlation_id.to_string();
        self.next_correlation_id += 1;
        let frame = bulk_frame(self.topic, action, names, correlation_id.clone());
        shared.send(frame);
        shared.expect_ack(AckKey {
            topic: self.topic,
            action,
            key: correlation_id,
        });
    }
}

fn bulk_frame(topic: Topic, action: i32, names: Vec<String>, correlation_id: String) -> Bytes {
    let message = match topic {
        Topic::Event => TopicMessage::Event(EventMessage {
            action,
            names,
            correlation_id,
            ..Default::default()
        }),
        Topic::Rpc => TopicMessage::Rpc(RpcMessage {
            action,
            names,
            correlation_id,
            ..Default::default()
        }),
        Topic::Presence => TopicMessage::Presence(PresenceMessage {
            action,
            names,
            correlation_id,
            ..Default::default()
        }),
        _ => TopicMessage::Record(RecordMessage {
            action,
            names,
            correlation_id,
            ..Default::default()
        }),
    };
    message.encode_frame()
}
