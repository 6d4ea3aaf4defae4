//! Listening: providers that register a name pattern and are asked, one at a
//! time, to provide each subscription that matches it.
//!
//! The registry is shared by events and records; [`ListenMessages`] builds the
//! topic's messages. For each subscription name with subscribers and no
//! active provider, a *search* asks the matching providers in turn with
//! `SUBSCRIPTION_FOR_PATTERN_FOUND`. The first to `LISTEN_ACCEPT` becomes the
//! active provider; a `LISTEN_REJECT` or a missing answer within
//! `listen.responseTimeout` moves the search on. When the last subscriber
//! leaves, the active provider gets `SUBSCRIPTION_FOR_PATTERN_REMOVED`; when
//! the active provider leaves or stops listening, a new search starts.
//!
//! Lock order: this registry's state lock may be held while the subscription
//! registry is read, never the other way round.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fancy_regex::Regex;
use indexmap::IndexMap;
use rand::seq::SliceRandom;
use tokio::task::AbortHandle;

use crate::config::ListenConfig;
use crate::peer::{ConnectionId, Peer};
use crate::registry::{SubscriptionRegistry, lock};

/// Builds the listen-related messages of one topic.
pub trait ListenMessages: Send + Sync + 'static {
    /// Acknowledges a LISTEN or UNLISTEN of `pattern`.
    fn ack(&self, listen: bool, pattern: &str) -> Bytes;
    /// Tells a provider that `subscription` matches its `pattern`.
    fn pattern_found(&self, pattern: &str, subscription: &str) -> Bytes;
    /// Tells the active provider that `subscription` lost its last subscriber.
    fn pattern_removed(&self, pattern: &str, subscription: &str) -> Bytes;
    /// Reports a pattern that is not a valid regular expression.
    fn invalid_regex(&self, pattern: &str) -> Bytes;
    /// Tells a provider that its response for `subscription` came too late.
    fn response_timeout(&self, subscription: &str) -> Bytes;
    /// Reports a second LISTEN of the same pattern.
    fn already_listening(&self, pattern: &str) -> Bytes;
    /// Reports an UNLISTEN of a pattern the connection does not listen to.
    fn not_listening(&self, pattern: &str) -> Bytes;
    /// Tells a subscriber whether `subscription` has an active provider, if the
    /// topic reports that (records do, events do not).
    fn has_provider(&self, subscription: &str, has_provider: bool) -> Option<Bytes>;
}

/// The listener registry of one topic.
pub struct ListenerRegistry {
    messages: Box<dyn ListenMessages>,
    subscriptions: Arc<SubscriptionRegistry>,
    config: ListenConfig,
    state: Mutex<ListenState>,
    this: Weak<ListenerRegistry>,
}

#[derive(Default)]
struct ListenState {
    patterns: IndexMap<String, Pattern>,
    active: HashMap<String, Provider>,
    searches: HashMap<String, Search>,
    by_connection: HashMap<ConnectionId, HashSet<String>>,
    /// When a search for a subscription last ended without a provider.
    unsuccessful: HashMap<String, Instant>,
    next_search_id: u64,
}

struct Pattern {
    regex: Regex,
    providers: IndexMap<ConnectionId, Arc<Peer>>,
}

#[derive(Clone)]
struct Provider {
    peer: Arc<Peer>,
    pattern: String,
}

impl Provider {
    fn is(&self, id: ConnectionId, pattern: &str) -> bool {
        self.peer.id() == id && self.pattern == pattern
    }
}

struct Search {
    id: u64,
    asked: Provider,
    remaining: VecDeque<Provider>,
    timeout: AbortHandle,
}

impl ListenerRegistry {
    /// Creates the registry for the topic whose subscriptions are in `subscriptions`.
    pub fn new(
        messages: Box<dyn ListenMessages>,
        subscriptions: Arc<SubscriptionRegistry>,
        config: ListenConfig,
    ) -> Arc<ListenerRegistry> {
        Arc::new_cyclic(|this| ListenerRegistry {
            messages,
            subscriptions,
            config,
            state: Mutex::new(ListenState::default()),
            this: this.clone(),
        })
    }

