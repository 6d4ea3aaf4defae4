//! Typed handles that the session hands out and the caller passes back.
//!
//! Each is a number unique within one [`Session`](super::Session), never reused.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) u64);

        impl $name {
            /// Returns the number behind the handle, for logs and maps.
            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// One local subscription to an event name.
    SubscriptionId
);
id_type!(
    /// One listen registration for an event pattern.
    ListenId
);
id_type!(
    /// One RPC name that this client provides.
    ProviderId
);
id_type!(
    /// One RPC request received from the server that this client must answer.
    IncomingRpcId
);
id_type!(
    /// One request that waits for an answer from the server: an RPC, a presence
    /// query, a record read, a write acknowledgement and so on.
    RequestId
);
id_type!(
    /// One local subscription to presence changes of all users or of one user.
    PresenceSubscriptionId
);
id_type!(
    /// One open handle to a record (or list).
    RecordId
);
id_type!(
    /// One local subscription to changes of a record or of a path in it.
    RecordSubscriptionId
);
