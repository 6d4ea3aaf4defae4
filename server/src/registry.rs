//! Names to subscribers, shared by events, RPC providers and presence.
//!
//! The registry is sharded by name so that connections working on different
//! names rarely wait for each other. Locks are plain mutexes held only for the
//! map update or the fan-out loop, never across an `.await`. The registry
//! never calls back into other components while a lock is held: callers learn
//! from the return values whether a name got its first subscriber or lost its
//! last one, and act on that afterwards (listening does).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use indexmap::IndexMap;

use crate::monitoring::Monitor;
use crate::peer::{ConnectionId, Peer};

const SHARDS: usize = 16;

type Subscribers = IndexMap<ConnectionId, Arc<Peer>>;
type Shard = Mutex<HashMap<Arc<str>, Subscribers>>;

/// A subscription registry: for each name, the connections subscribed to it.
#[derive(Debug)]
pub struct SubscriptionRegistry {
    shards: Box<[Shard]>,
    by_connection: Mutex<HashMap<ConnectionId, HashSet<Arc<str>>>>,
    /// The monitor that receives every [`SubscriptionRegistry::send`], once set.
    monitor: OnceLock<Monitor>,
}

/// The connection was already subscribed to the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadySubscribed;

/// The connection was not subscribed to the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotSubscribed;

impl Default for SubscriptionRegistry {
    fn default() -> Self {
        SubscriptionRegistry {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            by_connection: Mutex::new(HashMap::new()),
            monitor: OnceLock::new(),
        }
    }
}

impl SubscriptionRegistry {
    /// Creates an empty registry.
    pub fn new() -> SubscriptionRegistry {
        SubscriptionRegistry::default()
    }

    /// Subscribes `peer` to `name`. Returns true when `name` had no subscriber before.
    pub fn subscribe(&self, name: &str, peer: &Arc<Peer>) -> Result<bool, AlreadySubscribed> {
        let name: Arc<str> = Arc::from(name);
        let first = {
            let mut shard = self.shard(&name);
            let subscribers = shard.entry(name.clone()).or_default();
            if subscribers.contains_key(&peer.id()) {
                return Err(AlreadySubscribed);
            }
            subscribers.insert(peer.id(), peer.clone());
            subscribers.len() == 1
        };
        lock(&self.by_connection)
            .entry(peer.id())
            .or_default()
            .insert(name);
        Ok(first)
    }

    /// Unsubscribes `peer` from `name`. Returns true when `name` has no subscriber left.
    pub fn unsubscribe(&self, name: &str, peer: &Peer) -> Result<bool, NotSubscribed> {
        let last = self.remove_from_shard(name, peer.id())?;
        if let Some(names) = lock(&self.by_connection).get_mut(&peer.id()) {
            names.remove(name);
        }
        Ok(last)
    }

    /// Removes every subscription of a closed connection. Returns the names
    /// that lost their last subscriber.
    pub fn remove_connection(&self, id: ConnectionId) -> Vec<Arc<str>> {
        let names = lock(&self.by_connection).remove(&id).unwrap_or_default();
        names
            .into_iter()
            .filter(|name| self.remove_from_shard(name, id) == Ok(true))
            .collect()
    }

    /// Unsubscribes everyone from `name` and returns who was subscribed.
    pub fn remove_all(&self, name: &str) -> Vec<Arc<Peer>> {
        let removed = self.shard(name).remove(name).unwrap_or_default();
        let mut by_connection = lock(&self.by_connection);
        for id in removed.keys() {
            if let Some(names) = by_connection.get_mut(id) {
                names.remove(name);
            }
        }
        removed.into_values().collect()
    }

    /// Queues `frame` for every subscriber of `name` except `except`.
    /// Returns how many subscribers it was queued for.
    pub fn send(&self, name: &str, frame: &Bytes, except: Option<ConnectionId>) -> usize {
        let shard = self.shard(name);
        let Some(subscribers) = shard.get(name) else {
            return 0;
        };
        let mut sent = 0;
        for (id, peer) in subscribers {
            if Some(*id) != except {
                peer.send(frame.clone());
                sent += 1;
            }
        }
        if let Some(monitor) = self.monitor.get() {
            monitor.broadcast(frame, sent);
        }
        sent
    }

    /// Sets the monitor that hears about every broadcast. Later calls do nothing.
    pub(crate) fn set_monitor(&self, monitor: Monitor) {
        let _ = self.monitor.set(monitor);
    }

