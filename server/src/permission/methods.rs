//! The string and array methods rules can call, with JavaScript's semantics.
//!
//! JavaScript indexes strings by UTF-16 code units, so positions, lengths and results
//! of `indexOf`, `substr`, `slice` and friends are counted that way. ASCII strings,
//! where bytes and code units coincide, take a fast path.

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::Value as Json;

use super::ast::Method;
use super::eval::{Failure, Outcome};
use super::js_regex::JsRegex;
use super::value::{
    Value, is_js_whitespace, same_value_zero, strict_equals, to_integer_or_infinity,
};

/// Calls `method` on a receiver that is not `null` or `undefined`, with its first two
/// arguments (`undefined` where absent).
pub(super) fn call<'e>(
    receiver: &Value<'e>,
    method: Method,
    arguments: &[Value<'e>; 2],
) -> Outcome<'e> {
    match receiver {
        Value::String(text) => string_method(text, method, arguments),
        Value::Json(Json::Array(items)) => array_method(
            items.len(),
            |index| Value::from_json(&items[index]),
            method,
            arguments,
        ),
        Value::Array(items) => {
            array_method(items.len(), |index| items[index].clone(), method, arguments)
        }
        other => Err(no_such_method(other, method)),
    }
}

fn no_such_method(receiver: &Value<'_>, method: Method) -> Failure {
    Failure::Thrown(format!(
        "{} has no method `{}`",
        receiver.describe(),
        method.name()
    ))
}

fn string_method<'e>(text: &str, method: Method, arguments: &[Value<'e>; 2]) -> Outcome<'e> {
    let [first, second] = arguments;
    let owned = |text: String| Ok(Value::String(Cow::Owned(text)));
    match method {
        Method::StartsWith => {
            let search = search_string(first, method)?;
            let start = position(second, text);
            Ok(Value::Bool(starts_with_at(text, &search, start)))
        }
        Method::EndsWith => {
            let search = search_string(first, method)?;
            let end = if matches!(second, Value::Undefined) {
                utf16_length(text)
            } else {
                position(second, text)
            };
            Ok(Value::Bool(ends_with_at(text, &search, end)))
        }
        Method::Includes => {
            let search = search_string(first, method)?;
            let start = position(second, text);
            Ok(Value::Bool(index_of(text, &search, start).is_some()))
        }
        Method::IndexOf => {
            let search = first.to_js_string();
            let start = position(second, text);
            Ok(Value::Number(
                index_of(text, &search, start).map_or(-1.0, |index| index as f64),
            ))
        }
        Method::Match => match_regex(text, first),
        Method::ToUpperCase => owned(text.to_uppercase()),
        Method::ToLowerCase => owned(text.to_lowercase()),
        Method::Trim => owned(text.trim_matches(is_js_whitespace).to_owned()),
        Method::Substr => owned(substr(text, first, second)),
        Method::Substring => owned(substring(text, first, second)),
        Method::Slice => {
            let length = utf16_length(text);
            let (start, end) = relative_range(first, second, length);
            owned(utf16_slice(text, start, end))
        }
        Method::Split => split(text, first, second),
    }
}

/// Converts the search argument of `startsWith`, `endsWith` and `includes` to a string.
/// These methods throw for a regular expression instead of converting it.
fn search_string<'e>(argument: &Value<'e>, method: Method) -> Result<Cow<'e, str>, Failure> {
    if let Value::Regex(_) = argument {
        return Err(Failure::Thrown(format!(
            "the argument of `{}` must not be a regular expression",
            method.name()
        )));
    }
    Ok(argument.to_js_string())
}

/// Converts a position argument to an index into `text`, clamped to `0..=length`.
/// `undefined` converts to 0.
fn position(argument: &Value<'_>, text: &str) -> usize {
    clamp(
        to_integer_or_infinity(argument.to_number()),
        utf16_length(text),
    )
}

