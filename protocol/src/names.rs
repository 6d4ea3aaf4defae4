//! The names deepstream uses for topics and actions in logs and statistics,
//! such as `RECORD` and `SUBSCRIBECREATEANDREAD`.

use crate::messages::{
    AuthAction, ConnectionAction, EventAction, ParserAction, PresenceAction, RecordAction,
    RpcAction, Topic,
};

/// Returns the name of `topic` without its enum prefix, such as `RECORD`.
pub fn topic_name(topic: Topic) -> &'static str {
    strip_prefix(topic.as_str_name(), "TOPIC_")
}

/// Returns the name of `action` in `topic` without its enum prefix, such as
/// `MESSAGE_DENIED`, or `None` when the topic defines no such action.
pub fn action_name(topic: Topic, action: i32) -> Option<&'static str> {
    let full = match topic {
        Topic::Parser => ParserAction::try_from(action).ok()?.as_str_name(),
        Topic::Connection => ConnectionAction::try_from(action).ok()?.as_str_name(),
        Topic::Auth => AuthAction::try_from(action).ok()?.as_str_name(),
        Topic::Event => EventAction::try_from(action).ok()?.as_str_name(),
        Topic::Record => RecordAction::try_from(action).ok()?.as_str_name(),
        Topic::Rpc => RpcAction::try_from(action).ok()?.as_str_name(),
        Topic::Presence => PresenceAction::try_from(action).ok()?.as_str_name(),
        _ => return None,
    };
    Some(full.split_once("_ACTION_").map_or(full, |(_, rest)| rest))
}

fn strip_prefix<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_enum_prefix() {
        assert_eq!(topic_name(Topic::Record), "RECORD");
        assert_eq!(
            action_name(Topic::Record, RecordAction::Subscribecreateandread.into()),
            Some("SUBSCRIBECREATEANDREAD")
        );
        assert_eq!(
            action_name(Topic::Event, EventAction::MessageDenied.into()),
            Some("MESSAGE_DENIED")
        );
    }

    #[test]
    fn unknown_action_has_no_name() {
        assert_eq!(action_name(Topic::Event, 9999), None);
        assert_eq!(action_name(Topic::Cluster, 1), None);
    }
}
