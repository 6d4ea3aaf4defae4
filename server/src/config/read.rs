//! Typed reading of a value tree, with key paths for error messages and notices.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_yaml::{Mapping, Number, Value};

use super::{ConfigError, LogLevel, Notice};

/// The largest timeout in milliseconds, 2^31 - 1 (about 24.8 days). Node.js runs a timer with
/// a longer delay after 1 ms instead, so no working deepstream config goes past it.
pub(super) const MAX_MILLIS: u64 = 2_147_483_647;

/// A dotted key path such as `connectionEndpoints[0].options.heartbeatInterval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyPath(String);

/// Reads values of one config file and collects the notices that reading produces.
pub(super) struct Reader<'a> {
    file: &'a Path,
    notices: Vec<Notice>,
}

/// A type check for keys that this server accepts without using their value, written after
/// deepstream's schema so that the same files are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// `true` or `false`.
    Bool,
    /// A whole number of at least `min`.
    WholeNumber { min: u64 },
    /// Any number of at least `min`.
    Number { min: u64 },
    /// A non-empty string.
    Text,
    /// A non-empty string or null.
    TextOrNull,
    /// A log level name or number.
    LogLevel,
    /// A list of strings.
    Texts,
    /// A whole number of at least 1, or a boolean.
    WholeNumberOrBool,
    /// A mapping of keys to values.
    Mapping,
}

/// A number read as a whole number, if it is one.
enum Whole {
    Negative,
    NotNegative(u64),
    Fraction,
}

impl KeyPath {
    /// Returns the empty path of the top level.
    pub(super) fn root() -> Self {
        KeyPath(String::new())
    }

    /// Returns the path of a key inside this one.
    pub(super) fn key(&self, name: &str) -> KeyPath {
        if self.0.is_empty() {
            KeyPath(name.to_owned())
        } else {
            KeyPath(format!("{}.{name}", self.0))
        }
    }

    /// Returns the path of a list item inside this one.
    pub(super) fn index(&self, index: usize) -> KeyPath {
        KeyPath(format!("{}[{index}]", self.0))
    }
}

impl<'a> Reader<'a> {
    /// Starts reading values of `file`.
    pub(super) fn new(file: &'a Path) -> Self {
        Reader {
            file,
            notices: Vec::new(),
        }
    }

    /// Returns the notices collected so far.
    pub(super) fn into_notices(self) -> Vec<Notice> {
        self.notices
    }

