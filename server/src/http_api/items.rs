//! The items of a request's `body` list, in deepstream's JSON format: one object per item
//! with a `topic`, an `action` and the fields of that action.
//!
//! | topic | action | fields |
//! |---|---|---|
//! | `event` | `emit` | `eventName`, optional `data` |
//! | `rpc` | `make` | `rpcName`, optional `data` |
//! | `record` | `read`, `head`, `delete` | `recordName` |
//! | `record` | `write` | `recordName`, `data`, optional `path` and `version` |
//! | `record` | `notify` | `recordNames` |
//! | `list` | `read`, `delete` | `listName` |
//! | `list` | `write` | `listName`, `data` (strings), optional `version` |
//! | `presence` | `query` | optional `names` |
//!
//! As in deepstream 7.0, a field that the action does not take is an error, and so is a
//! missing or empty name. Lists are records whose data is a list of strings.

use std::fmt;

use deepstream_protocol::json_path::JsonPath;
use serde_json::{Map, Value};

/// One item of a request, checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    /// Emit an event.
    EventEmit { name: String, data: Option<Value> },
    /// Make an RPC and wait for the provider's result.
    RpcMake { name: String, data: Option<Value> },
    /// Read a record's version and data.
    RecordRead { name: String },
    /// Read a record's version.
    RecordHead { name: String },
    /// Create or write a record, whole or at `path`.
    RecordWrite {
        name: String,
        data: Value,
        /// The path of a patch; `None` writes the whole record.
        path: Option<JsonPath>,
        /// The version to create, -1 for the next one.
        version: i32,
    },
    /// Delete a record.
    RecordDelete { name: String },
    /// Tell the server that records changed in the storage.
    RecordNotify { names: Vec<String> },
    /// Query who is online: everyone, or whether each named user is.
    PresenceQuery { names: Option<Vec<String>> },
}

/// The reason an item was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ItemError(String);

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The topics and actions items may name, for error messages.
const ACTIONS: &[(&str, &[&str])] = &[
    ("event", &["emit"]),
    ("rpc", &["make"]),
    ("record", &["read", "head", "write", "delete", "notify"]),
    ("list", &["read", "write", "delete"]),
    ("presence", &["query"]),
];

impl Item {
    /// Checks one element of the `body` list.
    pub(super) fn parse(value: &Value) -> Result<Item, ItemError> {
        let Value::Object(fields) = value else {
            return Err(ItemError(format!(
                "expected an object with `topic` and `action`, found {}",
                describe(value)
            )));
        };
        let topic = required_text(fields, "topic")?;
        let Some((topic, actions)) = ACTIONS.iter().find(|(name, _)| *name == topic) else {
            let topics: Vec<&str> = ACTIONS.iter().map(|(name, _)| *name).collect();
            return Err(ItemError(format!(
                "unknown topic `{topic}`; expected one of {}",
                topics.join(", ")
            )));
        };
        let action = required_text(fields, "action")?;
        if !actions.contains(&action) {
            return Err(ItemError(format!(
                "unknown action `{action}` for topic `{topic}`; expected one of {}",
                actions.join(", ")
            )));
        }
        let item = Fields {
            fields,
            topic,
            action,
        };

        match (*topic, action) {
            ("event", _) => item.event_emit(),
            ("rpc", _) => item.rpc_make(),
            ("record" | "list", "write") => item.record_write(),
            ("record", "notify") => item.record_notify(),
            ("record" | "list", _) => item.named_record(),
            ("presence", _) => item.presence_query(),
            _ => unreachable!("every topic and action of ACTIONS is matched above"),
        }
    }
}

/// The fields of one item whose topic and action are known.
struct Fields<'a> {
    fields: &'a Map<String, Value>,
    topic: &'a str,
    action: &'a str,
}

