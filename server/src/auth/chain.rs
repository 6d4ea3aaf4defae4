//! A list of authentication services asked in order, as deepstream does with several `auth`
//! entries.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};

/// Asks its services in order. The first that accepts or rejects the login decides; one that
/// returns [`AuthOutcome::Undecided`] passes it to the next. When none decides, the login is
/// rejected without client data, as in deepstream.
pub struct ChainAuthenticator {
    services: Vec<Arc<dyn Authenticator>>,
}

impl ChainAuthenticator {
    /// Creates a chain of `services`, asked in this order.
    pub fn new(services: Vec<Arc<dyn Authenticator>>) -> ChainAuthenticator {
        ChainAuthenticator { services }
    }
}

impl Authenticator for ChainAuthenticator {
    fn authenticate<'a>(
        &'a self,
        connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        Box::pin(async move {
            for service in &self.services {
                match service.authenticate(connection, auth_data).await {
                    AuthOutcome::Undecided => {}
                    decided => return decided,
                }
            }
            AuthOutcome::Rejected { client_data: None }
        })
    }

    fn description(&self) -> String {
        let described: Vec<String> = self
            .services
            .iter()
            .enumerate()
            .map(|(index, service)| format!("{}) {}", index + 1, service.description()))
            .collect();
        format!("in order: {}", described.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    /// A service that counts its calls and returns a fixed outcome.
    struct Fixed {
        outcome: AuthOutcome,
        calls: AtomicUsize,
    }

    impl Fixed {
        fn new(outcome: AuthOutcome) -> Arc<Fixed> {
            Arc::new(Fixed {
                outcome,
                calls: AtomicUsize::new(0),
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::Relaxed)
        }
    }

    impl Authenticator for Fixed {
        fn authenticate<'a>(
            &'a self,
            _connection: &'a ConnectionData,
            _auth_data: &'a Map<String, Value>,
        ) -> AuthFuture<'a> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            Box::pin(std::future::ready(self.outcome.clone()))
        }
    }

    fn accepted(user: &str) -> AuthOutcome {
        AuthOutcome::Accepted {
            user: user.to_owned(),
            client_data: None,
            server_data: None,
        }
    }

    async fn run(chain: &ChainAuthenticator) -> AuthOutcome {
        chain
            .authenticate(&ConnectionData::default(), &Map::new())
            .await
    }

    #[tokio::test]
    async fn first_decision_wins() {
        let undecided = Fixed::new(AuthOutcome::Undecided);
        let accepting = Fixed::new(accepted("ada"));
        let not_called = Fixed::new(accepted("bob"));
        let chain = ChainAuthenticator::new(vec![
            undecided.clone(),
            accepting.clone(),
            not_called.clone(),
        ]);

        assert_eq!(run(&chain).await, accepted("ada"));
        assert_eq!(
            (undecided.calls(), accepting.calls(), not_called.calls()),
            (1, 1, 0)
        );
    }

    #[tokio::test]
    async fn rejection_stops_the_chain() {
        let rejecting = Fixed::new(AuthOutcome::Rejected {
            client_data: Some(json!({"error": "locked"})),
        });
        let not_called = Fixed::new(accepted("ada"));
        let chain = ChainAuthenticator::new(vec![rejecting.clone(), not_called.clone()]);

        assert_eq!(
            run(&chain).await,
            AuthOutcome::Rejected {
                client_data: Some(json!({"error": "locked"}))
            }
        );
        assert_eq!(not_called.calls(), 0);
    }

    #[tokio::test]
    async fn nobody_deciding_rejects_without_data() {
        let chain = ChainAuthenticator::new(vec![
            Fixed::new(AuthOutcome::Undecided),
            Fixed::new(AuthOutcome::Undecided),
        ]);
        assert_eq!(
            run(&chain).await,
            AuthOutcome::Rejected { client_data: None }
        );

        let empty = ChainAuthenticator::new(Vec::new());
        assert_eq!(
            run(&empty).await,
            AuthOutcome::Rejected { client_data: None }
        );
    }
}
