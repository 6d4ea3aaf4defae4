//! Parsing of command lines into typed commands, so that a command with a
//! missing or mistyped argument fails before it reaches the client.

use serde_json::{Map, Value};

use super::failure::Failure;

/// The range of `count` in `subscribe-many` and `record-subscribe-many`.
const COUNT_RANGE: std::ops::RangeInclusive<u64> = 1..=10_000;

/// A command of the driver protocol with its arguments. JSON payloads are
/// kept as JSON text, because the client takes them as text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Command {
    Connect {
        url: String,
    },
    Login {
        auth: String,
    },
    Close,
    Subscribe {
        name: String,
    },
    SubscribeMany {
        names: Vec<String>,
    },
    Unsubscribe {
        name: String,
    },
    Emit {
        name: String,
        data: Option<String>,
    },
    Listen {
        pattern: String,
    },
    RecordListen,
    AnswerListen {
        name: String,
        accept: bool,
    },
    Provide {
        name: String,
        response: ProviderResponse,
    },
    Make {
        name: String,
        data: Option<String>,
    },
    PresenceGetAll,
    PresenceGet {
        users: Vec<String>,
    },
    PresenceSubscribe {
        user: Option<String>,
    },
    RecordGet {
        name: String,
    },
    RecordVersion {
        name: String,
    },
    RecordSet(RecordWrite),
    RecordErase {
        name: String,
        path: String,
    },
    RecordSubscribe {
        name: String,
        path: Option<String>,
    },
    RecordSubscribeMany {
        names: Vec<String>,
    },
    RecordDelete {
        name: String,
    },
    RecordHas {
        name: String,
    },
    RecordSnapshot {
        name: String,
    },
    RecordHead {
        name: String,
    },
    RecordSetData(RecordWrite),
    RecordNotify {
        names: Vec<String>,
    },
    ListGet {
        name: String,
    },
    ListSet {
        name: String,
        entries: Vec<String>,
    },
    ListAdd {
        name: String,
        entry: String,
        index: Option<usize>,
    },
    ListRemove {
        name: String,
        entry: String,
    },
    ListSubscribe {
        name: String,
    },
}

/// A write of `record-set` or `record-set-data`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RecordWrite {
    pub(super) name: String,
    pub(super) path: Option<String>,
    pub(super) data: String,
    /// Whether the reply waits for the server's acknowledgement.
    pub(super) ack: bool,
}

/// The response that a `provide` command gives to every request.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ProviderResponse {
    /// Responds with this JSON text.
    Reply(String),
    /// Responds with this error text.
    Fail(String),
    /// Rejects, so that the server tries another provider.
    Reject,
}