fn clamp(number: f64, length: usize) -> usize {
    if number <= 0.0 {
        0
    } else if number >= length as f64 {
        length
    } else {
        number as usize
    }
}

/// Computes the range of `slice(start, end)`, where negative positions count from the
/// end.
fn relative_range(start: &Value<'_>, end: &Value<'_>, length: usize) -> (usize, usize) {
    let relative = |number: f64| {
        if number < 0.0 {
            clamp(length as f64 + number, length)
        } else {
            clamp(number, length)
        }
    };
    let from = relative(to_integer_or_infinity(start.to_number()));
    let to = match end {
        Value::Undefined => length,
        other => relative(to_integer_or_infinity(other.to_number())),
    };
    (from, to.max(from))
}

fn substr(text: &str, start: &Value<'_>, length: &Value<'_>) -> String {
    let size = utf16_length(text);
    let start = to_integer_or_infinity(start.to_number());
    let start = if start < 0.0 {
        clamp(size as f64 + start, size)
    } else {
        clamp(start, size)
    };
    let count = match length {
        Value::Undefined => size,
        other => clamp(to_integer_or_infinity(other.to_number()), size),
    };
    utf16_slice(text, start, (start + count).min(size))
}

fn substring(text: &str, start: &Value<'_>, end: &Value<'_>) -> String {
    let size = utf16_length(text);
    let start = clamp(to_integer_or_infinity(start.to_number()), size);
    let end = match end {
        Value::Undefined => size,
        other => clamp(to_integer_or_infinity(other.to_number()), size),
    };
    utf16_slice(text, start.min(end), start.max(end))
}

fn split<'e>(text: &str, separator: &Value<'e>, limit: &Value<'e>) -> Outcome<'e> {
    if let Value::Regex(_) = separator {
        return Err(Failure::Thrown(
            "`split` with a regular expression is not supported".to_owned(),
        ));
    }
    let limit = match limit {
        Value::Undefined => u32::MAX as usize,
        other => to_uint32(other.to_number()) as usize,
    };
    let piece = |piece: &str| Value::String(Cow::Owned(piece.to_owned()));

    let pieces: Vec<Value<'e>> = if limit == 0 {
        Vec::new()
    } else if let Value::Undefined = separator {
        vec![piece(text)]
    } else {
        let separator = separator.to_js_string();
        if separator.is_empty() {
            let length = utf16_length(text);
            (0..length.min(limit))
                .map(|index| Value::String(Cow::Owned(utf16_slice(text, index, index + 1))))
                .collect()
        } else {
            text.split(&*separator).take(limit).map(piece).collect()
        }
    };
    Ok(Value::Array(Rc::new(pieces)))
}

/// JavaScript's `ToUint32`.
fn to_uint32(number: f64) -> u32 {
    if !number.is_finite() {
        return 0;
    }
    number.trunc().rem_euclid(4_294_967_296.0) as u32
}

/// `text.match(argument)`: a regular expression literal, or any other value turned into
/// a pattern as `new RegExp(String(argument))` would.
fn match_regex<'e>(text: &str, argument: &Value<'e>) -> Outcome<'e> {
    let compiled;
    let regex = match argument {
        Value::Regex(regex) => *regex,
        Value::Undefined => {
            compiled = compile_runtime("")?;
            &compiled
        }
        other => {
            compiled = compile_runtime(&other.to_js_string())?;
            &compiled
        }
    };

    let string = |found: &str| Value::String(Cow::Owned(found.to_owned()));
    if regex.is_global() {
        let mut matches = Vec::new();
        for found in regex.regex().find_iter(text) {
            matches.push(string(
                found.map_err(|error| regex_failure(&error))?.as_str(),
            ));
        }
        if matches.is_empty() {
            return Ok(Value::Null);
        }
        return Ok(Value::Array(Rc::new(matches)));
    }

    let Some(captures) = regex
        .regex()
        .captures(text)
        .map_err(|error| regex_failure(&error))?
    else {
        return Ok(Value::Null);
    };
    let groups = (0..captures.len())
        .map(|group| {
            captures
                .get(group)
                .map_or(Value::Undefined, |found| string(found.as_str()))
        })
        .collect();
    Ok(Value::Array(Rc::new(groups)))
}