    /// Returns the file being read.
    pub(super) fn file(&self) -> &'a Path {
        self.file
    }

    /// Builds the error for a value that is not what `path` accepts.
    pub(super) fn invalid(
        &self,
        path: &KeyPath,
        expected: impl Into<String>,
        found: &Value,
    ) -> ConfigError {
        ConfigError::InvalidValue {
            file: self.file.to_path_buf(),
            key: path.to_string(),
            expected: expected.into(),
            found: describe(found),
        }
    }

    /// Builds the error for a value this server must not accept.
    pub(super) fn unsupported(&self, path: &KeyPath, reason: impl Into<String>) -> ConfigError {
        ConfigError::Unsupported {
            file: self.file.to_path_buf(),
            key: path.to_string(),
            reason: reason.into(),
        }
    }

    /// Adds a notice about `path`.
    pub(super) fn notice(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.notices.push(Notice {
            key: path.to_string(),
            message: message.into(),
        });
    }

    /// Adds the notice for a deepstream key that this server accepts and ignores, unless the
    /// value requests nothing (null, `false`, or an empty list or mapping).
    pub(super) fn not_supported_yet(&mut self, path: &KeyPath, value: &Value) {
        if !is_empty_request(value) {
            self.notice(
                path,
                "accepted but not supported yet by this server, so it has no effect",
            );
        }
    }

    /// Adds the notice for a key that deepstream does not know inside a section it reads.
    pub(super) fn unknown_option(&mut self, path: &KeyPath) {
        let message = format!(
            "not a deepstream option in {}, so it is ignored, as deepstream ignores it too; \
             check its spelling",
            self.file.display()
        );
        self.notice(path, message);
    }

    /// Returns the entries of a mapping whose keys are all strings.
    pub(super) fn entries<'v>(
        &self,
        path: &KeyPath,
        value: &'v Value,
    ) -> Result<Vec<(&'v str, &'v Value)>, ConfigError> {
        let Value::Mapping(mapping) = value else {
            return Err(self.invalid(path, "a mapping of keys to values", value));
        };
        self.mapping_entries(path, mapping)
    }

    /// Returns the entries of `mapping`, or an error naming the first key that is not a string.
    pub(super) fn mapping_entries<'v>(
        &self,
        path: &KeyPath,
        mapping: &'v Mapping,
    ) -> Result<Vec<(&'v str, &'v Value)>, ConfigError> {
        mapping
            .iter()
            .map(|(key, value)| match key {
                Value::String(key) => Ok((key.as_str(), value)),
                other => Err(ConfigError::InvalidValue {
                    file: self.file.to_path_buf(),
                    key: path.to_string(),
                    expected: "keys that are strings".to_owned(),
                    found: format!("the key {}", describe(other)),
                }),
            })
            .collect()
    }

    /// Reads `true` or `false`.
    pub(super) fn boolean(&self, path: &KeyPath, value: &Value) -> Result<bool, ConfigError> {
        value
            .as_bool()
            .ok_or_else(|| self.invalid(path, "true or false", value))
    }

    /// Reads a whole number from `min` to `max`, where `unit` describes it as in "a whole number
    /// of bytes". A number with a fraction of zero, such as `1000.0`, is whole.
    pub(super) fn whole_number(
        &self,
        path: &KeyPath,
        value: &Value,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        let expected = || {
            if max == u64::MAX {
                format!("{unit}, at least {min}")
            } else {
                format!("{unit} from {min} to {max}")
            }
        };
        let Value::Number(number) = value else {
            return Err(self.invalid(path, expected(), value));
        };
        match whole(number) {
            Whole::NotNegative(number) if (min..=max).contains(&number) => Ok(number),
            Whole::NotNegative(_) | Whole::Negative | Whole::Fraction => {
                Err(self.invalid(path, expected(), value))
            }
        }
    }

    /// Reads a number of milliseconds of at least `min`.
    pub(super) fn millis(
        &self,
        path: &KeyPath,
        value: &Value,
        min: u64,
    ) -> Result<Duration, ConfigError> {
        let millis = self.whole_number(
            path,
            value,
            min,
            MAX_MILLIS,
            "a whole number of milliseconds",
        )?;
        Ok(Duration::from_millis(millis))
    }

    /// Reads a number of bytes of at least `min`.
    pub(super) fn bytes(
        &self,
        path: &KeyPath,
        value: &Value,
        min: u64,
    ) -> Result<usize, ConfigError> {
        let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        let bytes = self.whole_number(path, value, min, max, "a whole number of bytes")?;
        // The range check above keeps `bytes` within usize.
        Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
    }

    /// Reads a non-empty string.
    pub(super) fn text<'v>(
        &self,
        path: &KeyPath,
        value: &'v Value,
    ) -> Result<&'v str, ConfigError> {
        match value.as_str() {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(self.invalid(path, "a non-empty string", value)),
        }
    }

    /// Reads a URL path, which must start with `/` to ever match a request.
    pub(super) fn url_path(&self, path: &KeyPath, value: &Value) -> Result<String, ConfigError> {
        match value.as_str() {
            Some(text) if text.starts_with('/') => Ok(text.to_owned()),
            _ => Err(self.invalid(path, "a URL path starting with `/`", value)),
        }
    }

    /// Reads a list of strings.
    pub(super) fn texts(&self, path: &KeyPath, value: &Value) -> Result<Vec<String>, ConfigError> {
        let Value::Sequence(items) = value else {
            return Err(self.invalid(path, "a list of strings", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| match item.as_str() {
                Some(text) => Ok(text.to_owned()),
                None => Err(self.invalid(&path.index(index), "a string", item)),
            })
            .collect()
    }

    /// Reads an absolute URI, such as an allowed origin.
    pub(super) fn uri(&self, path: &KeyPath, value: &Value) -> Result<String, ConfigError> {
        match value.as_str() {
            Some(text) if is_absolute_uri(text) => Ok(text.to_owned()),
            _ => Err(self.invalid(path, "an absolute URI such as `https://example.com`", value)),
        }
    }

    /// Reads a log level: one of deepstream's names in any case, or its number.
    pub(super) fn log_level(&self, path: &KeyPath, value: &Value) -> Result<LogLevel, ConfigError> {
        let level = match value {
            Value::String(name) => LogLevel::from_name(name),
            Value::Number(number) => match number.as_u64() {
                Some(0) => Some(LogLevel::Debug),
                Some(1) => Some(LogLevel::Info),
                Some(2) => Some(LogLevel::Warn),
                Some(3) => Some(LogLevel::Error),
                Some(100) => Some(LogLevel::Off),
                _ => None,
            },
            _ => None,
        };
        level.ok_or_else(|| {
            self.invalid(
                path,
                "one of DEBUG, INFO, WARN, ERROR, OFF (or 0, 1, 2, 3, 100)",
                value,
            )
        })
    }

    /// Checks a value that this server accepts without using it.
    pub(super) fn check(
        &self,
        path: &KeyPath,
        value: &Value,
        check: Check,
    ) -> Result<(), ConfigError> {
        match check {
            Check::Bool => self.boolean(path, value).map(drop),
            Check::WholeNumber { min } => self
                .whole_number(path, value, min, u64::MAX, "a whole number")
                .map(drop),
            Check::Number { min } => match value.as_f64() {
                Some(number) if number >= min as f64 => Ok(()),
                _ => Err(self.invalid(path, format!("a number, at least {min}"), value)),
            },
            Check::Text => self.text(path, value).map(drop),
            Check::TextOrNull if value.is_null() => Ok(()),
            Check::TextOrNull => self.text(path, value).map(drop),
            Check::LogLevel => self.log_level(path, value).map(drop),
            Check::Texts => self.texts(path, value).map(drop),
            Check::WholeNumberOrBool if value.is_bool() => Ok(()),
            Check::WholeNumberOrBool => self
                .whole_number(path, value, 1, u64::MAX, "true, false or a whole number")
                .map(drop),
            Check::Mapping => self.entries(path, value).map(drop),
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Describes a value for an error message: its type, and the value itself for a scalar.
/// Strings are cut after 40 characters.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(value) => format!("the boolean {value}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) if text.chars().count() > 40 => {
            let start: String = text.chars().take(40).collect();
            format!("a string ({start:?}...)")
        }
        Value::String(text) => format!("a string ({text:?})"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(tagged) => format!("a value tagged {}", tagged.tag),
    }
}

/// Returns whether a value requests nothing: null, `false`, or an empty list or mapping.
pub(super) fn is_empty_request(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Sequence(items) => items.is_empty(),
        Value::Mapping(mapping) => mapping.is_empty(),
        _ => false,
    }
}

fn whole(number: &Number) -> Whole {
    if let Some(number) = number.as_u64() {
        return Whole::NotNegative(number);
    }
    if number.as_i64().is_some() {
        return Whole::Negative;
    }
    match number.as_f64() {
        Some(float) if float.is_finite() && float.fract() == 0.0 => {
            if float < 0.0 {
                Whole::Negative
            } else {
                // `as` saturates, and any float at or above 2^64 is out of every range anyway.
                Whole::NotNegative(float as u64)
            }
        }
        _ => Whole::Fraction,
    }
}

/// Returns whether `text` has a URI scheme (`https:`) followed by more text and no
/// whitespace, the part of an absolute URI's syntax that a config mistake usually breaks.
fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    let scheme_valid = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_valid && !rest.is_empty() && !text.chars().any(char::is_whitespace)
}