    /// Starts the periodic retry of subscriptions that found no provider,
    /// every `listen.rematchInterval`. Must be called inside a tokio runtime.
    pub fn start_rematch_timer(self: &Arc<Self>) {
        let interval = self.config.rematch_interval;
        if interval < Duration::from_secs(1) {
            tracing::warn!(
                ?interval,
                "listen.rematchInterval below one second, rematching disabled"
            );
            return;
        }
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(registry) = this.upgrade() else {
                    return;
                };
                registry.rematch();
            }
        });
    }

    /// Handles LISTEN of `pattern` from `peer`.
    pub fn listen(&self, peer: &Arc<Peer>, pattern: &str) {
        let regex = match Regex::new(pattern) {
            Ok(regex) => regex,
            Err(error) => {
                tracing::debug!(pattern, %error, "invalid listen pattern");
                peer.send(self.messages.invalid_regex(pattern));
                return;
            }
        };

        let mut state = lock(&self.state);
        let entry = state
            .patterns
            .entry(pattern.to_owned())
            .or_insert_with(|| Pattern {
                regex,
                providers: IndexMap::new(),
            });
        if entry.providers.contains_key(&peer.id()) {
            peer.send(self.messages.already_listening(pattern));
            return;
        }
        entry.providers.insert(peer.id(), peer.clone());
        state
            .by_connection
            .entry(peer.id())
            .or_default()
            .insert(pattern.to_owned());
        peer.send(self.messages.ack(true, pattern));

        let provider = Provider {
            peer: peer.clone(),
            pattern: pattern.to_owned(),
        };
        self.offer_new_provider(&mut state, &provider);
    }

    /// Handles UNLISTEN of `pattern` from `peer`.
    pub fn unlisten(&self, peer: &Arc<Peer>, pattern: &str) {
        let mut state = lock(&self.state);
        let removed = state
            .patterns
            .get_mut(pattern)
            .and_then(|entry| entry.providers.swap_remove(&peer.id()))
            .is_some();
        if !removed {
            peer.send(self.messages.not_listening(pattern));
            return;
        }
        if let Some(patterns) = state.by_connection.get_mut(&peer.id()) {
            patterns.remove(pattern);
        }
        self.drop_empty_pattern(&mut state, pattern);
        peer.send(self.messages.ack(false, pattern));
        self.forget_provider(&mut state, peer.id(), pattern);
    }

    /// Handles LISTEN_ACCEPT of `subscription` by `peer` for `pattern`.
    pub fn accept(&self, peer: &Arc<Peer>, pattern: &str, subscription: &str) {
        let mut state = lock(&self.state);
        let is_asked = state
            .searches
            .get(subscription)
            .is_some_and(|search| search.asked.is(peer.id(), pattern));
        if !is_asked {
            // A late or unsolicited accept: make sure the client does not go on
            // providing something nobody asked it for.
            let is_active = state
                .active
                .get(subscription)
                .is_some_and(|active| active.is(peer.id(), pattern));
            if !is_active {
                tracing::debug!(
                    subscription,
                    pattern,
                    "listen accept without a pending request"
                );
                peer.send(self.messages.pattern_removed(pattern, subscription));
            }
            return;
        }

        let search = state
            .searches
            .remove(subscription)
            .expect("search checked above");
        search.timeout.abort();
        state.unsuccessful.remove(subscription);
        state.active.insert(subscription.to_owned(), search.asked);
        self.broadcast_has_provider(subscription, true);
    }

    /// Handles LISTEN_REJECT of `subscription` by `peer` for `pattern`.
    pub fn reject(&self, peer: &Arc<Peer>, pattern: &str, subscription: &str) {
        let mut state = lock(&self.state);
        let is_asked = state
            .searches
            .get(subscription)
            .is_some_and(|search| search.asked.is(peer.id(), pattern));
        if is_asked {
            self.ask_next_provider(&mut state, subscription);
        }
    }

    /// Called after `subscription` got its first subscriber.
    pub fn on_first_subscription(&self, subscription: &str) {
        let mut state = lock(&self.state);
        if self.subscriptions.has_subscribers(subscription) {
            self.start_search(&mut state, subscription);
        }
    }

    /// Called after `peer` subscribed to `subscription`, first or not.
    pub fn on_subscription(&self, peer: &Peer, subscription: &str) {
        let state = lock(&self.state);
        if state.active.contains_key(subscription) {
            if let Some(frame) = self.messages.has_provider(subscription, true) {
                peer.send(frame);
            }
        }
    }

    /// Called after `subscription` lost its last subscriber.
    pub fn on_last_unsubscription(&self, subscription: &str) {
        let mut state = lock(&self.state);
        if self.subscriptions.has_subscribers(subscription) {
            return;
        }
        state.unsuccessful.remove(subscription);
        if let Some(search) = state.searches.remove(subscription) {
            search.timeout.abort();
        }
        if let Some(active) = state.active.remove(subscription) {
            active
                .peer
                .send(self.messages.pattern_removed(&active.pattern, subscription));
        }
    }

    /// Removes everything a closed connection provided or listened to.
    pub fn remove_connection(&self, id: ConnectionId) {
        let mut state = lock(&self.state);
        let patterns = state.by_connection.remove(&id).unwrap_or_default();
        for pattern in patterns {
            if let Some(entry) = state.patterns.get_mut(&pattern) {
                entry.providers.swap_remove(&id);
            }
            self.drop_empty_pattern(&mut state, &pattern);
            self.forget_provider(&mut state, id, &pattern);
        }
    }

    /// Retries every subscription without a provider whose last search ended
    /// more than `listen.matchCooldown` ago.
    pub fn rematch(&self) {
        let mut state = lock(&self.state);
        let cooldown = self.config.match_cooldown;
        for name in self.subscriptions.names() {
            let cooling = state
                .unsuccessful
                .get(&*name)
                .is_some_and(|at| at.elapsed() < cooldown);
            if !cooling {
                self.start_search(&mut state, &name);
            }
        }
    }

    /// Adds a new provider to running searches and starts searches for
    /// matching subscriptions that have none.
    fn offer_new_provider(&self, state: &mut ListenState, provider: &Provider) {
        let regex = &state.patterns[&provider.pattern].regex;
        let matching: Vec<Arc<str>> = self
            .subscriptions
            .names()
            .into_iter()
            .filter(|name| !state.active.contains_key(&**name))
            .filter(|name| regex.is_match(&**name).unwrap_or(false))
            .collect();
        for name in matching {
            match state.searches.get_mut(&*name) {
                Some(search) => search.remaining.push_back(provider.clone()),
                None => self.start_search(state, &name),
            }
        }
    }

    /// Stops using `(id, pattern)` as a provider: in running searches and as
    /// the active provider of subscriptions, which then look for another one.
    fn forget_provider(&self, state: &mut ListenState, id: ConnectionId, pattern: &str) {
        let mut ask_next = Vec::new();
        for (subscription, search) in &mut state.searches {
            search
                .remaining
                .retain(|provider| !provider.is(id, pattern));
            if search.asked.is(id, pattern) {
                ask_next.push(subscription.clone());
            }
        }
        for subscription in ask_next {
            self.ask_next_provider(state, &subscription);
        }

        let lost: Vec<String> = state
            .active
            .iter()
            .filter(|(_, active)| active.is(id, pattern))
            .map(|(subscription, _)| subscription.clone())
            .collect();
        for subscription in lost {
            state.active.remove(&subscription);
            self.broadcast_has_provider(&subscription, false);
            if self.subscriptions.has_subscribers(&subscription) {
                self.start_search(state, &subscription);
            }
        }
    }

    fn start_search(&self, state: &mut ListenState, subscription: &str) {
        if state.active.contains_key(subscription) || state.searches.contains_key(subscription) {
            return;
        }
        let mut candidates: Vec<Provider> = state
            .patterns
            .iter()
            .filter(|(_, entry)| entry.regex.is_match(subscription).unwrap_or(false))
            .flat_map(|(pattern, entry)| {
                entry.providers.values().map(|peer| Provider {
                    peer: peer.clone(),
                    pattern: pattern.clone(),
                })
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        if self.config.shuffle_providers {
            candidates.shuffle(&mut rand::rng());
        }
        let mut remaining = VecDeque::from(candidates);
        let asked = remaining.pop_front().expect("candidates is not empty");
        self.ask(state, subscription, asked, remaining);
    }

    fn ask_next_provider(&self, state: &mut ListenState, subscription: &str) {
        let Some(mut search) = state.searches.remove(subscription) else {
            return;
        };
        search.timeout.abort();
        match search.remaining.pop_front() {
            Some(next) => self.ask(state, subscription, next, search.remaining),
            None => {
                tracing::debug!(subscription, "no listen provider accepted");
                state
                    .unsuccessful
                    .insert(subscription.to_owned(), Instant::now());
            }
        }
    }

    fn ask(
        &self,
        state: &mut ListenState,
        subscription: &str,
        asked: Provider,
        remaining: VecDeque<Provider>,
    ) {
        state.next_search_id += 1;
        let id = state.next_search_id;
        let timeout = self.spawn_response_timeout(subscription.to_owned(), id);
        asked
            .peer
            .send(self.messages.pattern_found(&asked.pattern, subscription));
        state.searches.insert(
            subscription.to_owned(),
            Search {
                id,
                asked,
                remaining,
                timeout,
            },
        );
    }

    fn spawn_response_timeout(&self, subscription: String, search_id: u64) -> AbortHandle {
        let registry = self.this.clone();
        let delay = self.config.response_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(registry) = registry.upgrade() {
                registry.on_response_timeout(&subscription, search_id);
            }
        })
        .abort_handle()
    }

    fn on_response_timeout(&self, subscription: &str, search_id: u64) {
        let mut state = lock(&self.state);
        let Some(search) = state.searches.get(subscription) else {
            return;
        };
        if search.id != search_id {
            return;
        }
        search
            .asked
            .peer
            .send(self.messages.response_timeout(subscription));
        self.ask_next_provider(&mut state, subscription);
    }

    fn broadcast_has_provider(&self, subscription: &str, has_provider: bool) {
        if let Some(frame) = self.messages.has_provider(subscription, has_provider) {
            self.subscriptions.send(subscription, &frame, None);
        }
    }

    fn drop_empty_pattern(&self, state: &mut ListenState, pattern: &str) {
        if state
            .patterns
            .get(pattern)
            .is_some_and(|entry| entry.providers.is_empty())
        {
            state.patterns.swap_remove(pattern);
        }
    }
}
