//! JavaScript values as rules see them, and the conversions between them.
//!
//! Rules in deepstream run as JavaScript, so comparisons, `+`, truthiness and string
//! conversion follow the ECMAScript rules here: `'1' == 1`, `null == undefined`,
//! `[1, 2] + ''` is `'1,2'`, `0.1 + 0.2` prints as `0.30000000000000004`. Objects and
//! arrays compare by identity, which for JSON values means "the same node of the same
//! document".

use std::borrow::Cow;
use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::Value as Json;

use super::js_regex::JsRegex;

/// A value during the evaluation of one rule. Values borrow from the rule, the request
/// and the loaded records, so reading message data copies nothing.
#[derive(Debug, Clone)]
pub(super) enum Value<'e> {
    /// `undefined`: a missing property, a record still loading, an unmatched group.
    Undefined,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number; JavaScript has only doubles.
    Number(f64),
    /// A string.
    String(Cow<'e, str>),
    /// A JSON array or object from the message, a record or the user's data. JSON scalars
    /// are converted to the other variants when read.
    Json(&'e Json),
    /// An array made by the rule: an array literal or the result of `match` or `split`.
    Array(Rc<Vec<Value<'e>>>),
    /// The `user` object.
    User,
    /// A regular expression literal of the rule.
    Regex(&'e JsRegex),
}

/// The type groups of JavaScript's equality algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Undefined,
    Null,
    Bool,
    Number,
    String,
    Object,
}

impl<'e> Value<'e> {
    /// Converts a JSON node: scalars become scalar values, arrays and objects are borrowed.
    pub(super) fn from_json(json: &'e Json) -> Value<'e> {
        match json {
            Json::Null => Value::Null,
            Json::Bool(value) => Value::Bool(*value),
            // `as_f64` returns a value for every number `serde_json` parses without its
            // `arbitrary_precision` feature; large integers round as in JavaScript.
            Json::Number(number) => Value::Number(number.as_f64().unwrap_or(f64::NAN)),
            Json::String(text) => Value::String(Cow::Borrowed(text)),
            Json::Array(_) | Json::Object(_) => Value::Json(json),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Value::Undefined => Kind::Undefined,
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Json(_) | Value::Array(_) | Value::User | Value::Regex(_) => Kind::Object,
        }
    }

    /// Checks whether the value is `null` or `undefined`.
    pub(super) fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    /// JavaScript's `ToBoolean`.
    pub(super) fn is_truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null => false,
            Value::Bool(value) => *value,
            Value::Number(number) => *number != 0.0 && !number.is_nan(),
            Value::String(text) => !text.is_empty(),
            Value::Json(_) | Value::Array(_) | Value::User | Value::Regex(_) => true,
        }
    }

    /// Returns the result of the `typeof` operator.
    pub(super) fn type_of(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Null | Value::Json(_) | Value::Array(_) | Value::User | Value::Regex(_) => {
                "object"
            }
        }
    }

    /// Describes the value's type for error messages, such as "undefined" or "a number".
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Json(Json::Array(_)) | Value::Array(_) => "an array",
            Value::Json(_) | Value::User => "an object",
            Value::Regex(_) => "a regular expression",
        }
    }

    /// JavaScript's `ToPrimitive` without a hint: objects become strings, since neither
    /// JSON objects nor arrays have a `valueOf` that returns a primitive.
    pub(super) fn to_primitive(&self) -> Value<'e> {
        match self {
            Value::Json(_) | Value::Array(_) | Value::User | Value::Regex(_) => {
                Value::String(self.to_js_string())
            }
            primitive => primitive.clone(),
        }
    }

    /// JavaScript's `ToNumber`.
    pub(super) fn to_number(&self) -> f64 {
        match self {
            Value::Undefined => f64::NAN,
            Value::Null => 0.0,
            Value::Bool(value) => f64::from(u8::from(*value)),
            Value::Number(number) => *number,
            Value::String(text) => string_to_number(text),
            object => string_to_number(&object.to_js_string()),
        }
    }

    /// JavaScript's `ToString`.
    pub(super) fn to_js_string(&self) -> Cow<'e, str> {
        match self {
            Value::Undefined => Cow::Borrowed("undefined"),
            Value::Null => Cow::Borrowed("null"),
            Value::Bool(true) => Cow::Borrowed("true"),
            Value::Bool(false) => Cow::Borrowed("false"),
            Value::Number(number) => Cow::Owned(number_to_string(*number)),
            Value::String(text) => text.clone(),
            Value::Json(Json::Array(items)) => Cow::Owned(join(items.iter().map(Value::from_json))),
            Value::Array(items) => Cow::Owned(join(items.iter().cloned())),
            Value::Json(_) | Value::User => Cow::Borrowed("[object Object]"),
            Value::Regex(regex) => Cow::Owned(regex.to_string()),
        }
    }
}

