//! Permission checks of client requests: the rule for each request, the records
//! its rule reads, and the reply to a request that is not allowed.
//!
//! Every entry point (the WebSocket sessions, the HTTP API) checks through [`Access`]. With
//! permission type `none`, [`Access::is_open`] is true and callers skip the checks.

use std::sync::Arc;

use bytes::Bytes;
use deepstream_protocol::{
    EventAction, EventMessage, PresenceAction, PresenceMessage, RecordAction, RecordMessage,
    RpcAction, RpcMessage, Topic, encode_frame,
};
use serde_json::Value;

use crate::handlers::record::RecordHandler;
use crate::permission::{
    Action, Decision, Lookups, MessageData, Permissions, Request, RuleError, Section, User,
};

/// The permission rules and the records they may read.
pub(crate) struct Access {
    permissions: Permissions,
    records: Arc<RecordHandler>,
}

/// The user a request comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    /// The user name from authentication.
    pub(crate) user: &'a str,
    /// The `serverData` from authentication.
    pub(crate) server_data: Option<&'a Value>,
}

/// One action on one name, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check<'a> {
    pub(crate) section: Section,
    pub(crate) action: Action,
    pub(crate) name: &'a str,
    /// The protocol action of the message, which rules read as `action`.
    pub(crate) message_action: i32,
    pub(crate) data: MessageData<'a>,
}

/// The result of a check: allowed, or the reason it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Denied by the rules: `MESSAGE_DENIED`.
    Deny,
    /// The rule failed: `MESSAGE_PERMISSION_ERROR`.
    Error(RuleError),
}

impl Access {
    pub(crate) fn new(permissions: Permissions, records: Arc<RecordHandler>) -> Access {
        Access {
            permissions,
            records,
        }
    }

    /// Returns true when every action is allowed (permission type `none`).
    pub(crate) fn is_open(&self) -> bool {
        self.permissions.is_allow_all()
    }

    /// Checks one action on one name, loading the records its rule reads. A record
    /// that cannot be loaded fails the check, so the action is not allowed.
    pub(crate) async fn check(&self, caller: Caller<'_>, check: Check<'_>) -> Verdict {
        let request = Request {
            section: check.section,
            action: check.action,
            name: check.name,
            message_action: check.message_action,
            user: User {
                id: caller.user,
                data: caller.server_data,
            },
            data: check.data,
            now_ms: unix_millis(),
        };
        let selected = self
            .permissions
            .select(check.section, check.action, check.name);
        let mut lookups = Lookups::new();
        if check.section == Section::Record && selected.reads_old_data() {
            if let Err(error) = self.load(&mut lookups, check.name).await {
                return Verdict::Error(error);
            }
        }
        loop {
            match selected.check(&request, &mut lookups) {
                Decision::Allow => return Verdict::Allow,
                Decision::NeedRecords(names) => {
                    for name in names {
                        if let Err(error) = self.load(&mut lookups, &name).await {
                            return Verdict::Error(error);
                        }
                    }
                }
                Decision::Error(error) => return Verdict::Error(error),
                _ => return Verdict::Deny,
            }
        }
    }

    /// Checks a `SUBSCRIBECREATEANDREAD` of one record as deepstream 7.0 does: `read`
    /// for an existing record, and `create` then `read` for a new one, each with its own
    /// protocol action (`CREATE`, `READ`) as the rules' `action`. When both rules give
    /// the same result without reading anything, the record is not loaded.
    pub(crate) async fn check_read_or_create(&self, caller: Caller<'_>, name: &str) -> Verdict {
        let read = Check {
            section: Section::Record,
            action: Action::Read,
            name,
            message_action: RecordAction::Read.into(),
            data: MessageData::Absent,
        };
        let create = Check {
            action: Action::Create,
            message_action: RecordAction::Create.into(),
            ..read
        };
        if let (Some(first), Some(second)) = (
            self.constant_verdict(caller, read),
            self.constant_verdict(caller, create),
        ) {
            if first == second {
                return first;
            }
        }

        match self.records.current_data(name).await {
            Ok(Some(_)) => self.check(caller, read).await,
            Ok(None) => match self.check(caller, create).await {
                Verdict::Allow => self.check(caller, read).await,
                refused => refused,
            },
            Err(reason) => Verdict::Error(RuleError::RecordUnavailable {
                name: name.to_owned(),
                reason,
            }),
        }
    }

