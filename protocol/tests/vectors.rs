//! Frames encoded by the official `@deepstream/protobuf` 1.0 package, decoded and
//! re-encoded by this crate.
//!
//! `vectors/deepstream-protobuf-1.0.json` is written by `vectors/generate.mjs`. Each
//! vector contains the JavaScript object that was given to the official encoder and the
//! frame it produced. A vector passes when the frame decodes to exactly that object,
//! every field included, and when re-encoding the decoded message gives the same bytes.
//! Vectors marked `decode_only` are only decoded. Most of them set a property to its
//! default value, which protobufjs writes and prost omits. One has several map entries,
//! whose order our encoder does not fix.
//!
//! There is one test per topic. A failure lists every failing vector by its description.

use std::collections::BTreeMap;

use bytes::Bytes;
use deepstream_protocol::{DecodeError, Topic, TopicMessage};
use serde::Deserialize;
use serde_json::{Map, Value};

const VECTORS_JSON: &str = include_str!("vectors/deepstream-protobuf-1.0.json");

/// One entry of the vectors file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    description: String,
    topic: i32,
    /// The object given to `getMessage`, with protobufjs property names.
    message: Map<String, Value>,
    /// `getMessage` was called with `isAck = true`, which sets `isAck` on the frame.
    #[serde(default)]
    is_ack_argument: bool,
    /// The JSON text that `getMessage` made of `message.requestorData`.
    #[serde(default)]
    requestor_data_text: Option<String>,
    #[serde(default)]
    decode_only: bool,
    /// Why the vector is `decode_only`.
    #[serde(default)]
    note: Option<String>,
    frame_hex: String,
}

/// A decoded field in the shape that the JavaScript object gives it.
#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    Int(i64),
    /// A field with explicit presence, such as a record's `version`.
    OptionalInt(Option<i64>),
    Bool(bool),
    /// A string field, or a `bytes` payload read as UTF-8 text.
    Text(String),
    Texts(Vec<String>),
    Versions(BTreeMap<String, i64>),
}

impl FieldValue {
    fn default_of_same_kind(&self) -> FieldValue {
        match self {
            FieldValue::Int(_) => FieldValue::Int(0),
            FieldValue::OptionalInt(_) => FieldValue::OptionalInt(None),
            FieldValue::Bool(_) => FieldValue::Bool(false),
            FieldValue::Text(_) => FieldValue::Text(String::new()),
            FieldValue::Texts(_) => FieldValue::Texts(Vec::new()),
            FieldValue::Versions(_) => FieldValue::Versions(BTreeMap::new()),
        }
    }

    /// Converts the JavaScript property to the kind of `self`. An absent or null
    /// property means the default, because protobufjs writes nothing for it.
    fn expected_from(&self, property: Option<&Value>) -> Result<FieldValue, String> {
        let Some(value) = property.filter(|value| !value.is_null()) else {
            return Ok(self.default_of_same_kind());
        };
        let wrong_kind =
            || format!("JavaScript value {value} does not fit a field of kind {self:?}");
        let expected = match self {
            FieldValue::Int(_) => FieldValue::Int(value.as_i64().ok_or_else(wrong_kind)?),
            FieldValue::OptionalInt(_) => {
                FieldValue::OptionalInt(Some(value.as_i64().ok_or_else(wrong_kind)?))
            }
            FieldValue::Bool(_) => FieldValue::Bool(value.as_bool().ok_or_else(wrong_kind)?),
            FieldValue::Text(_) => {
                FieldValue::Text(value.as_str().ok_or_else(wrong_kind)?.to_owned())
            }
            FieldValue::Texts(_) => {
                let items = value.as_array().ok_or_else(wrong_kind)?;
                let texts = items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(wrong_kind)?;
                FieldValue::Texts(texts)
            }
            FieldValue::Versions(_) => {
                let entries = value.as_object().ok_or_else(wrong_kind)?;
                let versions = entries
                    .iter()
                    .map(|(name, version)| version.as_i64().map(|version| (name.clone(), version)))
                    .collect::<Option<BTreeMap<_, _>>>()
                    .ok_or_else(wrong_kind)?;
                FieldValue::Versions(versions)
            }
        };
        Ok(expected)
    }
}