impl Command {
    /// Parses one command object; the failure is always `INVALID_COMMAND`.
    pub(super) fn parse(command: &Map<String, Value>) -> Result<Command, Failure> {
        let arguments = Arguments(command);
        let name = || arguments.text("name");
        let command = match arguments.text("op")?.as_str() {
            "connect" => Command::Connect {
                url: arguments.text("url")?,
            },
            "login" => Command::Login {
                auth: arguments.auth()?,
            },
            "close" => Command::Close,
            "subscribe" => Command::Subscribe { name: name()? },
            "subscribe-many" => Command::SubscribeMany {
                names: arguments.numbered_names()?,
            },
            "unsubscribe" => Command::Unsubscribe { name: name()? },
            "emit" => Command::Emit {
                name: name()?,
                data: arguments.optional_json("data"),
            },
            "listen" => Command::Listen {
                pattern: arguments.text("pattern")?,
            },
            "record-listen" => {
                arguments.text("pattern")?;
                Command::RecordListen
            }
            operation @ ("accept" | "reject") => Command::AnswerListen {
                name: name()?,
                accept: operation == "accept",
            },
            "provide" => Command::Provide {
                name: name()?,
                response: arguments.provider_response()?,
            },
            "make" => Command::Make {
                name: name()?,
                data: arguments.optional_json("data"),
            },
            "presence-get-all" => Command::PresenceGetAll,
            "presence-get" => Command::PresenceGet {
                users: arguments.strings("users")?,
            },
            "presence-subscribe" => Command::PresenceSubscribe {
                user: arguments.optional_text("user")?,
            },
            "record-get" => Command::RecordGet { name: name()? },
            "record-version" => Command::RecordVersion { name: name()? },
            "record-set" => Command::RecordSet(RecordWrite {
                name: name()?,
                path: arguments.optional_text("path")?,
                data: arguments.json("data")?,
                ack: arguments.optional_bool("ack")?.unwrap_or(true),
            }),
            "record-erase" => Command::RecordErase {
                name: name()?,
                path: arguments.text("path")?,
            },
            "record-subscribe" => Command::RecordSubscribe {
                name: name()?,
                path: arguments.optional_text("path")?,
            },
            "record-subscribe-many" => Command::RecordSubscribeMany {
                names: arguments.numbered_names()?,
            },
            "record-delete" => Command::RecordDelete { name: name()? },
            "record-has" => Command::RecordHas { name: name()? },
            "record-snapshot" => Command::RecordSnapshot { name: name()? },
            "record-head" => Command::RecordHead { name: name()? },
            "record-set-data" => Command::RecordSetData(RecordWrite {
                name: name()?,
                path: arguments.optional_text("path")?,
                data: arguments.json("data")?,
                ack: true,
            }),
            "record-notify" => Command::RecordNotify {
                names: arguments.strings("names")?,
            },
            "list-get" => Command::ListGet { name: name()? },
            "list-set" => Command::ListSet {
                name: name()?,
                entries: arguments.strings("entries")?,
            },
            "list-add" => Command::ListAdd {
                name: name()?,
                entry: arguments.text("entry")?,
                index: arguments.optional_index("index")?,
            },
            "list-remove" => Command::ListRemove {
                name: name()?,
                entry: arguments.text("entry")?,
            },
            "list-subscribe" => Command::ListSubscribe { name: name()? },
            other => return Err(Failure::invalid(format!("unknown op {other:?}"))),
        };
        Ok(command)
    }
}

/// The fields of one command object, read by their type.
#[derive(Clone, Copy)]
struct Arguments<'a>(&'a Map<String, Value>);

impl<'a> Arguments<'a> {
    /// Returns a field's value, treating JSON `null` as missing.
    fn get(self, field: &str) -> Option<&'a Value> {
        self.0.get(field).filter(|value| !value.is_null())
    }

    fn text(self, field: &str) -> Result<String, Failure> {
        self.optional_text(field)?
            .ok_or_else(|| Failure::invalid(format!("`{field}` is missing")))
    }

    fn optional_text(self, field: &str) -> Result<Option<String>, Failure> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(other) => Err(mistyped(field, "a string", other)),
        }
    }

    /// Returns a JSON payload as JSON text. Unlike other fields, a payload
    /// may be `null`, so only a missing field is missing.
    fn json(self, field: &str) -> Result<String, Failure> {
        self.optional_json(field)
            .ok_or_else(|| Failure::invalid(format!("`{field}` is missing")))
    }

    fn optional_json(self, field: &str) -> Option<String> {
        self.0.get(field).map(Value::to_string)
    }

    fn optional_bool(self, field: &str) -> Result<Option<bool>, Failure> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(other) => Err(mistyped(field, "true or false", other)),
        }
    }

    fn optional_index(self, field: &str) -> Result<Option<usize>, Failure> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        value
            .as_u64()
            .and_then(|index| usize::try_from(index).ok())
            .map(Some)
            .ok_or_else(|| mistyped(field, "an integer from 0", value))
    }

    fn strings(self, field: &str) -> Result<Vec<String>, Failure> {
        let value = self
            .get(field)
            .ok_or_else(|| Failure::invalid(format!("`{field}` is missing")))?;
        let items = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
        });
        items.ok_or_else(|| mistyped(field, "an array of strings", value))
    }

    /// Returns the authentication data of `login`, `{}` when it is missing.
    fn auth(self) -> Result<String, Failure> {
        match self.get("auth") {
            None => Ok("{}".to_owned()),
            Some(value @ Value::Object(_)) => Ok(value.to_string()),
            Some(other) => Err(mistyped("auth", "an object", other)),
        }
    }

    /// Returns the names `prefix0` up to `prefix{count-1}`.
    fn numbered_names(self) -> Result<Vec<String>, Failure> {
        let prefix = self.text("prefix")?;
        let value = self
            .get("count")
            .ok_or_else(|| Failure::invalid("`count` is missing"))?;
        let count = value
            .as_u64()
            .filter(|count| COUNT_RANGE.contains(count))
            .ok_or_else(|| mistyped("count", "an integer from 1 to 10000", value))?;
        Ok((0..count).map(|index| format!("{prefix}{index}")).collect())
    }

    /// Returns the response of `provide`, given by exactly one of `reply`,
    /// `fail` or `reject: true`.
    fn provider_response(self) -> Result<ProviderResponse, Failure> {
        let mut responses = Vec::new();
        if let Some(reply) = self.optional_json("reply") {
            responses.push(("reply", ProviderResponse::Reply(reply)));
        }
        if let Some(message) = self.optional_text("fail")? {
            responses.push(("fail", ProviderResponse::Fail(message)));
        }
        match self.optional_bool("reject")? {
            Some(true) => responses.push(("reject", ProviderResponse::Reject)),
            Some(false) => return Err(Failure::invalid("`reject` must be true when given")),
            None => {}
        }

        if responses.len() == 1 {
            return Ok(responses.remove(0).1);
        }
        let present: Vec<&str> = responses.iter().map(|(field, _)| *field).collect();
        Err(Failure::invalid(format!(
            "`provide` needs exactly one of `reply`, `fail` or `reject`, got {present:?}"
        )))
    }
}

