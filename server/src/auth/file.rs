//! The `file` authentication type: user names and passwords from a users file.
//!
//! The users file maps each user name to an entry with `password`, in plain text or as a hash
//! that `deepstream hash` prints. An entry may also have `clientData`, which the client
//! receives when it logs in, and `serverData`, which stays on the server for permission rules.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::hash::{encoded_key_length, is_well_formed, verify_password};
use super::{AuthError, AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use crate::config::{self, FileAuthConfig, HashSettings, UsersSource};

/// The client data of a login without a string `username` and `password`, as deepstream
/// 7.0 words it.
const MISSING_PARAMETERS: &str = "missing authentication parameter: username or/and password";

/// The users of file authentication. Its `Debug` output lists the user names only.
#[derive(Clone, PartialEq)]
pub struct UsersTable {
    users: HashMap<String, UserEntry>,
}

/// One user's entry in the users file.
#[derive(Clone, PartialEq)]
struct UserEntry {
    /// The plain-text password or its hash (`password`).
    password: String,
    /// `clientData`, or `None` when the entry has none.
    client_data: Option<Value>,
    /// `serverData`, or `None` when the entry has none or it is null.
    server_data: Option<Value>,
}

/// A users file or `users` option whose content is not a table of users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// The content is not a mapping of user names to entries.
    #[error("the content is not a mapping of user names to entries")]
    NotAMapping,
    /// The mapping has no users, so every login would fail.
    #[error("there are no users")]
    Empty,
    /// A user's entry is not a mapping.
    #[error("the entry of user `{user}` is not a mapping")]
    EntryNotAMapping {
        /// The user name.
        user: String,
    },
    /// A user's entry has no `password` string.
    #[error("user `{user}` has no `password` string")]
    MissingPassword {
        /// The user name.
        user: String,
    },
    /// The content has a value that JSON cannot represent, such as a mapping used as a key.
    #[error("the content cannot be represented as JSON: {0}")]
    NotJson(String),
}

/// The `file` authentication type.
///
/// A login needs the string fields `username` and `password` in its auth data. A known user
/// with the right password is accepted as `username`, with the entry's `clientData` (null
/// when it has none) returned to the client. An unknown user is left to the next service
/// of the `auth` list, and so is a wrong password or missing fields unless
/// `reportInvalidParameters` is set, in which case they are rejected. Both cases return the
/// same empty client data, so a client cannot tell an unknown user from a wrong password.
pub struct FileAuthenticator {
    users: UsersTable,
    hash: Option<HashSettings>,
    report_invalid_parameters: bool,
    /// The stored hash that unknown user names are checked against, so that they cost one
    /// derivation like known ones.
    decoy: String,
    /// Bounds the PBKDF2 derivations that run at once to the number of CPUs, so a burst of
    /// logins queues here instead of filling the blocking thread pool.
    derivations: Arc<Semaphore>,
    /// The source of the users, for the start-up log.
    origin: String,
}

impl UsersTable {
    /// Reads a table of users from the content of a users file.
    ///
    /// # Errors
    ///
    /// A [`UsersError`] when `value` is not a non-empty mapping of user names to entries
    /// that each have a `password` string.
    pub fn from_json(value: Value) -> Result<UsersTable, UsersError> {
        let Value::Object(entries) = value else {
            return Err(UsersError::NotAMapping);
        };
        if entries.is_empty() {
            return Err(UsersError::Empty);
        }
        let users = entries
            .into_iter()
            .map(|(user, entry)| {
                let entry = UserEntry::from_json(&user, entry)?;
                Ok((user, entry))
            })
            .collect::<Result<HashMap<_, _>, UsersError>>()?;
        Ok(UsersTable { users })
    }

    /// Returns the number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Returns whether the table has no users, which [`UsersTable::from_json`] never returns.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl UserEntry {
    fn from_json(user: &str, entry: Value) -> Result<UserEntry, UsersError> {
        let Value::Object(mut fields) = entry else {
            return Err(UsersError::EntryNotAMapping {
                user: user.to_owned(),
            });
        };
        let Some(Value::String(password)) = fields.remove("password") else {
            return Err(UsersError::MissingPassword {
                user: user.to_owned(),
            });
        };
        Ok(UserEntry {
            password,
            client_data: fields.remove("clientData"),
            server_data: fields.remove("serverData").filter(|data| !data.is_null()),
        })
    }
}