fn load_vectors() -> Vec<Vector> {
    serde_json::from_str(VECTORS_JSON)
        .expect("vectors/deepstream-protobuf-1.0.json has the shape of Vector")
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.is_ascii() {
        return Err("hex string contains non-ASCII characters".to_owned());
    }
    if hex.len() % 2 != 0 {
        return Err(format!(
            "hex string has an odd number of digits ({})",
            hex.len()
        ));
    }
    (0..hex.len())
        .step_by(2)
        .map(|offset| {
            let pair = &hex[offset..offset + 2];
            // from_str_radix alone would also accept a sign, as in "+f".
            if !pair.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(format!("invalid hex byte {pair:?} at offset {offset}"));
            }
            u8::from_str_radix(pair, 16)
                .map_err(|error| format!("invalid hex byte {pair:?} at offset {offset}: {error}"))
        })
        .collect()
}

fn frame_of(vector: &Vector) -> Bytes {
    let frame = decode_hex(&vector.frame_hex)
        .unwrap_or_else(|error| panic!("{}: invalid frame_hex: {error}", vector.description));
    Bytes::from(frame)
}

fn text(payload: &Bytes) -> Result<FieldValue, String> {
    let text =
        std::str::from_utf8(payload).map_err(|error| format!("payload is not UTF-8: {error}"))?;
    Ok(FieldValue::Text(text.to_owned()))
}

fn int(value: i32) -> FieldValue {
    FieldValue::Int(value.into())
}

fn string(value: &str) -> FieldValue {
    FieldValue::Text(value.to_owned())
}

fn strings(values: &[String]) -> FieldValue {
    FieldValue::Texts(values.to_vec())
}

/// Lists every field of the decoded message under its protobufjs property name.
fn fields(message: &TopicMessage) -> Result<Vec<(&'static str, FieldValue)>, String> {
    use FieldValue::{Bool, OptionalInt, Versions};

    let fields = match message {
        TopicMessage::Parser(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("originalTOPIC", int(m.original_topic)),
            ("originalAction", int(m.original_action)),
        ],
        TopicMessage::Connection(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
            ("url", string(&m.url)),
            ("protocolVersion", string(&m.protocol_version)),
            ("sdkVersion", string(&m.sdk_version)),
            ("sdkType", string(&m.sdk_type)),
        ],
        TopicMessage::Auth(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
        ],
        TopicMessage::Event(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("correlationId", string(&m.correlation_id)),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
            ("name", string(&m.name)),
            ("names", strings(&m.names)),
            ("subscription", string(&m.subscription)),
            ("originalTOPIC", int(m.original_topic)),
            ("originalAction", int(m.original_action)),
        ],
        TopicMessage::Record(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("correlationId", string(&m.correlation_id)),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
            ("name", string(&m.name)),
            ("names", strings(&m.names)),
            ("pattern", string(&m.pattern)),
            ("subscription", string(&m.subscription)),
            ("originalAction", int(m.original_action)),
            ("isWriteAck", Bool(m.is_write_ack)),
            ("path", string(&m.path)),
            ("version", OptionalInt(m.version.map(i64::from))),
            (
                "versions",
                Versions(
                    m.versions
                        .iter()
                        .map(|(name, version)| (name.clone(), i64::from(*version)))
                        .collect(),
                ),
            ),
        ],
        TopicMessage::Rpc(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("correlationId", string(&m.correlation_id)),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
            ("names", strings(&m.names)),
            ("name", string(&m.name)),
            ("originalAction", int(m.original_action)),
            ("requestorName", string(&m.requestor_name)),
            ("requestorData", text(&m.requestor_data)?),
        ],
        TopicMessage::Presence(m) => vec![
            ("action", int(m.action)),
            ("originalTOPIC", int(m.original_topic)),
            ("originalAction", int(m.original_action)),
            ("data", text(&m.data)?),
            ("correlationId", string(&m.correlation_id)),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
            ("name", string(&m.name)),
            ("names", strings(&m.names)),
        ],
        TopicMessage::Monitoring(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("correlationId", string(&m.correlation_id)),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
        ],
        TopicMessage::Cluster(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("isError", Bool(m.is_error)),
            ("isAck", Bool(m.is_ack)),
            ("leaderScore", int(m.leader_score)),
            ("role", string(&m.role)),
        ],
        TopicMessage::Lock(m) => vec![("action", int(m.action)), ("locked", Bool(m.locked))],
        TopicMessage::StateRegistry(m) => vec![
            ("action", int(m.action)),
            ("data", text(&m.data)?),
            ("isError", Bool(m.is_error)),
            ("checksum", int(m.checksum)),
            ("fullState", strings(&m.full_state)),
            ("serverName", string(&m.server_name)),
            ("registryTOPIC", int(m.registry_topic)),
        ],
        other => return Err(format!("no field table for topic {:?}", other.topic())),
    };
    Ok(fields)
}