impl Fields<'_> {
    fn event_emit(&self) -> Result<Item, ItemError> {
        self.allow_only(&["eventName", "data"])?;
        Ok(Item::EventEmit {
            name: self.name("eventName")?,
            data: self.fields.get("data").cloned(),
        })
    }

    fn rpc_make(&self) -> Result<Item, ItemError> {
        self.allow_only(&["rpcName", "data"])?;
        Ok(Item::RpcMake {
            name: self.name("rpcName")?,
            data: self.fields.get("data").cloned(),
        })
    }

    /// Parses a read, head or delete of a record or a list.
    fn named_record(&self) -> Result<Item, ItemError> {
        let key = self.record_key();
        self.allow_only(&[key])?;
        let name = self.name(key)?;
        Ok(match self.action {
            "read" => Item::RecordRead { name },
            "head" => Item::RecordHead { name },
            _ => Item::RecordDelete { name },
        })
    }

    fn record_write(&self) -> Result<Item, ItemError> {
        let key = self.record_key();
        let is_list = self.topic == "list";
        if is_list {
            self.allow_only(&[key, "data", "version"])?;
        } else {
            self.allow_only(&[key, "data", "path", "version"])?;
        }
        let name = self.name(key)?;
        let version = self.version()?;
        let Some(data) = self.fields.get("data") else {
            return Err(self.missing("data"));
        };

        let path = self.path()?;
        if is_list {
            let is_strings = data
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string));
            if !is_strings {
                return Err(self.invalid("data", "a list of strings", data));
            }
        } else if path.is_none() && !(data.is_object() || data.is_array()) {
            return Err(self.invalid(
                "data",
                "an object or a list (or send a `path` to write one value)",
                data,
            ));
        }
        Ok(Item::RecordWrite {
            name,
            data: data.clone(),
            path,
            version,
        })
    }

    fn record_notify(&self) -> Result<Item, ItemError> {
        self.allow_only(&["recordNames"])?;
        let names = self
            .names("recordNames")?
            .ok_or_else(|| self.missing("recordNames"))?;
        Ok(Item::RecordNotify { names })
    }

    fn presence_query(&self) -> Result<Item, ItemError> {
        self.allow_only(&["names"])?;
        Ok(Item::PresenceQuery {
            names: self.names("names")?,
        })
    }

    /// Returns the field that names the record: `recordName`, or `listName` for lists.
    fn record_key(&self) -> &'static str {
        if self.topic == "list" {
            "listName"
        } else {
            "recordName"
        }
    }

    /// Rejects fields other than `topic`, `action` and `allowed`.
    fn allow_only(&self, allowed: &[&str]) -> Result<(), ItemError> {
        let unknown = self.fields.keys().find(|key| {
            !matches!(key.as_str(), "topic" | "action") && !allowed.contains(&key.as_str())
        });
        match unknown {
            Some(key) => Err(ItemError(format!(
                "unknown field `{key}` for {} {}; expected only topic, action, {}",
                self.topic,
                self.action,
                allowed.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// Reads a required, non-empty name.
    fn name(&self, key: &str) -> Result<String, ItemError> {
        match self.fields.get(key) {
            None => Err(self.missing(key)),
            Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
            Some(other) => Err(self.invalid(key, "a non-empty string", other)),
        }
    }

    /// Reads an optional list of non-empty names.
    fn names(&self, key: &str) -> Result<Option<Vec<String>>, ItemError> {
        let Some(value) = self.fields.get(key) else {
            return Ok(None);
        };
        let expected = "a list of non-empty strings";
        let Value::Array(items) = value else {
            return Err(self.invalid(key, expected, value));
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(name) if !name.is_empty() => Ok(name.clone()),
                other => Err(self.invalid(key, expected, other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Reads the optional `path` of a write. An empty path writes the whole record, as in
    /// deepstream.
    fn path(&self) -> Result<Option<JsonPath>, ItemError> {
        let text = match self.fields.get("path") {
            None => return Ok(None),
            Some(Value::String(text)) if text.is_empty() => return Ok(None),
            Some(Value::String(text)) => text,
            Some(other) => return Err(self.invalid("path", "a string", other)),
        };
        match JsonPath::parse(text) {
            Ok(path) if !path.tokens().is_empty() => Ok(Some(path)),
            Ok(_) => Err(ItemError(format!(
                "invalid `path` for {} {}: `{text}` names no field; expected a path such as `address.city` or `items[0]`",
                self.topic, self.action
            ))),
            Err(error) => Err(ItemError(format!(
                "invalid `path` for {} {}: {error}",
                self.topic, self.action
            ))),
        }
    }

    /// Reads the optional `version`: a whole number from -1, where -1 (and 0, as in
    /// deepstream) writes the next version.
    fn version(&self) -> Result<i32, ItemError> {
        let Some(value) = self.fields.get("version") else {
            return Ok(-1);
        };
        let expected = "a whole number from -1 to 2147483647";
        match value.as_i64().map(i32::try_from) {
            Some(Ok(0)) => Ok(-1),
            Some(Ok(version)) if version >= -1 => Ok(version),
            _ => Err(self.invalid("version", expected, value)),
        }
    }

    fn missing(&self, key: &str) -> ItemError {
        ItemError(format!(
            "missing field `{key}`, which {} {} requires",
            self.topic, self.action
        ))
    }

    fn invalid(&self, key: &str, expected: &str, found: &Value) -> ItemError {
        ItemError(format!(
            "invalid `{key}` for {} {}: expected {expected}, found {}",
            self.topic,
            self.action,
            describe(found)
        ))
    }
}

/// Reads a required string field of an item whose topic is not known yet.
fn required_text<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<&'a str, ItemError> {
    match fields.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(ItemError(format!(
            "invalid `{key}`: expected a string, found {}",
            describe(other)
        ))),
        None => Err(ItemError(format!("missing field `{key}`"))),
    }
}

/// Describes a JSON value's type for error messages, such as "a number (5)".
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(value) => format!("the boolean {value}"),
        Value::Number(value) => format!("the number {value}"),
        Value::String(value) if value.is_empty() => "an empty string".to_owned(),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: &Value) -> Result<Item, String> {
        Item::parse(value).map_err(|error| error.to_string())
    }

    #[test]
    fn each_action_parses() {
        let cases = [
            (
                json!({"topic": "event", "action": "emit", "eventName": "news", "data": [1]}),
                Item::EventEmit {
                    name: "news".into(),
                    data: Some(json!([1])),
                },
            ),
            (
                json!({"topic": "rpc", "action": "make", "rpcName": "add"}),
                Item::RpcMake {
                    name: "add".into(),
                    data: None,
                },
            ),
            (
                json!({"topic": "record", "action": "read", "recordName": "a"}),
                Item::RecordRead { name: "a".into() },
            ),
            (
                json!({"topic": "record", "action": "head", "recordName": "a"}),
                Item::RecordHead { name: "a".into() },
            ),
            (
                json!({"topic": "record", "action": "delete", "recordName": "a"}),
                Item::RecordDelete { name: "a".into() },
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a", "data": {"x": 1}, "version": 3}),
                Item::RecordWrite {
                    name: "a".into(),
                    data: json!({"x": 1}),
                    path: None,
                    version: 3,
                },
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a", "path": "x.y", "data": 5}),
                Item::RecordWrite {
                    name: "a".into(),
                    data: json!(5),
                    path: Some(JsonPath::parse("x.y").unwrap()),
                    version: -1,
                },
            ),
            (
                json!({"topic": "record", "action": "notify", "recordNames": ["a", "b"]}),
                Item::RecordNotify {
                    names: vec!["a".into(), "b".into()],
                },
            ),
            (
                json!({"topic": "list", "action": "write", "listName": "l", "data": ["a"]}),
                Item::RecordWrite {
                    name: "l".into(),
                    data: json!(["a"]),
                    path: None,
                    version: -1,
                },
            ),
            (
                json!({"topic": "list", "action": "read", "listName": "l"}),
                Item::RecordRead { name: "l".into() },
            ),
            (
                json!({"topic": "presence", "action": "query"}),
                Item::PresenceQuery { names: None },
            ),
            (
                json!({"topic": "presence", "action": "query", "names": ["ada"]}),
                Item::PresenceQuery {
                    names: Some(vec!["ada".into()]),
                },
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(&value), Ok(expected), "{value}");
        }
    }

    #[test]
    fn version_zero_means_next() {
        let item = parse(
            &json!({"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": 0}),
        );
        assert!(
            matches!(item, Ok(Item::RecordWrite { version: -1, .. })),
            "{item:?}"
        );
    }

    #[test]
    fn invalid_items_name_the_problem() {
        let cases = [
            (
                json!(5),
                "expected an object with `topic` and `action`, found the number 5",
            ),
            (json!({"action": "emit"}), "missing field `topic`"),
            (
                json!({"topic": 1}),
                "invalid `topic`: expected a string, found the number 1",
            ),
            (
                json!({"topic": "mail", "action": "send"}),
                "unknown topic `mail`; expected one of event, rpc, record, list, presence",
            ),
            (json!({"topic": "event"}), "missing field `action`"),
            (
                json!({"topic": "event", "action": "subscribe", "eventName": "a"}),
                "unknown action `subscribe` for topic `event`; expected one of emit",
            ),
            (
                json!({"topic": "event", "action": "emit"}),
                "missing field `eventName`, which event emit requires",
            ),
            (
                json!({"topic": "event", "action": "emit", "eventName": ""}),
                "invalid `eventName` for event emit: expected a non-empty string, found an empty string",
            ),
            (
                json!({"topic": "rpc", "action": "make", "rpcName": 7}),
                "invalid `rpcName` for rpc make: expected a non-empty string, found the number 7",
            ),
            (
                json!({"topic": "record", "action": "read", "recordName": "a", "data": {}}),
                "unknown field `data` for record read; expected only topic, action, recordName",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a"}),
                "missing field `data`, which record write requires",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a", "data": 5}),
                "invalid `data` for record write: expected an object or a list (or send a `path` to write one value), found the number 5",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": -2}),
                "invalid `version` for record write: expected a whole number from -1 to 2147483647, found the number -2",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": 1.5}),
                "invalid `version` for record write: expected a whole number from -1 to 2147483647, found the number 1.5",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a", "data": {}, "path": 3}),
                "invalid `path` for record write: expected a string, found the number 3",
            ),
            (
                json!({"topic": "record", "action": "write", "recordName": "a", "data": 1, "path": " . "}),
                "invalid `path` for record write: ` . ` names no field; expected a path such as `address.city` or `items[0]`",
            ),
            (
                json!({"topic": "record", "action": "notify"}),
                "missing field `recordNames`, which record notify requires",
            ),
            (
                json!({"topic": "record", "action": "notify", "recordNames": ["a", ""]}),
                "invalid `recordNames` for record notify: expected a list of non-empty strings, found an empty string",
            ),
            (
                json!({"topic": "list", "action": "write", "listName": "l", "data": [1]}),
                "invalid `data` for list write: expected a list of strings, found a list",
            ),
            (
                json!({"topic": "list", "action": "write", "listName": "l", "data": [], "path": "x"}),
                "unknown field `path` for list write; expected only topic, action, listName, data, version",
            ),
            (
                json!({"topic": "presence", "action": "query", "names": "ada"}),
                "invalid `names` for presence query: expected a list of non-empty strings, found a string",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(&value), Err(expected.to_owned()), "{value}");
        }
    }
}