fn compile_runtime(source: &str) -> Result<JsRegex, Failure> {
    JsRegex::compile(source, "").map_err(|reason| {
        Failure::Thrown(format!("invalid regular expression /{source}/: {reason}"))
    })
}

fn regex_failure(error: &fancy_regex::Error) -> Failure {
    Failure::Thrown(format!("regular expression failed: {error}"))
}

fn array_method<'e>(
    length: usize,
    element: impl Fn(usize) -> Value<'e>,
    method: Method,
    arguments: &[Value<'e>; 2],
) -> Outcome<'e> {
    let [first, second] = arguments;
    match method {
        Method::IndexOf | Method::Includes => {
            let start = array_start(second, length);
            let found = (start..length).find(|index| {
                let item = element(*index);
                if method == Method::IndexOf {
                    strict_equals(&item, first)
                } else {
                    same_value_zero(&item, first)
                }
            });
            Ok(if method == Method::IndexOf {
                Value::Number(found.map_or(-1.0, |index| index as f64))
            } else {
                Value::Bool(found.is_some())
            })
        }
        Method::Slice => {
            let (start, end) = relative_range(first, second, length);
            Ok(Value::Array(Rc::new((start..end).map(element).collect())))
        }
        _ => Err(Failure::Thrown(format!(
            "an array has no method `{}`",
            method.name()
        ))),
    }
}

/// Converts the `fromIndex` of `indexOf` and `includes` on arrays to an index. A
/// negative value counts from the end.
fn array_start(argument: &Value<'_>, length: usize) -> usize {
    let number = to_integer_or_infinity(argument.to_number());
    if number < 0.0 {
        clamp(length as f64 + number, length)
    } else {
        clamp(number, length)
    }
}

/// Returns the length of `text` in UTF-16 code units, which is JavaScript's `length`.
pub(super) fn utf16_length(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.encode_utf16().count()
    }
}

/// Returns the code units `start..end` of `text` as a string. A range that splits a
/// surrogate pair gives U+FFFD for the half, because Rust strings cannot contain lone
/// surrogates.
pub(super) fn utf16_slice(text: &str, start: usize, end: usize) -> String {
    if start >= end {
        return String::new();
    }
    if text.is_ascii() {
        return text[start..end].to_owned();
    }
    let units: Vec<u16> = text.encode_utf16().skip(start).take(end - start).collect();
    String::from_utf16_lossy(&units)
}

/// Finds the first position at or after `start` where `search` occurs, in code units.
fn index_of(text: &str, search: &str, start: usize) -> Option<usize> {
    if start == 0 || text.is_ascii() {
        let byte_start = if text.is_ascii() { start } else { 0 };
        let found = text[byte_start..].find(search)? + byte_start;
        return Some(utf16_length(&text[..found]));
    }
    let text: Vec<u16> = text.encode_utf16().collect();
    let search: Vec<u16> = search.encode_utf16().collect();
    (start..=text.len().saturating_sub(search.len()))
        .find(|index| text[*index..].starts_with(&search))
}

fn starts_with_at(text: &str, search: &str, start: usize) -> bool {
    if text.is_ascii() {
        return text[start..].starts_with(search);
    }
    let text: Vec<u16> = text.encode_utf16().collect();
    let search: Vec<u16> = search.encode_utf16().collect();
    text[start..].starts_with(&search)
}

fn ends_with_at(text: &str, search: &str, end: usize) -> bool {
    if text.is_ascii() {
        return text[..end].ends_with(search);
    }
    let text: Vec<u16> = text.encode_utf16().collect();
    let search: Vec<u16> = search.encode_utf16().collect();
    text[..end].ends_with(&search)
}