/// Returns the properties that the frame carries: the JavaScript object with the
/// changes `getMessage` makes before encoding.
fn encoded_properties(vector: &Vector) -> Result<Map<String, Value>, String> {
    let mut properties = vector.message.clone();
    if vector.is_ack_argument {
        properties.insert("isAck".to_owned(), Value::Bool(true));
    }

    match (properties.get("requestorData"), &vector.requestor_data_text) {
        (None, None) => {}
        (Some(original), Some(text)) => {
            let reparsed: Value = serde_json::from_str(text)
                .map_err(|error| format!("requestor_data_text is not JSON: {error}"))?;
            if &reparsed != original {
                return Err(format!(
                    "requestor_data_text {text} does not encode requestorData {original}"
                ));
            }
            properties.insert("requestorData".to_owned(), Value::String(text.clone()));
        }
        (Some(_), None) => {
            return Err("requestorData is set but requestor_data_text is missing".to_owned());
        }
        (None, Some(_)) => {
            return Err("requestor_data_text is set but requestorData is missing".to_owned());
        }
    }
    Ok(properties)
}

/// Returns every way in which `vector` and our decoding or encoding of it disagree.
fn problems(vector: &Vector) -> Vec<String> {
    let mut problems = Vec::new();

    let frame = match decode_hex(&vector.frame_hex) {
        Ok(frame) => Bytes::from(frame),
        Err(error) => return vec![format!("invalid frame_hex: {error}")],
    };
    let decoded = match TopicMessage::decode_frame(frame.clone()) {
        Ok(decoded) => decoded,
        Err(error) => return vec![format!("decode_frame failed: {error}")],
    };

    if decoded.topic() as i32 != vector.topic {
        problems.push(format!(
            "decoded topic {:?}, vector topic {}",
            decoded.topic(),
            vector.topic
        ));
    }
    if vector.message.get("topic").and_then(Value::as_i64) != Some(vector.topic.into()) {
        problems.push(format!(
            "message.topic {:?} differs from vector topic {}",
            vector.message.get("topic"),
            vector.topic
        ));
    }

    match (encoded_properties(vector), fields(&decoded)) {
        (Ok(properties), Ok(fields)) => problems.extend(field_problems(&properties, &fields)),
        (Err(error), _) | (_, Err(error)) => problems.push(error),
    }

    let reencoded = decoded.encode_frame();
    if vector.decode_only {
        if TopicMessage::decode_frame(reencoded).as_ref() != Ok(&decoded) {
            problems.push("re-encoded frame does not decode to the same message".to_owned());
        }
    } else if reencoded != frame {
        problems.push(format!(
            "re-encoded frame differs:\n    ours:   {}\n    theirs: {}",
            to_hex(&reencoded),
            vector.frame_hex
        ));
    }
    problems
}