/// `Array.prototype.join` with the default separator: `null` and `undefined` elements
/// become empty strings.
fn join<'e>(items: impl Iterator<Item = Value<'e>>) -> String {
    let mut text = String::new();
    for (position, item) in items.enumerate() {
        if position > 0 {
            text.push(',');
        }
        if !item.is_nullish() {
            text.push_str(&item.to_js_string());
        }
    }
    text
}

/// Compares like the `===` operator.
pub(super) fn strict_equals(left: &Value<'_>, right: &Value<'_>) -> bool {
    match (left, right) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(left), Value::Bool(right)) => left == right,
        (Value::Number(left), Value::Number(right)) => left == right,
        (Value::String(left), Value::String(right)) => left == right,
        (Value::Json(left), Value::Json(right)) => std::ptr::eq(*left, *right),
        (Value::Array(left), Value::Array(right)) => Rc::ptr_eq(left, right),
        (Value::User, Value::User) => true,
        // Each evaluation of a regular expression literal creates a new object.
        _ => false,
    }
}

/// Compares like the `==` operator (JavaScript's IsLooselyEqual).
pub(super) fn loose_equals(left: &Value<'_>, right: &Value<'_>) -> bool {
    let (left_kind, right_kind) = (left.kind(), right.kind());
    if left_kind == right_kind {
        return strict_equals(left, right);
    }
    match (left_kind, right_kind) {
        (Kind::Undefined | Kind::Null, Kind::Undefined | Kind::Null) => true,
        (Kind::Number, Kind::String) | (Kind::String, Kind::Number) => {
            left.to_number() == right.to_number()
        }
        (Kind::Bool, _) => loose_equals(&Value::Number(left.to_number()), right),
        (_, Kind::Bool) => loose_equals(left, &Value::Number(right.to_number())),
        (Kind::Object, Kind::Number | Kind::String) => loose_equals(&left.to_primitive(), right),
        (Kind::Number | Kind::String, Kind::Object) => loose_equals(left, &right.to_primitive()),
        _ => false,
    }
}

/// JavaScript's SameValueZero, used by `includes`: `===` except that `NaN` equals `NaN`.
pub(super) fn same_value_zero(left: &Value<'_>, right: &Value<'_>) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) if left.is_nan() && right.is_nan() => true,
        _ => strict_equals(left, right),
    }
}

/// Orders two values as `<`, `<=`, `>` and `>=` do. Returns `None` when JavaScript's
/// comparison is undefined (a `NaN` is involved), which makes all four operators false.
pub(super) fn compare(left: &Value<'_>, right: &Value<'_>) -> Option<Ordering> {
    let (left, right) = (left.to_primitive(), right.to_primitive());
    if let (Value::String(left), Value::String(right)) = (&left, &right) {
        // JavaScript compares strings by UTF-16 code units, not by code points.
        return Some(left.encode_utf16().cmp(right.encode_utf16()));
    }
    left.to_number().partial_cmp(&right.to_number())
}

/// Adds like the `+` operator: string concatenation when either side is a string after
/// `ToPrimitive`, numeric addition otherwise.
pub(super) fn add<'e>(left: &Value<'e>, right: &Value<'e>) -> Value<'e> {
    let (left, right) = (left.to_primitive(), right.to_primitive());
    if matches!(left, Value::String(_)) || matches!(right, Value::String(_)) {
        let mut text = left.to_js_string().into_owned();
        text.push_str(&right.to_js_string());
        return Value::String(Cow::Owned(text));
    }
    Value::Number(left.to_number() + right.to_number())
}