impl UsersError {
    /// Returns the user whose entry is at fault, if the error is about one entry.
    pub fn user(&self) -> Option<&str> {
        match self {
            UsersError::EntryNotAMapping { user } | UsersError::MissingPassword { user } => {
                Some(user)
            }
            UsersError::NotAMapping | UsersError::Empty | UsersError::NotJson(_) => None,
        }
    }
}

impl FileAuthenticator {
    /// Creates the service over `users`. `hash` describes how the stored passwords are
    /// hashed, or is `None` for plain-text passwords. Logs a warning for each stored hash
    /// that `hash` could not have made, because that user can never log in.
    pub fn new(
        users: UsersTable,
        hash: Option<HashSettings>,
        report_invalid_parameters: bool,
    ) -> FileAuthenticator {
        if let Some(settings) = &hash {
            warn_about_malformed_hashes(&users, settings);
        }
        let decoy = match &hash {
            Some(settings) => format!(
                "{}unknown-user-salt",
                "A".repeat(encoded_key_length(settings.key_length))
            ),
            None => String::new(),
        };
        let cpus = std::thread::available_parallelism().map_or(1, |count| count.get());
        let origin = format!("{} users", users.len());
        FileAuthenticator {
            users,
            hash,
            report_invalid_parameters,
            decoy,
            derivations: Arc::new(Semaphore::new(cpus)),
            origin,
        }
    }

    /// Creates the service that `config` describes, reading its users file if it names one.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] when the users file is missing, unreadable, not YAML or JSON, or not
    /// a table of users.
    pub fn from_config(config: &FileAuthConfig) -> Result<FileAuthenticator, AuthError> {
        let (users, origin) = match &config.users {
            UsersSource::File(path) => {
                let users = read_users_file(path)?;
                let origin = format!("{} users from {}", users.len(), path.display());
                (users, origin)
            }
            UsersSource::Inline(users) => (users.clone(), format!("{} users", users.len())),
        };
        let mut service =
            FileAuthenticator::new(users, config.hash, config.report_invalid_parameters);
        service.origin = origin;
        Ok(service)
    }

    async fn check(&self, auth_data: &Map<String, Value>) -> AuthOutcome {
        let (Some(Value::String(username)), Some(Value::String(password))) =
            (auth_data.get("username"), auth_data.get("password"))
        else {
            return self.invalid(Some(serde_json::json!({ "error": MISSING_PARAMETERS })));
        };

        let entry = self.users.users.get(username);
        let stored = entry.map_or(self.decoy.as_str(), |entry| entry.password.as_str());
        let matches = self.password_matches(password, stored).await;
        match entry {
            Some(entry) if matches => AuthOutcome::Accepted {
                user: username.clone(),
                client_data: Some(entry.client_data.clone().unwrap_or(Value::Null)),
                server_data: entry.server_data.clone(),
            },
            Some(_) => self.invalid(None),
            // deepstream leaves unknown users to the next service even when it reports
            // invalid parameters.
            None => AuthOutcome::Undecided,
        }
    }

    /// Returns the outcome of a login with wrong or missing credentials.
    fn invalid(&self, client_data: Option<Value>) -> AuthOutcome {
        if self.report_invalid_parameters {
            AuthOutcome::Rejected { client_data }
        } else {
            AuthOutcome::Undecided
        }
    }