fn field_problems(
    properties: &Map<String, Value>,
    fields: &[(&'static str, FieldValue)],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, decoded) in fields {
        match decoded.expected_from(properties.get(*name)) {
            Ok(expected) if &expected == decoded => {}
            Ok(expected) => problems.push(format!(
                "field {name}: JavaScript gave {expected:?}, we decoded {decoded:?}"
            )),
            Err(error) => problems.push(format!("field {name}: {error}")),
        }
    }
    for property in properties.keys() {
        let known = property == "topic" || fields.iter().any(|(name, _)| name == property);
        if !known {
            problems.push(format!(
                "property {property} has no field in our message, so it was not checked"
            ));
        }
    }
    problems
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn check_topic(topic: Topic) {
    let vectors = load_vectors();
    let selected: Vec<&Vector> = vectors
        .iter()
        .filter(|vector| vector.topic == topic as i32)
        .collect();
    assert!(!selected.is_empty(), "no vectors for topic {topic:?}");

    let failures: Vec<String> = selected
        .iter()
        .flat_map(|vector| {
            problems(vector)
                .into_iter()
                .map(move |problem| format!("[{}] {problem}", vector.description))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} problems in the {} {topic:?} vectors:\n{}",
        failures.len(),
        selected.len(),
        failures.join("\n")
    );
}

/// Returns the frames that `docs/protocol.md` quotes in hex, each as the description
/// from its `<!-- frame: DESCRIPTION -->` marker and the hex digits of the code block
/// after it. On each line of the block, the hex bytes come first and an annotation may
/// follow them.
fn doc_frames(markdown: &str) -> Result<Vec<(String, String)>, String> {
    let mut frames = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let marker = line
            .trim()
            .strip_prefix("<!-- frame: ")
            .and_then(|rest| rest.strip_suffix(" -->"));
        let Some(description) = marker else {
            continue;
        };

        let fence = lines.next().unwrap_or_default();
        if !fence.trim_start().starts_with("```") {
            return Err(format!(
                "marker {description:?} is not followed by a code block"
            ));
        }

        let mut hex = String::new();
        loop {
            let Some(line) = lines.next() else {
                return Err(format!(
                    "code block after marker {description:?} is not closed"
                ));
            };
            if line.trim_start().starts_with("```") {
                break;
            }
            let bytes = line.split_whitespace().take_while(|token| {
                token.len() == 2 && token.chars().all(|c| c.is_ascii_hexdigit())
            });
            bytes.for_each(|byte| hex.push_str(byte));
        }
        frames.push((description.to_owned(), hex));
    }
    Ok(frames)
}

fn vector_named(description: &str) -> Vector {
    load_vectors()
        .into_iter()
        .find(|vector| vector.description == description)
        .unwrap_or_else(|| panic!("no vector named {description:?}"))
}

#[test]
fn parser_vectors_match() {
    check_topic(Topic::Parser);
}

#[test]
fn connection_vectors_match() {
    check_topic(Topic::Connection);
}

#[test]
fn auth_vectors_match() {
    check_topic(Topic::Auth);
}

#[test]
fn event_vectors_match() {
    check_topic(Topic::Event);
}

#[test]
fn record_vectors_match() {
    check_topic(Topic::Record);
}

#[test]
fn rpc_vectors_match() {
    check_topic(Topic::Rpc);
}

#[test]
fn presence_vectors_match() {
    check_topic(Topic::Presence);
}

#[test]
fn monitoring_vectors_match() {
    check_topic(Topic::Monitoring);
}

#[test]
fn cluster_vectors_match() {
    check_topic(Topic::Cluster);
}

#[test]
fn lock_vectors_match() {
    check_topic(Topic::Lock);
}

#[test]
fn state_registry_vectors_match() {
    check_topic(Topic::StateRegistry);
}

#[test]
fn vectors_cover_every_topic() {
    let vectors = load_vectors();
    let checked_topics = [
        Topic::Parser,
        Topic::Connection,
        Topic::Auth,
        Topic::Event,
        Topic::Record,
        Topic::Rpc,
        Topic::Presence,
        Topic::Monitoring,
        Topic::Cluster,
        Topic::Lock,
        Topic::StateRegistry,
    ];
    for vector in &vectors {
        assert!(
            checked_topics
                .iter()
                .any(|topic| *topic as i32 == vector.topic),
            "[{}] topic {} has no test, so this vector is never checked",
            vector.description,
            vector.topic
        );
    }

    for topic in checked_topics {
        let count = vectors
            .iter()
            .filter(|vector| vector.topic == topic as i32)
            .count();
        assert!(count >= 1, "no vector for topic {topic:?}");
    }

    let main_topics = [
        Topic::Parser,
        Topic::Connection,
        Topic::Auth,
        Topic::Event,
        Topic::Record,
        Topic::Rpc,
        Topic::Presence,
    ];
    for topic in main_topics {
        let byte_compared = vectors
            .iter()
            .filter(|vector| vector.topic == topic as i32 && !vector.decode_only)
            .count();
        assert!(
            byte_compared >= 8,
            "only {byte_compared} byte-compared vectors for topic {topic:?}"
        );
    }
}

#[test]
fn vectors_have_unique_descriptions_and_notes() {
    let vectors = load_vectors();
    let mut seen = std::collections::BTreeSet::new();
    for vector in &vectors {
        assert!(
            !vector.description.trim().is_empty(),
            "a vector has an empty description"
        );
        assert!(
            seen.insert(vector.description.as_str()),
            "duplicate description {:?}",
            vector.description
        );
        if vector.decode_only {
            assert!(
                vector.note.is_some(),
                "[{}] decode_only without a note",
                vector.description
            );
        }
    }
}

#[test]
fn vectors_include_required_cases() {
    let vectors = load_vectors();
    let has = |property: &str, accept: &dyn Fn(&Value) -> bool| {
        vectors
            .iter()
            .filter(|vector| !vector.decode_only)
            .any(|vector| vector.message.get(property).is_some_and(accept))
    };

    assert!(
        has("names", &|value| value
            .as_array()
            .is_some_and(|names| names.len() > 1)),
        "a names array"
    );
    assert!(
        has("correlationId", &|value| value.is_string()),
        "a correlation id"
    );
    assert!(
        has("data", &|value| value
            .as_str()
            .is_some_and(|data| !data.is_ascii())),
        "non-ASCII data"
    );
    assert!(
        has("isError", &|value| value == &Value::Bool(true)),
        "isError"
    );
    assert!(
        has("isAck", &|value| value == &Value::Bool(true)),
        "isAck set on the object"
    );
    assert!(
        vectors.iter().any(|vector| vector.is_ack_argument),
        "isAck passed to getMessage"
    );
    assert!(
        has("originalAction", &|value| value.is_number()),
        "originalAction"
    );
    assert!(
        has("version", &|value| value.as_i64() == Some(0)),
        "record version 0"
    );
    assert!(
        has("version", &|value| value
            .as_i64()
            .is_some_and(|version| version > 0)),
        "positive record version"
    );
    assert!(
        has("versions", &|value| value.is_object()),
        "a versions map"
    );
    assert!(
        has("requestorName", &|value| value.is_string()),
        "requestorName"
    );
    assert!(
        has("requestorData", &|value| value.is_object()),
        "requestorData"
    );
    assert!(
        vectors.iter().any(|vector| vector.decode_only),
        "a decode_only vector"
    );
}

#[test]
fn truncated_vector_frames_are_rejected() {
    for vector in load_vectors() {
        let frame = frame_of(&vector);
        let truncated = frame.slice(..frame.len() - 1);
        let result = TopicMessage::decode_frame(truncated);
        assert!(
            matches!(result, Err(DecodeError::LengthExceedsFrame { .. })),
            "[{}] truncated frame gave {result:?}",
            vector.description
        );
    }
}

#[test]
fn vector_frames_with_trailing_byte_are_rejected() {
    for vector in load_vectors() {
        let mut frame = frame_of(&vector).to_vec();
        frame.push(0);
        let result = TopicMessage::decode_frame(Bytes::from(frame));
        assert_eq!(
            result,
            Err(DecodeError::TrailingBytes { count: 1 }),
            "[{}]",
            vector.description
        );
    }
}

#[test]
fn checker_reports_changed_name() {
    let mut vector = vector_named("event emit with string data");
    vector
        .message
        .insert("name".to_owned(), Value::from("chat/other"));
    let problems = problems(&vector);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("field name:"), "{problems:?}");
}