    /// Returns the verdict of a check whose rule reads no data, old data or other
    /// records, or `None` for other rules.
    fn constant_verdict(&self, caller: Caller<'_>, check: Check<'_>) -> Option<Verdict> {
        let selected = self
            .permissions
            .select(check.section, check.action, check.name);
        if selected.reads_data() || selected.reads_old_data() || selected.reads_records() {
            return None;
        }
        let request = Request {
            section: check.section,
            action: check.action,
            name: check.name,
            message_action: check.message_action,
            user: User {
                id: caller.user,
                data: caller.server_data,
            },
            data: MessageData::Absent,
            now_ms: unix_millis(),
        };
        Some(match selected.check(&request, &mut Lookups::new()) {
            Decision::Allow => Verdict::Allow,
            Decision::Error(error) => Verdict::Error(error),
            _ => Verdict::Deny,
        })
    }

    async fn load(&self, lookups: &mut Lookups, name: &str) -> Result<(), RuleError> {
        if lookups.contains(name) {
            return Ok(());
        }
        let data = self.records.current_data(name).await.map_err(|reason| {
            RuleError::RecordUnavailable {
                name: name.to_owned(),
                reason,
            }
        })?;
        lookups.insert(name, data);
        Ok(())
    }
}

impl Verdict {
    /// Returns the error message of a request that is not allowed: `MESSAGE_DENIED` or
    /// `MESSAGE_PERMISSION_ERROR` for the request's topic, naming the request's action
    /// and name, and carrying its correlation id. `None` for [`Verdict::Allow`].
    pub(crate) fn reply(&self, reply: &Reply<'_>) -> Option<Bytes> {
        let denied = match self {
            Verdict::Allow => return None,
            Verdict::Deny => true,
            Verdict::Error(_) => false,
        };
        let pick = |denied_action: i32, error_action: i32| {
            if denied { denied_action } else { error_action }
        };
        let name = reply.name.to_owned();
        let correlation_id = reply.correlation_id.to_owned();
        let original_action = reply.original_action;
        let frame = match reply.topic {
            Topic::Record => encode_frame(
                Topic::Record,
                &RecordMessage {
                    action: pick(
                        RecordAction::MessageDenied.into(),
                        RecordAction::MessagePermissionError.into(),
                    ),
                    original_action,
                    name,
                    correlation_id,
                    is_error: true,
                    is_write_ack: reply.is_write_ack,
                    ..Default::default()
                },
            ),
            Topic::Event => encode_frame(
                Topic::Event,
                &EventMessage {
                    action: pick(
                        EventAction::MessageDenied.into(),
                        EventAction::MessagePermissionError.into(),
                    ),
                    original_action,
                    name,
                    correlation_id,
                    is_error: true,
                    ..Default::default()
                },
            ),
            Topic::Rpc => encode_frame(
                Topic::Rpc,
                &RpcMessage {
                    action: pick(
                        RpcAction::MessageDenied.into(),
                        RpcAction::MessagePermissionError.into(),
                    ),
                    original_action,
                    name,
                    correlation_id,
                    is_error: true,
                    ..Default::default()
                },
            ),
            Topic::Presence => encode_frame(
                Topic::Presence,
                &PresenceMessage {
                    action: pick(
                        PresenceAction::MessageDenied.into(),
                        PresenceAction::MessagePermissionError.into(),
                    ),
                    original_action,
                    name,
                    correlation_id,
                    is_error: true,
                    ..Default::default()
                },
            ),
            _ => return None,
        };
        Some(frame)
    }
}

/// The request details that an error reply repeats.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply<'a> {
    pub(crate) topic: Topic,
    pub(crate) original_action: i32,
    pub(crate) name: &'a str,
    pub(crate) correlation_id: &'a str,
    pub(crate) is_write_ack: bool,
}

/// Returns the current time in milliseconds since the Unix epoch, 0 for a clock set
/// before it.
pub(crate) fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
