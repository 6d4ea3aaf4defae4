//! Paths into a record's JSON document, as `PATCH` and `ERASE` messages carry them.
//!
//! A path such as `user.name`, `pets[2]` or `a.b[0].c` names a place inside a record.
//! A `PATCH` sets a value there and an `ERASE` removes it. The official JavaScript
//! client (`@deepstream/client` 7.x, `src/record/json-path.ts`) applies every patch
//! and erase it receives, so the server must compute exactly the same document. This
//! module follows that client's rules. Where the client throws or silently produces a
//! document that does not contain what the path asked for, [`JsonPath::set`] and
//! [`JsonPath::erase`] return a [`PathError`] and leave the document unchanged.
//!
//! Parsing follows the client's tokenizer:
//!
//! - The path is split at every `.`. Each part is trimmed of the whitespace that
//!   JavaScript's `String.prototype.trim` removes, and empty parts are skipped, so
//!   `" a . b "` and `"a..b"` both mean `a.b`.
//! - A part is then split at every `[` and `]`. The first piece is always an object key,
//!   even when it is empty: `"[0]"` is the key `""` followed by index 0. Every later
//!   non-empty piece is an array index, so `"a[1][2]"` and `"a[1]2"` both mean `a`, 1, 2,
//!   and `"a[]"` means `a`.
//! - An index is decimal digits with optional surrounding whitespace, at most
//!   [`MAX_INDEX`]. The client converts the piece with JavaScript's `Number()`, which
//!   also accepts forms such as `0x1f`, `1e3`, `+1`, `-1` and a blank piece, and turns
//!   other text into `NaN`. This module rejects all of those with
//!   [`PathError::InvalidIndex`].
//!
//! Applying a path to a document:
//!
//! - A key applied to an object names that key. An index applied to an object names the
//!   key spelled by the index's digits, so `a[2]` on `{"a": {}}` sets `a."2"`.
//! - An index applied to an array names that element. A key applied to an array names an
//!   element only when it is a canonical array index (`"0"`, `"7"`, not `"07"`), so on a
//!   root array the path `0` works and `[0]` does not. Any other key on an array is
//!   rejected, because the client would write a property that JSON never shows.
//! - When a step of the path is missing, `null` or a scalar, `set` replaces it with a
//!   new container: an array of that many `null`s when the next token is an index, an
//!   object otherwise. Setting an index past the end of an array pads it with `null`s.
//! - `erase` removes an object key. An erased array element becomes `null` and the
//!   array keeps its length, as JavaScript's `delete` leaves a hole that
//!   `JSON.stringify` writes as `null`. `erase` creates missing parents exactly like
//!   `set` does, because the client builds the same parents before its `delete`, so
//!   erasing `x.y` from `{}` gives `{"x": {}}`.
//!
//! Paths that this module rejects although the client accepts them:
//!
//! - any path on a root that is `null` or a scalar, where the client throws;
//! - a path with no tokens, such as `""` or `"."`, for which the client sets or deletes
//!   a key named `"undefined"`;
//! - the key `__proto__` on an object that has no such key, which JavaScript resolves
//!   to the object's prototype;
//! - paths beyond [`MAX_TOKENS`] or [`MAX_ARRAY_GROWTH`], limits of our own.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The largest array index a path may contain: the largest index of a JavaScript
/// array, 2³² − 2. The client writes a larger index as a property that JSON drops, or
/// fails to allocate the array.
pub const MAX_INDEX: usize = 4_294_967_294;

/// The maximum number of keys and indexes in one path.
///
/// The client has no limit. This one bounds how deep a single patch can nest new
/// containers, and matches the default nesting limit of `serde_json`'s parser, so a
/// document built by one patch stays readable by that parser unless its value is
/// itself deeply nested.
pub const MAX_TOKENS: usize = 128;

/// The maximum number of array elements that one [`JsonPath::set`] or
/// [`JsonPath::erase`] may add, counting the `null`s that pad arrays and the written
/// element itself.
///
/// NOTE: the official client has no such limit. Without one, a patch of a few bytes
/// such as `a[4000000000]` would make the server allocate an array of four billion
/// `null`s. At this limit the elements one patch adds take at most 2 MiB as
/// `serde_json::Value`s (32 bytes each on 64-bit targets) and 320 KiB as JSON text.
pub const MAX_ARRAY_GROWTH: usize = 1 << 16;

/// The key that JavaScript objects resolve to their prototype unless they have an own
/// property of that name.
const PROTOTYPE_KEY: &str = "__proto__";