    /// Returns the subscribers of `name`, in subscription order.
    pub fn subscribers(&self, name: &str) -> Vec<Arc<Peer>> {
        self.shard(name)
            .get(name)
            .map(|subscribers| subscribers.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Returns true when `name` has at least one subscriber.
    pub fn has_subscribers(&self, name: &str) -> bool {
        self.shard(name).contains_key(name)
    }

    /// Returns true when the connection `id` is subscribed to `name`.
    pub fn is_subscribed(&self, name: &str, id: ConnectionId) -> bool {
        self.shard(name)
            .get(name)
            .is_some_and(|subscribers| subscribers.contains_key(&id))
    }

    /// Returns the number of names that have subscribers.
    pub fn name_count(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    /// Returns every name that has subscribers.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.shards
            .iter()
            .flat_map(|shard| lock(shard).keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    fn remove_from_shard(&self, name: &str, id: ConnectionId) -> Result<bool, NotSubscribed> {
        let mut shard = self.shard(name);
        let Some(subscribers) = shard.get_mut(name) else {
            return Err(NotSubscribed);
        };
        if subscribers.swap_remove(&id).is_none() {
            return Err(NotSubscribed);
        }
        if subscribers.is_empty() {
            shard.remove(name);
            return Ok(true);
        }
        Ok(false)
    }

    fn shard(&self, name: &str) -> MutexGuard<'_, HashMap<Arc<str>, Subscribers>> {
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        lock(&self.shards[hasher.finish() as usize % SHARDS])
    }
}

/// Locks a mutex, ignoring poisoning: every critical section in this crate
/// leaves its data consistent before anything that could panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{Outbox, OutboxReceiver, Outgoing};

    fn peer(user: &str) -> (Arc<Peer>, OutboxReceiver) {
        let (outbox, receiver) = Outbox::new(1 << 20);
        (
            Arc::new(Peer::new(ConnectionId::next(), user.into(), None, outbox)),
            receiver,
        )
    }

    async fn received(receiver: &mut OutboxReceiver) -> usize {
        let mut items = Vec::new();
        let mut count = 0;
        while let Ok(n) = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            receiver.recv_many(&mut items, 100),
        )
        .await
        {
            count += n;
            if n == 0 {
                break;
            }
        }
        assert!(items.iter().all(|item| matches!(item, Outgoing::Frame(_))));
        count
    }

    #[test]
    fn subscribe_reports_first_and_duplicates() {
        let registry = SubscriptionRegistry::new();
        let (a, _ra) = peer("a");
        let (b, _rb) = peer("b");
        assert_eq!(registry.subscribe("x", &a), Ok(true));
        assert_eq!(registry.subscribe("x", &b), Ok(false));
        assert_eq!(registry.subscribe("x", &a), Err(AlreadySubscribed));
        assert_eq!(registry.subscribers("x").len(), 2);
    }

    #[test]
    fn unsubscribe_reports_last_and_unknown() {
        let registry = SubscriptionRegistry::new();
        let (a, _ra) = peer("a");
        let (b, _rb) = peer("b");
        registry.subscribe("x", &a).unwrap();
        registry.subscribe("x", &b).unwrap();
        assert_eq!(registry.unsubscribe("x", &a), Ok(false));
        assert_eq!(registry.unsubscribe("x", &a), Err(NotSubscribed));
        assert_eq!(registry.unsubscribe("x", &b), Ok(true));
        assert!(!registry.has_subscribers("x"));
        assert_eq!(registry.unsubscribe("never", &b), Err(NotSubscribed));
    }

    #[test]
    fn remove_connection_returns_emptied_names() {
        let registry = SubscriptionRegistry::new();
        let (a, _ra) = peer("a");
        let (b, _rb) = peer("b");
        registry.subscribe("shared", &a).unwrap();
        registry.subscribe("shared", &b).unwrap();
        registry.subscribe("only-a", &a).unwrap();
        let emptied = registry.remove_connection(a.id());
        assert_eq!(emptied, vec![Arc::<str>::from("only-a")]);
        assert_eq!(registry.subscribers("shared").len(), 1);
        assert!(registry.remove_connection(a.id()).is_empty());
    }

    #[tokio::test]
    async fn send_skips_the_sender() {
        let registry = SubscriptionRegistry::new();
        let (a, mut ra) = peer("a");
        let (b, mut rb) = peer("b");
        registry.subscribe("x", &a).unwrap();
        registry.subscribe("x", &b).unwrap();
        assert_eq!(
            registry.send("x", &Bytes::from_static(b"f"), Some(a.id())),
            1
        );
        assert_eq!(received(&mut ra).await, 0);
        assert_eq!(received(&mut rb).await, 1);
        assert_eq!(registry.send("nobody", &Bytes::from_static(b"f"), None), 0);
    }

    #[test]
    fn remove_all_empties_the_name() {
        let registry = SubscriptionRegistry::new();
        let (a, _ra) = peer("a");
        let (b, _rb) = peer("b");
        registry.subscribe("x", &a).unwrap();
        registry.subscribe("x", &b).unwrap();
        registry.subscribe("y", &a).unwrap();
        assert_eq!(registry.remove_all("x").len(), 2);
        assert!(!registry.has_subscribers("x"));
        assert_eq!(
            registry.remove_connection(a.id()),
            vec![Arc::<str>::from("y")]
        );
        assert!(registry.remove_all("x").is_empty());
    }

    #[test]
    fn names_lists_every_shard() {
        let registry = SubscriptionRegistry::new();
        let (a, _ra) = peer("a");
        for i in 0..100 {
            registry.subscribe(&format!("n{i}"), &a).unwrap();
        }
        assert_eq!(registry.names().len(), 100);
    }
}
