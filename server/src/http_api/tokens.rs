//! Tokens that `authPath` issues: opaque random strings that stand for a login for a
//! limited time.
//!
//! deepstream 7.0 passes a request's token to the authentication services, and its
//! `authPath` returns only a token that an HTTP webhook put in its response. This server
//! issues its own, so that a client can log in once and send the token with later
//! requests. Tokens live in this process's memory only: a restart loses them, and a
//! token from one server is unknown to another.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::Value;
use tokio::time::Instant;

/// Random bytes in a token, encoded as 43 characters of unpadded base64url.
const TOKEN_BYTES: usize = 32;

/// Tokens kept at most. When a new token would pass this, the oldest one is forgotten,
/// so repeated logins cannot grow the server's memory without bound.
pub(super) const MAX_TOKENS: usize = 100_000;

/// The login a token stands for.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Identity {
    /// The user name from authentication.
    pub(super) user: Arc<str>,
    /// The `clientData` from authentication.
    pub(super) client_data: Option<Value>,
    /// The `serverData` from authentication, for permission rules.
    pub(super) server_data: Option<Value>,
}

/// The outcome of a token lookup.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lookup {
    /// A token issued here that is still valid.
    Valid(Identity),
    /// A token issued here whose time has run out. It is forgotten by this lookup.
    Expired,
    /// A token this server did not issue, or forgot.
    Unknown,
}

/// The tokens issued by this process, each valid for the same duration.
///
/// Callers pass the current time, so tests control the clock. Because every token lives
/// equally long, issue order is also expiry order, and expired tokens are dropped from
/// the front of a queue.
#[derive(Debug)]
pub(super) struct TokenStore {
    lifetime: Duration,
    tokens: HashMap<String, Issued>,
    /// Tokens in issue order, with their expiry.
    order: VecDeque<(Instant, String)>,
}

#[derive(Debug)]
struct Issued {
    identity: Identity,
    expires: Instant,
}

impl TokenStore {
    /// Creates an empty store whose tokens are valid for `lifetime`.
    pub(super) fn new(lifetime: Duration) -> TokenStore {
        TokenStore {
            lifetime,
            tokens: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Issues a new token for `identity`, valid from `now` for the store's lifetime.
    pub(super) fn issue(&mut self, identity: Identity, now: Instant) -> String {
        self.forget_expired(now);
        while self.tokens.len() >= MAX_TOKENS {
            match self.order.pop_front() {
                Some((_, oldest)) => {
                    self.tokens.remove(&oldest);
                }
                None => break,
            }
        }

        let token = new_token();
        let expires = now + self.lifetime;
        self.tokens
            .insert(token.clone(), Issued { identity, expires });
        self.order.push_back((expires, token.clone()));
        token
    }

    /// Looks `token` up at `now`.
    pub(super) fn lookup(&mut self, token: &str, now: Instant) -> Lookup {
        let Some(issued) = self.tokens.get(token) else {
            return Lookup::Unknown;
        };
        if issued.expires <= now {
            self.tokens.remove(token);
            return Lookup::Expired;
        }
        Lookup::Valid(issued.identity.clone())
    }

    /// Returns the number of tokens kept, expired ones included until they are dropped.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.tokens.len()
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            if let Some((_, token)) = self.order.pop_front() {
                self.tokens.remove(&token);
            }
        }
    }
}

/// Returns a token of [`TOKEN_BYTES`] random bytes. `rand::rng()` is a cryptographically
/// secure generator seeded by the operating system, so tokens cannot be guessed.
fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(user: &str) -> Identity {
        Identity {
            user: Arc::from(user),
            client_data: Some(serde_json::json!({"colour": "red"})),
            server_data: None,
        }
    }

    #[test]
    fn issued_token_finds_identity() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        let now = Instant::now();

        let token = store.issue(identity("ada"), now);

        assert_eq!(token.len(), 43, "{token}");
        assert_eq!(
            store.lookup(&token, now + Duration::from_secs(59)),
            Lookup::Valid(identity("ada"))
        );
    }

    #[test]
    fn tokens_differ() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        let now = Instant::now();

        let first = store.issue(identity("ada"), now);
        let second = store.issue(identity("ada"), now);

        assert_ne!(first, second);
    }

    #[test]
    fn token_expires_after_lifetime() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        let now = Instant::now();
        let token = store.issue(identity("ada"), now);

        assert_eq!(
            store.lookup(&token, now + Duration::from_secs(60)),
            Lookup::Expired
        );
        assert_eq!(
            store.lookup(&token, now + Duration::from_secs(61)),
            Lookup::Unknown
        );
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn unknown_token_is_unknown() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        store.issue(identity("ada"), Instant::now());

        assert_eq!(store.lookup("not-a-token", Instant::now()), Lookup::Unknown);
    }

    #[test]
    fn issue_drops_expired_tokens() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        let now = Instant::now();
        store.issue(identity("ada"), now);
        store.issue(identity("bob"), now + Duration::from_secs(30));

        store.issue(identity("eve"), now + Duration::from_secs(61));

        assert_eq!(store.len(), 2);
    }

    #[test]
    fn full_store_forgets_oldest_token() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        let now = Instant::now();
        let oldest = store.issue(identity("first"), now);
        let second = store.issue(identity("second"), now);
        for _ in 2..MAX_TOKENS {
            store.issue(identity("filler"), now);
        }
        assert_eq!(store.len(), MAX_TOKENS);

        store.issue(identity("newest"), now);

        assert_eq!(store.len(), MAX_TOKENS);
        assert_eq!(store.lookup(&oldest, now), Lookup::Unknown);
        assert_eq!(
            store.lookup(&second, now),
            Lookup::Valid(identity("second"))
        );
    }
}