/// A parsed path: object keys and array indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    source: String,
    tokens: Vec<PathToken>,
}

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathToken {
    /// An object key, from the text between dots or before the first `[`.
    Key(String),
    /// An array index, from the text between brackets.
    Index(usize),
}

/// An error from parsing a path or from applying it to a document.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// A piece between brackets is not decimal digits.
    #[error("invalid array index {index:?} in path {path:?}: expected decimal digits")]
    InvalidIndex {
        /// The whole path.
        path: String,
        /// The piece found between the brackets.
        index: String,
    },
    /// An index is larger than [`MAX_INDEX`].
    #[error("array index {index} in path {path:?} is larger than the maximum of {MAX_INDEX}")]
    IndexTooLarge {
        /// The whole path.
        path: String,
        /// The digits of the index, as written.
        index: String,
    },
    /// The path has more than [`MAX_TOKENS`] keys and indexes.
    #[error("path {path:?} has more than the maximum of {MAX_TOKENS} keys and indexes")]
    TooManyTokens {
        /// The whole path.
        path: String,
    },
    /// `set` or `erase` got a path without keys or indexes, such as `""` or `"."`.
    #[error("empty path {path:?}: set and erase need at least one key or index")]
    EmptyPath {
        /// The whole path.
        path: String,
    },
    /// The document root is a scalar or `null`, which has no keys or elements.
    #[error("cannot apply path {path:?} to a root that is {found}: expected an object or array")]
    RootNotContainer {
        /// The whole path.
        path: String,
        /// The kind of JSON value found at the root, such as `"a number"`.
        found: &'static str,
    },
    /// A key that is not a canonical array index is applied to an array.
    #[error("key {key:?} in path {path:?} is applied to an array, which only has indexes")]
    KeyOnArray {
        /// The whole path.
        path: String,
        /// The key applied to the array.
        key: String,
    },
    /// The key `__proto__` is applied to an object that has no such key. JavaScript
    /// clients would read or replace the object's prototype instead of a key.
    #[error("key \"__proto__\" in path {path:?} names no key of its object")]
    PrototypeKey {
        /// The whole path.
        path: String,
    },
    /// Applying the path would add more than [`MAX_ARRAY_GROWTH`] array elements.
    #[error(
        "path {path:?} would add {added} array elements, more than the maximum of {MAX_ARRAY_GROWTH}"
    )]
    ArrayGrowthTooLarge {
        /// The whole path.
        path: String,
        /// The number of elements the path would add.
        added: usize,
    },
}

/// The place inside one container that a token names.
#[derive(Debug)]
enum Slot<'t> {
    Key(Cow<'t, str>),
    Index(usize),
}

/// The change that [`JsonPath::set`] or [`JsonPath::erase`] makes at the last token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Set,
    Erase,
}

impl JsonPath {
    /// Parses a path with the client's rules (see the [module docs](self)).
    ///
    /// A path of only dots and whitespace parses to zero tokens. [`JsonPath::get`]
    /// returns the root for it, and `set` and `erase` reject it.
    pub fn parse(path: &str) -> Result<JsonPath, PathError> {
        let mut tokens = Vec::new();
        for part in path.split('.') {
            let part = trim_js_whitespace(part);
            if part.is_empty() {
                continue;
            }

            let mut pieces = part.split(['[', ']']);
            // `split` yields at least one piece, possibly empty, for any input.
            let key = pieces.next().unwrap_or_default();
            tokens.push(PathToken::Key(key.to_owned()));
            for piece in pieces.filter(|piece| !piece.is_empty()) {
                tokens.push(PathToken::Index(parse_index(path, piece)?));
            }

            if tokens.len() > MAX_TOKENS {
                return Err(PathError::TooManyTokens {
                    path: path.to_owned(),
                });
            }
        }
        Ok(JsonPath {
            source: path.to_owned(),
            tokens,
        })
    }

    /// Returns the path as it was given to [`JsonPath::parse`].
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Returns the keys and indexes of the path, in order.
    pub fn tokens(&self) -> &[PathToken] {
        &self.tokens
    }

