use std::error::Error;
use std::fmt;
use std::time::Duration;

/// The error type that backends keep as the cause of a [`StorageError`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A failed cache or storage operation. Every variant names the backend (its
/// [`description`](crate::storage::Storage::description)) and, where one is involved, the record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Opening a backend at start-up failed: a file could not be opened or created, a server
    /// could not be reached, or the table could not be created.
    #[error("failed to open the {backend}: {}. {hint}", WithoutFinalPeriod(.source))]
    Open {
        /// The backend's description.
        backend: String,
        /// The fix to try, as a sentence.
        hint: String,
        /// The error from the backend.
        #[source]
        source: BoxError,
    },

    /// An operation failed in the backend.
    #[error("{operation} of {} failed in the {backend}: {source}", Subject(.record))]
    Operation {
        /// The backend's description.
        backend: String,
        /// The operation.
        operation: Operation,
        /// The record, or `None` for an operation on many records.
        record: Option<String>,
        /// The error from the backend.
        #[source]
        source: BoxError,
    },

    /// A stored value is not in the format this server writes, for example a Redis hash whose
    /// version field is not a number.
    #[error(
        "{operation} of record `{record}` in the {backend} found an invalid stored value: {detail}"
    )]
    InvalidStoredValue {
        /// The backend's description.
        backend: String,
        /// The operation.
        operation: Operation,
        /// The record.
        record: String,
        /// The problem with the value.
        detail: String,
    },

    /// The backend was closed before or during the operation.
    #[error("{operation} of {} failed: the {backend} is closed", Subject(.record))]
    Closed {
        /// The backend's description.
        backend: String,
        /// The operation.
        operation: Operation,
        /// The record, or `None` for an operation on many records.
        record: Option<String>,
    },

    /// The operation did not finish within its time limit.
    #[error(
        "{operation} of {} in the {backend} timed out after {} ms",
        Subject(.record),
        .after.as_millis()
    )]
    Timeout {
        /// The backend's description.
        backend: String,
        /// The operation.
        operation: Operation,
        /// The record, or `None` for an operation on many records.
        record: Option<String>,
        /// The time limit that passed.
        after: Duration,
    },
}

/// A cache or storage operation, named after the trait method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`Storage::get`](crate::storage::Storage::get) or [`Cache::get`](crate::storage::Cache::get).
    Get,
    /// `set`.
    Set,
    /// `delete`.
    Delete,
    /// [`Cache::delete_bulk`](crate::storage::Cache::delete_bulk).
    DeleteBulk,
    /// [`Cache::head_bulk`](crate::storage::Cache::head_bulk).
    HeadBulk,
    /// Closing the backend.
    Close,
}

/// Formats an optional record name as "record `name`", or as "records" for an operation on
/// many records.
struct Subject<'a>(&'a Option<String>);

/// Formats an error message without its final period, so that a sentence can follow it.
struct WithoutFinalPeriod<'a>(&'a BoxError);

impl StorageError {
    /// Returns the record the error is about, when it is about one.
    pub fn record(&self) -> Option<&str> {
        match self {
            StorageError::Open { .. } => None,
            StorageError::InvalidStoredValue { record, .. } => Some(record),
            StorageError::Operation { record, .. }
            | StorageError::Closed { record, .. }
            | StorageError::Timeout { record, .. } => record.as_deref(),
        }
    }

    /// Returns whether the error is a [`StorageError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, StorageError::Timeout { .. })
    }
}

impl Operation {
    /// Returns the operation's name, which is the name of the trait method.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Delete => "delete",
            Operation::DeleteBulk => "delete_bulk",
            Operation::HeadBulk => "head_bulk",
            Operation::Close => "close",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for WithoutFinalPeriod<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.0.to_string();
        f.write_str(message.trim_end_matches('.'))
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "record `{name}`"),
            None => f.write_str("records"),
        }
    }
}