    async fn password_matches(&self, password: &str, stored: &str) -> bool {
        let Some(settings) = self.hash else {
            // Comparing digests keeps the time independent of where, and whether, the
            // lengths differ.
            let password_digest = Sha256::digest(password.as_bytes());
            let stored_digest = Sha256::digest(stored.as_bytes());
            return bool::from(password_digest.as_slice().ct_eq(stored_digest.as_slice()));
        };

        let Ok(_permit) = self.derivations.acquire().await else {
            tracing::error!("the password hashing semaphore is closed; rejecting the login");
            return false;
        };
        let (password, stored) = (password.to_owned(), stored.to_owned());
        // A derivation with many iterations takes long enough to stall other connections on
        // the async worker threads.
        let derivation =
            tokio::task::spawn_blocking(move || verify_password(&password, &stored, &settings));
        match derivation.await {
            Ok(matches) => matches,
            Err(error) => {
                tracing::error!(%error, "password hashing failed; rejecting the login");
                false
            }
        }
    }
}

impl Authenticator for FileAuthenticator {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        Box::pin(self.check(auth_data))
    }

    fn description(&self) -> String {
        match &self.hash {
            Some(settings) => format!(
                "file ({}, passwords hashed with PBKDF2-{}, {} iterations, {}-byte keys)",
                self.origin,
                settings.algorithm.name(),
                settings.iterations,
                settings.key_length
            ),
            None => format!("file ({}, plain-text passwords)", self.origin),
        }
    }
}

impl fmt::Debug for UsersTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        f.debug_struct("UsersTable").field("users", &names).finish()
    }
}

/// Reads a YAML or JSON users file.
fn read_users_file(path: &Path) -> Result<UsersTable, AuthError> {
    let extension = path
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    if !matches!(extension.as_deref(), Some("yml" | "yaml" | "json")) {
        return Err(AuthError::UsersFileFormat {
            file: path.to_path_buf(),
        });
    }
    let invalid = |source| AuthError::InvalidUsers {
        file: path.to_path_buf(),
        source,
    };

    let content = config::read_data_file(path).map_err(AuthError::UsersFile)?;
    let json = serde_json::to_value(content)
        .map_err(|error| invalid(UsersError::NotJson(error.to_string())))?;
    UsersTable::from_json(json).map_err(invalid)
}