    /// Returns the value at the path, or `None` when a step is missing or is not a
    /// container. A path with zero tokens returns `root`.
    ///
    /// Where the client's `get` would throw (a step through a scalar) or return a
    /// JavaScript property that is not JSON data (an array's `length`, an inherited
    /// method), this returns `None`.
    pub fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.tokens.iter().try_fold(root, |node, token| match node {
            Value::Object(map) => map.get(object_key(token).as_ref()),
            Value::Array(items) => items.get(array_position(token)?),
            _ => None,
        })
    }

    /// Sets `value` at the path inside `root`, creating missing parents like the
    /// official client: a missing parent followed by an index becomes an array of that
    /// length filled with `null`, otherwise an object. A parent that is `null` or a
    /// scalar is replaced the same way.
    ///
    /// On error `root` is unchanged. The errors are [`PathError::EmptyPath`],
    /// [`PathError::RootNotContainer`], [`PathError::KeyOnArray`],
    /// [`PathError::PrototypeKey`] and [`PathError::ArrayGrowthTooLarge`].
    pub fn set(&self, root: &mut Value, value: Value) -> Result<(), PathError> {
        let depth = self.plan(root, Operation::Set)?;
        let (container, slot) = self.descend_mut(root, depth)?;
        let new_value = match self.tokens[depth + 1..].split_last() {
            None => value,
            Some((innermost, outer)) => build_containers(outer, innermost, Some(value)),
        };
        write_slot(container, slot, new_value);
        Ok(())
    }

    /// Removes the value at the path, as the client's `setValue(root, path, undefined)`
    /// does: an object key is removed, an array element becomes `null` and the array
    /// keeps its length. Erasing a key or index that does not exist changes nothing,
    /// but missing parents on the way are created as [`JsonPath::set`] creates them.
    ///
    /// On error `root` is unchanged. The errors are those of [`JsonPath::set`].
    pub fn erase(&self, root: &mut Value) -> Result<(), PathError> {
        let depth = self.plan(root, Operation::Erase)?;
        let (container, slot) = self.descend_mut(root, depth)?;
        match self.tokens[depth + 1..].split_last() {
            None => remove_slot(container, &slot),
            Some((innermost, outer)) => {
                write_slot(container, slot, build_containers(outer, innermost, None));
            }
        }
        Ok(())
    }

    /// Checks that the operation can be applied to `root` without changing it.
    ///
    /// Returns the number of existing containers the operation descends through: the
    /// token at that position is the one whose slot gets written or removed, and every
    /// token after it goes into new containers.
    fn plan(&self, root: &Value, operation: Operation) -> Result<usize, PathError> {
        self.check_root(root)?;
        let Some(last) = self.tokens.len().checked_sub(1) else {
            return Err(PathError::EmptyPath {
                path: self.source.clone(),
            });
        };

        let mut node = root;
        let mut depth = 0;
        let slot = loop {
            let slot = self.resolve(node, &self.tokens[depth])?;
            match read_slot(node, &slot) {
                Some(child) if depth < last && is_container(child) => {
                    node = child;
                    depth += 1;
                }
                _ => break slot,
            }
        };

        let new_tokens = &self.tokens[depth + 1..];
        let writes_slot = operation == Operation::Set || !new_tokens.is_empty();
        let mut added = if writes_slot {
            elements_added_by_write(node, &slot)
        } else {
            0
        };
        added = added.saturating_add(self.check_new_containers(new_tokens, operation)?);
        if added > MAX_ARRAY_GROWTH {
            return Err(PathError::ArrayGrowthTooLarge {
                path: self.source.clone(),
                added,
            });
        }
        Ok(depth)
    }

    /// Checks the tokens that go into containers created by this path, and returns the
    /// number of array elements those containers get.
    ///
    /// A new container is an array exactly when the token applied to it is an index,
    /// so only object keys need checking here.
    fn check_new_containers(
        &self,
        tokens: &[PathToken],
        operation: Operation,
    ) -> Result<usize, PathError> {
        let mut added: usize = 0;
        for (position, token) in tokens.iter().enumerate() {
            let is_last = position + 1 == tokens.len();
            match token {
                PathToken::Key(key) if key == PROTOTYPE_KEY => {
                    return Err(PathError::PrototypeKey {
                        path: self.source.clone(),
                    });
                }
                PathToken::Key(_) => {}
                PathToken::Index(index) => {
                    let written = usize::from(!(is_last && operation == Operation::Erase));
                    added = added.saturating_add(*index).saturating_add(written);
                }
            }
        }
        Ok(added)
    }

    /// Walks `depth` existing containers down from `root` and returns the last one with
    /// the slot of the next token.
    fn descend_mut<'v>(
        &self,
        root: &'v mut Value,
        depth: usize,
    ) -> Result<(&'v mut Value, Slot<'_>), PathError> {
        let mut node = root;
        for token in &self.tokens[..depth] {
            let slot = self.resolve(node, token)?;
            node = read_slot_mut(node, &slot)
                .expect("plan() found an existing container at every step up to depth");
        }
        let slot = self.resolve(node, &self.tokens[depth])?;
        Ok((node, slot))
    }

    /// Finds where `token` lands in `container`.
    fn resolve<'t>(&self, container: &Value, token: &'t PathToken) -> Result<Slot<'t>, PathError> {
        match container {
            Value::Object(map) => {
                let key = object_key(token);
                if key == PROTOTYPE_KEY && !map.contains_key(PROTOTYPE_KEY) {
                    return Err(PathError::PrototypeKey {
                        path: self.source.clone(),
                    });
                }
                Ok(Slot::Key(key))
            }
            Value::Array(_) => match array_position(token) {
                Some(index) => Ok(Slot::Index(index)),
                None => Err(PathError::KeyOnArray {
                    path: self.source.clone(),
                    key: object_key(token).into_owned(),
                }),
            },
            // Only the root can be a scalar here, because the walk descends into
            // containers only.
            scalar => Err(self.root_error(scalar)),
        }
    }

    fn check_root(&self, root: &Value) -> Result<(), PathError> {
        if is_container(root) {
            Ok(())
        } else {
            Err(self.root_error(root))
        }
    }

    fn root_error(&self, root: &Value) -> PathError {
        let found = match root {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        PathError::RootNotContainer {
            path: self.source.clone(),
            found,
        }
    }
}