#[test]
fn checker_reports_changed_data_text() {
    let mut vector = vector_named("event emit with non-ASCII data");
    vector
        .message
        .insert("data".to_owned(), Value::from(r#"{"text":"hello"}"#));
    let problems = problems(&vector);
    assert!(
        problems
            .iter()
            .any(|problem| problem.starts_with("field data:")),
        "{problems:?}"
    );
}

#[test]
fn checker_reports_field_missing_from_object() {
    let mut vector = vector_named("rpc request from client");
    vector.message.remove("correlationId");
    let problems = problems(&vector);
    assert!(
        problems
            .iter()
            .any(|problem| problem.starts_with("field correlationId:")),
        "{problems:?}"
    );
}

#[test]
fn checker_reports_unknown_property() {
    let mut vector = vector_named("presence join");
    vector.message.insert("nmae".to_owned(), Value::from("ada"));
    let problems = problems(&vector);
    assert!(
        problems
            .iter()
            .any(|problem| problem.starts_with("property nmae ")),
        "{problems:?}"
    );
}

#[test]
fn checker_reports_wrong_requestor_data_text() {
    let mut vector = vector_named("rpc request forwarded with requestor name and data");
    vector.requestor_data_text = Some(r#"{"role":"guest"}"#.to_owned());
    let problems = problems(&vector);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("does not encode requestorData")),
        "{problems:?}"
    );
}

#[test]
fn checker_reports_ack_flag_mismatch() {
    let mut vector = vector_named("event subscribe ack");
    vector.is_ack_argument = false;
    let problems = problems(&vector);
    assert!(
        problems
            .iter()
            .any(|problem| problem.starts_with("field isAck:")),
        "{problems:?}"
    );
}

#[test]
fn explicit_defaults_change_bytes() {
    // protobufjs writes isAck = false and isError = false, and prost leaves them out.
    let mut vector = vector_named("connection ping with explicit false flags");
    assert!(vector.decode_only);
    vector.decode_only = false;
    let problems = problems(&vector);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("re-encoded frame differs"),
        "{problems:?}"
    );
}