fn warn_about_malformed_hashes(users: &UsersTable, settings: &HashSettings) {
    let mut names: Vec<&String> = users
        .users
        .iter()
        .filter(|(_, entry)| !is_well_formed(&entry.password, settings))
        .map(|(name, _)| name)
        .collect();
    names.sort();
    for user in names {
        tracing::warn!(
            %user,
            "the stored password of this user is not a hash made with the configured `hash`, \
             `iterations` and `keyLength`, so the user cannot log in; create the hash with \
             `deepstream hash`"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::auth::hash_password;

    fn table(value: Value) -> UsersTable {
        UsersTable::from_json(value).unwrap()
    }

    async fn login(service: &FileAuthenticator, auth_data: Value) -> AuthOutcome {
        let Value::Object(auth_data) = auth_data else {
            panic!("auth data must be an object")
        };
        service
            .authenticate(&ConnectionData::default(), &auth_data)
            .await
    }

    fn hashed_service(report_invalid_parameters: bool) -> FileAuthenticator {
        let settings = HashSettings::DEEPSTREAM_DEFAULT;
        let users = table(json!({
            "ada": {
                "password": hash_password("lovelace", &settings),
                "clientData": {"color": "red"},
                "serverData": {"role": "admin"},
            },
            "bob": {"password": hash_password("builder", &settings)},
        }));
        FileAuthenticator::new(users, Some(settings), report_invalid_parameters)
    }

    #[tokio::test]
    async fn right_password_is_accepted_with_data() {
        let service = hashed_service(true);

        let outcome = login(&service, json!({"username": "ada", "password": "lovelace"})).await;

        assert_eq!(
            outcome,
            AuthOutcome::Accepted {
                user: "ada".to_owned(),
                client_data: Some(json!({"color": "red"})),
                server_data: Some(json!({"role": "admin"})),
            }
        );
    }

    #[tokio::test]
    async fn user_without_data_gets_null_client_data() {
        let service = hashed_service(true);

        let outcome = login(&service, json!({"username": "bob", "password": "builder"})).await;

        assert_eq!(
            outcome,
            AuthOutcome::Accepted {
                user: "bob".to_owned(),
                client_data: Some(Value::Null),
                server_data: None,
            }
        );
    }

    #[tokio::test]
    async fn wrong_password_is_rejected_without_data() {
        let service = hashed_service(true);

        let outcome = login(&service, json!({"username": "ada", "password": "builder"})).await;

        assert_eq!(outcome, AuthOutcome::Rejected { client_data: None });
    }

    #[tokio::test]
    async fn unknown_user_is_left_to_next_service() {
        for report in [true, false] {
            let service = hashed_service(report);

            let outcome = login(&service, json!({"username": "eve", "password": "lovelace"})).await;

            assert_eq!(outcome, AuthOutcome::Undecided, "report {report}");
        }
    }

    #[tokio::test]
    async fn missing_fields_are_rejected_with_reason() {
        let service = hashed_service(true);
        for auth_data in [
            json!({}),
            json!({"username": "ada"}),
            json!({"password": "lovelace"}),
            json!({"username": "ada", "password": 7}),
            json!({"username": ["ada"], "password": "lovelace"}),
        ] {
            let outcome = login(&service, auth_data.clone()).await;

            assert_eq!(
                outcome,
                AuthOutcome::Rejected {
                    client_data: Some(json!({"error": MISSING_PARAMETERS}))
                },
                "{auth_data}"
            );
        }
    }

    #[tokio::test]
    async fn unreported_failures_are_left_to_next_service() {
        let service = hashed_service(false);

        let wrong = login(&service, json!({"username": "ada", "password": "x"})).await;
        let missing = login(&service, json!({"username": "ada"})).await;

        assert_eq!(wrong, AuthOutcome::Undecided);
        assert_eq!(missing, AuthOutcome::Undecided);
    }

    #[tokio::test]
    async fn plain_text_passwords_compare_exactly() {
        let users = table(json!({"ada": {"password": "lovelace"}}));
        let service = FileAuthenticator::new(users, None, true);

        let right = login(&service, json!({"username": "ada", "password": "lovelace"})).await;
        let longer = login(
            &service,
            json!({"username": "ada", "password": "lovelace "}),
        )
        .await;
        let empty = login(&service, json!({"username": "ada", "password": ""})).await;

        assert!(matches!(right, AuthOutcome::Accepted { .. }), "{right:?}");
        assert_eq!(longer, AuthOutcome::Rejected { client_data: None });
        assert_eq!(empty, AuthOutcome::Rejected { client_data: None });
    }

    #[tokio::test]
    async fn plain_text_password_is_not_taken_as_hash() {
        let users = table(json!({"ada": {"password": "lovelace"}}));
        let service = FileAuthenticator::new(users, Some(HashSettings::DEEPSTREAM_DEFAULT), true);

        let outcome = login(&service, json!({"username": "ada", "password": "lovelace"})).await;

        assert_eq!(outcome, AuthOutcome::Rejected { client_data: None });
    }

    #[test]
    fn users_table_rejects_bad_content() {
        let cases = [
            (json!([]), UsersError::NotAMapping),
            (json!("ada"), UsersError::NotAMapping),
            (json!({}), UsersError::Empty),
            (
                json!({"ada": "lovelace"}),
                UsersError::EntryNotAMapping {
                    user: "ada".to_owned(),
                },
            ),
            (
                json!({"ada": {"clientData": {}}}),
                UsersError::MissingPassword {
                    user: "ada".to_owned(),
                },
            ),
            (
                json!({"ada": {"password": 1234}}),
                UsersError::MissingPassword {
                    user: "ada".to_owned(),
                },
            ),
        ];
        for (content, expected) in cases {
            assert_eq!(
                UsersTable::from_json(content.clone()),
                Err(expected),
                "{content}"
            );
        }
    }

    #[test]
    fn users_table_debug_hides_passwords() {
        let users = table(json!({"ada": {"password": "lovelace"}}));

        let debug = format!("{users:?}");

        assert!(debug.contains("ada"), "{debug}");
        assert!(!debug.contains("lovelace"), "{debug}");
    }
}