impl std::str::FromStr for JsonPath {
    type Err = PathError;

    fn from_str(path: &str) -> Result<JsonPath, PathError> {
        JsonPath::parse(path)
    }
}

/// Parses the piece between brackets as an array index.
fn parse_index(path: &str, piece: &str) -> Result<usize, PathError> {
    let digits = trim_js_whitespace(piece);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(PathError::InvalidIndex {
            path: path.to_owned(),
            index: piece.to_owned(),
        });
    }
    let too_large = || PathError::IndexTooLarge {
        path: path.to_owned(),
        index: digits.to_owned(),
    };
    // Leading zeros are allowed, as `Number("007")` is 7, so only the digits after
    // them can overflow.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 10 {
        return Err(too_large());
    }
    let index: u64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| too_large())?
    };
    usize::try_from(index)
        .ok()
        .filter(|index| *index <= MAX_INDEX)
        .ok_or_else(too_large)
}

/// Trims the characters that JavaScript's `String.prototype.trim` removes: the
/// ECMAScript WhiteSpace and LineTerminator characters.
///
/// This differs from [`str::trim`], which keeps U+FEFF and removes U+0085.
fn trim_js_whitespace(text: &str) -> &str {
    text.trim_matches(is_js_whitespace)
}

fn is_js_whitespace(character: char) -> bool {
    matches!(
        character,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
            | '\u{feff}'
    )
}

/// Returns the object key that `token` names: the key itself, or an index's digits.
fn object_key(token: &PathToken) -> Cow<'_, str> {
    match token {
        PathToken::Key(key) => Cow::Borrowed(key),
        PathToken::Index(index) => Cow::Owned(index.to_string()),
    }
}

/// Returns the array element that `token` names, if it names one.
fn array_position(token: &PathToken) -> Option<usize> {
    match token {
        PathToken::Index(index) => Some(*index),
        PathToken::Key(key) => canonical_array_index(key),
    }
}