#[test]
fn decode_only_vectors_differ_in_bytes() {
    // A decode_only vector whose bytes we reproduce exactly should be byte-compared.
    // Vectors with several map entries are skipped, because our HashMap may by chance
    // re-encode them in the order protobufjs used.
    for vector in load_vectors()
        .into_iter()
        .filter(|vector| vector.decode_only)
    {
        let has_several_versions = vector
            .message
            .get("versions")
            .and_then(Value::as_object)
            .is_some_and(|versions| versions.len() > 1);
        if has_several_versions {
            continue;
        }
        let frame = frame_of(&vector);
        let decoded =
            TopicMessage::decode_frame(frame.clone()).expect("decode_only vectors decode");
        assert_ne!(
            decoded.encode_frame(),
            frame,
            "[{}] re-encodes byte for byte",
            vector.description
        );
    }
}

#[test]
fn invalid_frame_hex_is_reported() {
    let mut vector = vector_named("connection ping");
    vector.frame_hex = "0a1".to_owned();
    assert_eq!(
        problems(&vector),
        vec!["invalid frame_hex: hex string has an odd number of digits (3)".to_owned()]
    );

    vector.frame_hex = "+f".to_owned();
    assert_eq!(
        problems(&vector),
        vec!["invalid frame_hex: invalid hex byte \"+f\" at offset 0".to_owned()]
    );

    vector.frame_hex = "zz".to_owned();
    let problems = problems(&vector);
    assert!(
        problems[0].starts_with("invalid frame_hex: invalid hex byte \"zz\""),
        "{problems:?}"
    );
}

#[test]
fn undecodable_frame_is_reported() {
    let mut vector = vector_named("connection ping");
    vector.frame_hex = "0510021a0108".to_owned();
    let problems = problems(&vector);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("decode_frame failed:"),
        "{problems:?}"
    );
}

#[test]
fn doc_frames_reads_annotated_blocks() {
    let markdown =
        "text\n<!-- frame: demo -->\n```text\n0a 1B    field 1 (ab cd)\n   ff\n```\nmore\n";
    assert_eq!(
        doc_frames(markdown),
        Ok(vec![("demo".to_owned(), "0a1Bff".to_owned())])
    );
    assert!(doc_frames("<!-- frame: demo -->\nno block").is_err());
    assert!(doc_frames("<!-- frame: demo -->\n```text\n0a").is_err());
}

#[test]
fn protocol_doc_frames_match_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let markdown =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    let frames = doc_frames(&markdown).unwrap_or_else(|error| panic!("{path}: {error}"));

    for required in [
        "connection challenge from the JavaScript client",
        "auth request with credentials",
        "event emit with string data",
    ] {
        assert!(
            frames
                .iter()
                .any(|(description, _)| description == required),
            "{path} no longer quotes the frame {required:?}"
        );
    }
    for (description, hex) in &frames {
        let vector = vector_named(description);
        assert_eq!(
            hex.to_ascii_lowercase(),
            vector.frame_hex,
            "{path} quotes the frame {description:?} wrongly"
        );
    }
}