/// JavaScript's `Number.prototype.toString()` for base 10: the shortest digits that
/// read back as the same double, in plain notation for exponents from -7 to 20 and in
/// exponent notation (`1e+21`, `1.5e-7`) outside that range.
pub(super) fn number_to_string(number: f64) -> String {
    if number.is_nan() {
        return "NaN".to_owned();
    }
    if number == 0.0 {
        return "0".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .to_owned();
    }

    // Rust's `{:e}` prints the shortest round-tripping digits, like JavaScript.
    let scientific = format!("{:e}", number.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // `point` is where the decimal point goes, counted in digits from the left.
    let point = exponent + 1;
    let count = digits.len() as i32;

    let mut text = String::new();
    if number < 0.0 {
        text.push('-');
    }
    if count <= point && point <= 21 {
        text.push_str(&digits);
        text.extend(std::iter::repeat_n('0', (point - count) as usize));
    } else if 0 < point && point <= 21 {
        text.push_str(&digits[..point as usize]);
        text.push('.');
        text.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', (-point) as usize));
        text.push_str(&digits);
    } else {
        text.push_str(&digits[..1]);
        if count > 1 {
            text.push('.');
            text.push_str(&digits[1..]);
        }
        text.push('e');
        text.push(if point > 0 { '+' } else { '-' });
        text.push_str(&(point - 1).abs().to_string());
    }
    text
}

/// JavaScript's `StringToNumber`: surrounding whitespace is ignored, an empty string is
/// 0, `0x`/`0o`/`0b` prefixes and `Infinity` are understood, anything else that is not a
/// decimal literal is `NaN`.
pub(super) fn string_to_number(text: &str) -> f64 {
    let text = text.trim_matches(is_js_whitespace);
    if text.is_empty() {
        return 0.0;
    }
    match text {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }

    let prefixed = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ];
    for (prefix, radix) in prefixed {
        if let Some(digits) = text.strip_prefix(prefix) {
            return parse_radix(digits, radix);
        }
    }

    if is_decimal_literal(text) {
        text.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let mut value = 0.0;
    for digit in digits.chars() {
        let Some(digit) = digit.to_digit(radix) else {
            return f64::NAN;
        };
        value = value * f64::from(radix) + f64::from(digit);
    }
    value
}

/// Checks whether `text` is a StrDecimalLiteral: an optional sign, digits with an optional
/// fraction (or a fraction alone), and an optional exponent. Rust's float parser also
/// accepts `inf` and `NaN`, which JavaScript does not.
fn is_decimal_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut position = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let count_digits = |position: &mut usize| {
        let start = *position;
        while bytes.get(*position).is_some_and(u8::is_ascii_digit) {
            *position += 1;
        }
        *position - start
    };

    let integer_digits = count_digits(&mut position);
    let mut fraction_digits = 0;
    if bytes.get(position) == Some(&b'.') {
        position += 1;
        fraction_digits = count_digits(&mut position);
    }
    if integer_digits + fraction_digits == 0 {
        return false;
    }
    if matches!(bytes.get(position), Some(b'e' | b'E')) {
        position += 1;
        if matches!(bytes.get(position), Some(b'+' | b'-')) {
            position += 1;
        }
        if count_digits(&mut position) == 0 {
            return false;
        }
    }
    position == bytes.len()
}

/// JavaScript's WhiteSpace and LineTerminator characters, which `trim` removes and
/// `ToNumber` ignores. Rust's `char::is_whitespace` differs in two places: it includes
/// U+0085 and excludes U+FEFF.
pub(super) fn is_js_whitespace(character: char) -> bool {
    match character {
        '\u{0085}' => false,
        '\u{feff}' => true,
        other => other.is_whitespace(),
    }
}

/// JavaScript's LineTerminator characters, which `.` in a regular expression does not
/// match.
pub(super) fn is_line_terminator(character: char) -> bool {
    matches!(character, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// JavaScript's `ToIntegerOrInfinity` applied to a number: `NaN` is 0, fractions are
/// truncated toward zero, infinities stay.
pub(super) fn to_integer_or_infinity(number: f64) -> f64 {
    if number.is_nan() {
        0.0
    } else {
        // `+ 0.0` turns -0 into 0.
        number.trunc() + 0.0
    }
}

/// Parses `key` as a canonical array index ("0", "17", not "017" or "1.0").
pub(super) fn array_index(key: &str) -> Option<usize> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // JavaScript array indexes stop at 2^32 - 2.
    key.parse::<u32>()
        .ok()
        .filter(|index| *index < u32::MAX)
        .map(|index| index as usize)
}