/// Parses a key that JavaScript treats as an array index when it is used on an array:
/// the decimal form of an integer from 0 to [`MAX_INDEX`], with no sign, whitespace
/// or leading zero.
fn canonical_array_index(key: &str) -> Option<usize> {
    let is_canonical = !key.is_empty()
        && key.len() <= 10
        && key.bytes().all(|byte| byte.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !is_canonical {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .and_then(|index| usize::try_from(index).ok())
        .filter(|index| *index <= MAX_INDEX)
}

fn is_container(value: &Value) -> bool {
    value.is_object() || value.is_array()
}

fn read_slot<'v>(container: &'v Value, slot: &Slot<'_>) -> Option<&'v Value> {
    match (container, slot) {
        (Value::Object(map), Slot::Key(key)) => map.get(key.as_ref()),
        (Value::Array(items), Slot::Index(index)) => items.get(*index),
        _ => None,
    }
}

fn read_slot_mut<'v>(container: &'v mut Value, slot: &Slot<'_>) -> Option<&'v mut Value> {
    match (container, slot) {
        (Value::Object(map), Slot::Key(key)) => map.get_mut(key.as_ref()),
        (Value::Array(items), Slot::Index(index)) => items.get_mut(*index),
        _ => None,
    }
}

/// Returns how many elements writing `slot` adds to `container`: the padding `null`s
/// and the element itself when the index is past the end of an array.
fn elements_added_by_write(container: &Value, slot: &Slot<'_>) -> usize {
    match (container, slot) {
        (Value::Array(items), Slot::Index(index)) if *index >= items.len() => {
            index - items.len() + 1
        }
        _ => 0,
    }
}

/// Writes `value` into a slot that [`JsonPath::resolve`] returned for `container`.
fn write_slot(container: &mut Value, slot: Slot<'_>, value: Value) {
    match (container, slot) {
        (Value::Object(map), Slot::Key(key)) => {
            map.insert(key.into_owned(), value);
        }
        (Value::Array(items), Slot::Index(index)) => {
            if let Some(element) = items.get_mut(index) {
                *element = value;
            } else {
                items.resize(index, Value::Null);
                items.push(value);
            }
        }
        // `resolve` returns key slots for objects and index slots for arrays only.
        _ => {}
    }
}

/// Removes a slot that [`JsonPath::resolve`] returned for `container`.
fn remove_slot(container: &mut Value, slot: &Slot<'_>) {
    match (container, slot) {
        (Value::Object(map), Slot::Key(key)) => {
            map.remove(key.as_ref());
        }
        (Value::Array(items), Slot::Index(index)) => {
            if let Some(element) = items.get_mut(*index) {
                *element = Value::Null;
            }
        }
        // `resolve` returns key slots for objects and index slots for arrays only.
        _ => {}
    }
}

/// Builds the containers that a path creates below its last existing container.
///
/// `outer` are the tokens before `innermost`, outermost first. Each token is applied
/// to a new container: an array of `index` `null`s for an index, an empty object for
/// a key. The token's slot then contains the next container, or `leaf` for `innermost`.
/// With no leaf (an erase), the innermost container stays as created.
fn build_containers(outer: &[PathToken], innermost: &PathToken, leaf: Option<Value>) -> Value {
    let mut value = container_holding(innermost, leaf);
    for token in outer.iter().rev() {
        value = container_holding(token, Some(value));
    }
    value
}

fn container_holding(token: &PathToken, content: Option<Value>) -> Value {
    match token {
        PathToken::Index(index) => {
            let mut items = vec![Value::Null; *index];
            items.extend(content);
            Value::Array(items)
        }
        PathToken::Key(key) => {
            let mut map = Map::new();
            if let Some(content) = content {
                map.insert(key.clone(), content);
            }
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(text: &str) -> PathToken {
        PathToken::Key(text.to_owned())
    }

    fn tokens(path: &str) -> Vec<PathToken> {
        JsonPath::parse(path).unwrap().tokens().to_vec()
    }

    fn set(mut root: Value, path: &str, value: Value) -> Value {
        JsonPath::parse(path)
            .unwrap()
            .set(&mut root, value)
            .unwrap();
        root
    }

    fn erase(mut root: Value, path: &str) -> Value {
        JsonPath::parse(path).unwrap().erase(&mut root).unwrap();
        root
    }

    /// Applies `set` where it must fail and checks that `root` is unchanged.
    fn set_error(root: &Value, path: &str, value: Value) -> PathError {
        let mut changed = root.clone();
        let error = JsonPath::parse(path)
            .unwrap()
            .set(&mut changed, value)
            .unwrap_err();
        assert_eq!(&changed, root, "a failed set changed the document");
        error
    }

    fn erase_error(root: &Value, path: &str) -> PathError {
        let mut changed = root.clone();
        let error = JsonPath::parse(path)
            .unwrap()
            .erase(&mut changed)
            .unwrap_err();
        assert_eq!(&changed, root, "a failed erase changed the document");
        error
    }

    #[test]
    fn parse_dots_and_brackets() {
        assert_eq!(
            tokens("a.b[0].c"),
            [key("a"), key("b"), PathToken::Index(0), key("c")]
        );
        assert_eq!(
            tokens("a[1][2]"),
            [key("a"), PathToken::Index(1), PathToken::Index(2)]
        );
        assert_eq!(tokens("a.0"), [key("a"), key("0")]);
    }

    #[test]
    fn parse_whitespace_and_empty_parts() {
        assert_eq!(tokens("  a . b  "), [key("a"), key("b")]);
        assert_eq!(tokens("a..b."), [key("a"), key("b")]);
        assert_eq!(tokens("a[ 1 ]"), [key("a"), PathToken::Index(1)]);
        // Only the part is trimmed, so whitespace before a bracket stays in the key.
        assert_eq!(tokens("a [1]"), [key("a "), PathToken::Index(1)]);
        assert_eq!(tokens("\u{feff}a\u{3000}"), [key("a")]);
        assert_eq!(tokens("\u{85}a"), [key("\u{85}a")]);
    }

    #[test]
    fn parse_bracket_oddities() {
        assert_eq!(tokens("[0]"), [key(""), PathToken::Index(0)]);
        assert_eq!(tokens("a[]"), [key("a")]);
        assert_eq!(
            tokens("a[1]2"),
            [key("a"), PathToken::Index(1), PathToken::Index(2)]
        );
        assert_eq!(tokens("a[1.5]"), [key("a"), PathToken::Index(1), key("5")]);
        assert_eq!(tokens("a[007]"), [key("a"), PathToken::Index(7)]);
    }

    #[test]
    fn parse_empty_paths() {
        assert!(tokens("").is_empty());
        assert!(tokens("...").is_empty());
        assert!(tokens(" \t ").is_empty());
    }

    #[test]
    fn parse_rejects_invalid_indexes() {
        for (path, index) in [
            ("a[x]", "x"),
            ("a[ ]", " "),
            ("a[0x1]", "0x1"),
            ("a[1e3]", "1e3"),
            ("a[-1]", "-1"),
            ("a[+1]", "+1"),
            ("a[١]", "١"),
            ("a]b", "b"),
        ] {
            assert_eq!(
                JsonPath::parse(path),
                Err(PathError::InvalidIndex {
                    path: path.to_owned(),
                    index: index.to_owned(),
                }),
                "path {path:?}"
            );
        }
    }

    #[test]
    fn parse_index_limits() {
        assert_eq!(
            tokens("a[4294967294]"),
            [key("a"), PathToken::Index(MAX_INDEX)]
        );
        assert_eq!(
            tokens("a[0000000000004294967294]"),
            [key("a"), PathToken::Index(MAX_INDEX)]
        );
        for (path, index) in [
            ("a[4294967295]", "4294967295"),
            ("a[99999999999999999999999]", "99999999999999999999999"),
        ] {
            assert_eq!(
                JsonPath::parse(path),
                Err(PathError::IndexTooLarge {
                    path: path.to_owned(),
                    index: index.to_owned(),
                })
            );
        }
    }

    #[test]
    fn parse_token_limit() {
        let at_limit = vec!["a"; MAX_TOKENS].join(".");
        assert_eq!(tokens(&at_limit).len(), MAX_TOKENS);

        let over_limit = format!("{at_limit}[0]");
        assert_eq!(
            JsonPath::parse(&over_limit),
            Err(PathError::TooManyTokens { path: over_limit })
        );
    }

    #[test]
    fn parse_keeps_source() {
        let path: JsonPath = " a[1] ".parse().unwrap();
        assert_eq!(path.as_str(), " a[1] ");
    }

    #[test]
    fn set_first_array_item() {
        assert_eq!(
            set(json!({}), "items[0]", json!(51)),
            json!({"items": [51]})
        );
    }

    #[test]
    fn set_creates_objects() {
        assert_eq!(
            set(json!({"x": 1}), "a.b.c", json!(true)),
            json!({"x": 1, "a": {"b": {"c": true}}})
        );
        assert_eq!(
            set(json!({}), "items.0", json!(51)),
            json!({"items": {"0": 51}})
        );
    }

    #[test]
    fn set_grows_arrays_with_null() {
        assert_eq!(
            set(json!({"pets": ["cat"]}), "pets[2]", json!("dog")),
            json!({"pets": ["cat", null, "dog"]})
        );
        assert_eq!(
            set(json!({}), "a[1][2]", json!(7)),
            json!({"a": [null, [null, null, 7]]})
        );
    }

    #[test]
    fn set_replaces_scalars_and_null() {
        assert_eq!(
            set(json!({"a": 3}), "a.b", json!(1)),
            json!({"a": {"b": 1}})
        );
        assert_eq!(
            set(json!({"a": null}), "a[1]", json!(1)),
            json!({"a": [null, 1]})
        );
        assert_eq!(
            set(json!({"a": [null]}), "a[0].b", json!(1)),
            json!({"a": [{"b": 1}]})
        );
    }

    #[test]
    fn set_index_on_object_is_key() {
        assert_eq!(
            set(json!({"a": {"x": 1}}), "a[2]", json!(1)),
            json!({"a": {"x": 1, "2": 1}})
        );
    }

    #[test]
    fn set_numeric_key_on_array() {
        assert_eq!(
            set(json!({"a": [1, 2]}), "a.1", json!(9)),
            json!({"a": [1, 9]})
        );
        assert_eq!(
            set(json!({"a": [1]}), "a.2.b", json!(9)),
            json!({"a": [1, null, {"b": 9}]})
        );
    }

    #[test]
    fn set_on_root_array() {
        assert_eq!(set(json!([1, 2]), "0", json!(9)), json!([9, 2]));
        assert_eq!(set(json!([1]), "3", json!(9)), json!([1, null, null, 9]));
        assert_eq!(set(json!([null]), "0.x", json!(9)), json!([{"x": 9}]));
    }

    #[test]
    fn set_leading_bracket() {
        assert_eq!(set(json!({}), "[0]", json!(2)), json!({"": [2]}));
        assert_eq!(
            set_error(&json!([1]), "[0]", json!(2)),
            PathError::KeyOnArray {
                path: "[0]".to_owned(),
                key: String::new(),
            }
        );
        assert!(matches!(
            set_error(&json!([1]), "[3]", json!(2)),
            PathError::KeyOnArray { .. }
        ));
    }

    #[test]
    fn set_rejects_keys_on_arrays() {
        for path in ["a.foo", "a.length", "a.01", "a.foo.bar", "a.4294967295"] {
            assert!(
                matches!(
                    set_error(&json!({"a": [1, 2, 3]}), path, json!(1)),
                    PathError::KeyOnArray { .. }
                ),
                "path {path:?}"
            );
        }
    }

    #[test]
    fn set_rejects_empty_path() {
        for path in ["", ".", " . "] {
            assert_eq!(
                set_error(&json!({}), path, json!(1)),
                PathError::EmptyPath {
                    path: path.to_owned()
                }
            );
        }
    }

    #[test]
    fn set_rejects_scalar_root() {
        for (root, found) in [
            (json!(null), "null"),
            (json!(5), "a number"),
            (json!("abc"), "a string"),
            (json!(false), "a boolean"),
        ] {
            assert_eq!(
                set_error(&root, "a", json!(1)),
                PathError::RootNotContainer {
                    path: "a".to_owned(),
                    found,
                }
            );
        }
    }

    #[test]
    fn set_prototype_key() {
        for path in [
            "__proto__",
            "__proto__.polluted",
            "a.__proto__",
            "a[0].__proto__",
        ] {
            let error = set_error(&json!({}), path, json!({"x": 1}));
            assert_eq!(
                error,
                PathError::PrototypeKey {
                    path: path.to_owned()
                },
                "path {path:?}"
            );
        }

        // An object that already has the key behaves like any other object.
        assert_eq!(
            set(json!({"__proto__": 1}), "__proto__.x", json!(2)),
            json!({"__proto__": {"x": 2}})
        );
    }

    #[test]
    fn set_inherited_method_names_are_keys() {
        assert_eq!(
            set(json!({}), "constructor.name", json!(1)),
            json!({"constructor": {"name": 1}})
        );
    }

    #[test]
    fn set_array_growth_limit() {
        let at_limit = format!("a[{}]", MAX_ARRAY_GROWTH - 1);
        let root = set(json!({}), &at_limit, json!(1));
        assert_eq!(root["a"].as_array().unwrap().len(), MAX_ARRAY_GROWTH);

        let over_limit = format!("a[{MAX_ARRAY_GROWTH}]");
        assert_eq!(
            set_error(&json!({}), &over_limit, json!(1)),
            PathError::ArrayGrowthTooLarge {
                path: over_limit,
                added: MAX_ARRAY_GROWTH + 1,
            }
        );
    }

    #[test]
    fn set_array_growth_counts_every_array() {
        let half = MAX_ARRAY_GROWTH / 2;
        let path = format!("a[{half}][{half}]");
        assert!(matches!(
            set_error(&json!({}), &path, json!(1)),
            PathError::ArrayGrowthTooLarge { .. }
        ));

        let existing = json!({"a": [1, 2, 3]});
        let within_existing = format!("a[{}]", MAX_ARRAY_GROWTH + 2);
        let root = set(existing.clone(), &within_existing, json!(1));
        assert_eq!(root["a"].as_array().unwrap().len(), MAX_ARRAY_GROWTH + 3);

        let past_existing = format!("a[{}]", MAX_ARRAY_GROWTH + 3);
        assert!(matches!(
            set_error(&existing, &past_existing, json!(1)),
            PathError::ArrayGrowthTooLarge { .. }
        ));
    }

    #[test]
    fn set_huge_index_rejected_quickly() {
        let path = format!("a[{MAX_INDEX}][{MAX_INDEX}]");
        assert_eq!(
            set_error(&json!({"a": [1]}), &path, json!(1)),
            PathError::ArrayGrowthTooLarge {
                path,
                added: 2 * MAX_INDEX + 1,
            }
        );
    }

    #[test]
    fn erase_object_key() {
        assert_eq!(
            erase(json!({"a": {"b": 1, "c": 2}}), "a.b"),
            json!({"a": {"c": 2}})
        );
        assert_eq!(erase(json!({"a": 1}), "x"), json!({"a": 1}));
    }

    #[test]
    fn erase_array_element_leaves_null() {
        assert_eq!(
            erase(json!({"a": [1, 2, 3]}), "a[1]"),
            json!({"a": [1, null, 3]})
        );
        assert_eq!(erase(json!({"a": [1]}), "a[5]"), json!({"a": [1]}));
        assert_eq!(erase(json!([1, 2, 3]), "2"), json!([1, 2, null]));
    }

    #[test]
    fn erase_creates_missing_parents() {
        assert_eq!(erase(json!({}), "x.y.z"), json!({"x": {"y": {}}}));
        assert_eq!(erase(json!({}), "items[2]"), json!({"items": [null, null]}));
        assert_eq!(erase(json!({"a": 3}), "a.b"), json!({"a": {}}));
    }

    #[test]
    fn erase_errors() {
        assert!(matches!(
            erase_error(&json!({"undefined": 1}), ""),
            PathError::EmptyPath { .. }
        ));
        assert!(matches!(
            erase_error(&json!(5), "a"),
            PathError::RootNotContainer { .. }
        ));
        assert!(matches!(
            erase_error(&json!({"a": [1]}), "a.length"),
            PathError::KeyOnArray { .. }
        ));
        assert!(matches!(
            erase_error(&json!([1]), "[0]"),
            PathError::KeyOnArray { .. }
        ));
        assert!(matches!(
            erase_error(&json!({}), "__proto__"),
            PathError::PrototypeKey { .. }
        ));
        let path = format!("a[{MAX_ARRAY_GROWTH}].b");
        assert!(matches!(
            erase_error(&json!({}), &path),
            PathError::ArrayGrowthTooLarge { .. }
        ));
    }

    #[test]
    fn erase_growth_excludes_erased_element() {
        let path = format!("a[{MAX_ARRAY_GROWTH}]");
        let root = erase(json!({}), &path);
        assert_eq!(root["a"].as_array().unwrap().len(), MAX_ARRAY_GROWTH);
    }

    #[test]
    fn get_values() {
        let root = json!({"a": [{"b": 1}, null], "o": {"2": "two"}});
        let get = |path: &str| JsonPath::parse(path).unwrap().get(&root).cloned();
        assert_eq!(get("a[0].b"), Some(json!(1)));
        assert_eq!(get("a.0.b"), Some(json!(1)));
        assert_eq!(get("a[1]"), Some(Value::Null));
        assert_eq!(get("o[2]"), Some(json!("two")));
        assert_eq!(get(""), Some(root.clone()));
        assert_eq!(get("a[2]"), None);
        assert_eq!(get("a.length"), None);
        assert_eq!(get("a[0].b.c"), None);
        assert_eq!(get("missing.x"), None);
        assert_eq!(get("constructor"), None);
    }

    #[test]
    fn error_messages_name_path() {
        let error = JsonPath::parse("pets[x]").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid array index \"x\" in path \"pets[x]\": expected decimal digits"
        );
        let error = set_error(&json!({"pets": []}), "pets.name", json!(1));
        assert_eq!(
            error.to_string(),
            "key \"name\" in path \"pets.name\" is applied to an array, which only has indexes"
        );
    }
}