fn mistyped(field: &str, expected: &str, value: &Value) -> Failure {
    Failure::invalid(format!("`{field}` must be {expected}, not {value}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(command: Value) -> Result<Command, Failure> {
        let Value::Object(command) = command else {
            panic!("test commands are objects");
        };
        Command::parse(&command)
    }

    #[test]
    fn numbered_names_count_from_zero() {
        let command = parse(json!({"op": "subscribe-many", "prefix": "bulk/", "count": 3}));

        assert_eq!(
            command.expect("valid command"),
            Command::SubscribeMany {
                names: vec!["bulk/0".into(), "bulk/1".into(), "bulk/2".into()]
            }
        );
    }

    #[test]
    fn count_outside_range_is_invalid() {
        for count in [json!(0), json!(10_001), json!(2.5), json!("3"), json!(-1)] {
            let failure =
                parse(json!({"op": "record-subscribe-many", "prefix": "p", "count": count}))
                    .expect_err("count out of range");
            assert_eq!(failure.code, "INVALID_COMMAND", "count {count}");
        }
    }

    #[test]
    fn provide_needs_one_response() {
        let reply = parse(json!({"op": "provide", "name": "a", "reply": null}));
        let fail = parse(json!({"op": "provide", "name": "a", "fail": "no"}));
        let reject = parse(json!({"op": "provide", "name": "a", "reject": true}));
        let none = parse(json!({"op": "provide", "name": "a"}));
        let two = parse(json!({"op": "provide", "name": "a", "reply": 1, "reject": true}));

        assert!(
            matches!(reply, Ok(Command::Provide { response: ProviderResponse::Reply(text), .. }) if text == "null")
        );
        assert!(
            matches!(fail, Ok(Command::Provide { response: ProviderResponse::Fail(text), .. }) if text == "no")
        );
        assert!(matches!(
            reject,
            Ok(Command::Provide {
                response: ProviderResponse::Reject,
                ..
            })
        ));
        assert_eq!(none.expect_err("no response").code, "INVALID_COMMAND");
        assert_eq!(two.expect_err("two responses").code, "INVALID_COMMAND");
    }

    #[test]
    fn record_set_acks_by_default() {
        let command = parse(json!({"op": "record-set", "name": "r", "data": {"a": 1}}));

        let Ok(Command::RecordSet(write)) = command else {
            panic!("record-set parses");
        };
        assert!(write.ack);
        assert_eq!(write.data, r#"{"a":1}"#);
    }

    #[test]
    fn entries_must_be_strings() {
        let failure = parse(json!({"op": "list-set", "name": "l", "entries": ["a", 1]}))
            .expect_err("mixed entries");

        assert_eq!(failure.code, "INVALID_COMMAND");
        assert!(
            failure.message.contains("array of strings"),
            "{}",
            failure.message
        );
    }
}
