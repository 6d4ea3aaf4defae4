//! Turning a file into a value tree: reading with a size limit, `${VAR}` substitution and
//! parsing.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde_yaml::Value;

use super::{ConfigError, FileFormat, Notice, TextPosition};

/// Looks up an environment variable by name. Tests pass a table of their own.
pub(super) type EnvLookup = dyn Fn(&str) -> Option<OsString>;

/// The maximum size of a config file or of a `fileLoad(...)` target. Config files are a few
/// kilobytes; the limit keeps a path such as `/dev/zero` from filling memory.
pub(super) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The comment syntax that `${VAR}` substitution skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Comments {
    /// YAML: `#` at the start of a line or after a space or tab, outside quotes.
    Yaml,
    /// JSON and plain text: nowhere.
    None,
}

/// Looks up a variable in the environment of this process.
pub(super) fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Returns the syntax of a config file, chosen by its extension as deepstream does.
pub(super) fn config_format(path: &Path) -> Result<FileFormat, ConfigError> {
    let extension = path
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("yml" | "yaml") => Ok(FileFormat::Yaml),
        Some("json") => Ok(FileFormat::Json),
        other => Err(ConfigError::UnsupportedFormat {
            file: path.to_path_buf(),
            javascript: other == Some("js"),
        }),
    }
}

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`], without a leading byte order mark.
pub(super) fn read_file(path: &Path) -> Result<String, ConfigError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ConfigError::NotFound {
            file: path.to_path_buf(),
        },
        _ => ConfigError::Read {
            file: path.to_path_buf(),
            source,
        },
    })?;

    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            file: path.to_path_buf(),
            max_bytes: MAX_FILE_BYTES,
        });
    }

    let text = String::from_utf8(bytes).map_err(|error| ConfigError::Read {
        file: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, error),
    })?;
    match text.strip_prefix('\u{feff}') {
        Some(rest) => Ok(rest.to_owned()),
        None => Ok(text),
    }
}

/// Replaces each `${NAME}` with the value of the environment variable `NAME`, like deepstream.
///
/// A variable that is not set becomes an empty string and adds one notice per name. Text in
/// YAML comments is left alone, so commented-out examples neither change nor add notices.
/// NOTE: the comment scan does not know block scalars (`|`, `>`), so a ` #` inside one ends
/// substitution for the rest of that line.
pub(super) fn substitute_env(
    file: &Path,
    text: &str,
    comments: Comments,
    env: &EnvLookup,
    notices: &mut Vec<Notice>,
) -> Result<String, ConfigError> {
    let bytes = text.as_bytes();
    let mut output = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    let mut scanner = CommentScanner::new(comments);
    let mut line = 1;
    let mut unset_reported = HashSet::new();

    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if !scanner.in_comment() && byte == b'$' && bytes.get(index + 1) == Some(&b'{') {
            if let Some(name) = variable_name(&text[index + 2..]) {
                output.push_str(&text[copied_up_to..index]);
                let value = lookup(file, line, name, env)?;
                match value {
                    Some(value) => output.push_str(&value),
                    None => {
                        if unset_reported.insert(name) {
                            notices.push(unset_notice(file, line, name));
                        }
                    }
                }
                index += name.len() + 3;
                copied_up_to = index;
                scanner.after_content();
                continue;
            }
        }

        scanner.advance(bytes, index);
        if byte == b'\n' {
            line += 1;
        }
        index += 1;
    }

    output.push_str(&text[copied_up_to..]);
    Ok(output)
}

/// Parses YAML or JSON text into a value tree, with YAML merge keys (`<<`) applied.
pub(super) fn parse(file: &Path, text: &str, format: FileFormat) -> Result<Value, ConfigError> {
    match format {
        FileFormat::Yaml => parse_yaml(file, text),
        FileFormat::Json => parse_json(file, text),
    }
}

fn parse_yaml(file: &Path, text: &str) -> Result<Value, ConfigError> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|error| {
        let position = error.location().map(|location| TextPosition {
            line: location.line(),
            column: location.column(),
        });
        syntax_error(file, FileFormat::Yaml, position, &error.to_string())
    })?;
    value
        .apply_merge()
        .map_err(|error| syntax_error(file, FileFormat::Yaml, None, &error.to_string()))?;
    Ok(value)
}

fn parse_json(file: &Path, text: &str) -> Result<Value, ConfigError> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|error| {
        let position = (error.line() > 0).then(|| TextPosition {
            line: error.line(),
            column: error.column(),
        });
        syntax_error(file, FileFormat::Json, position, &error.to_string())
    })?;
    serde_yaml::to_value(json)
        .map_err(|error| syntax_error(file, FileFormat::Json, None, &error.to_string()))
}

/// Builds a syntax error whose message does not repeat the position, which the error's
/// display adds itself.
fn syntax_error(
    file: &Path,
    format: FileFormat,
    position: Option<TextPosition>,
    message: &str,
) -> ConfigError {
    let message = match position {
        Some(position) => message.replacen(
            &format!(" at line {} column {}", position.line, position.column),
            "",
            1,
        ),
        None => message.to_owned(),
    };
    ConfigError::Syntax {
        file: file.to_path_buf(),
        format,
        position,
        message,
    }
}

/// Returns the name in `NAME}...` when the text starts with one: at least one character and
/// no line break before the closing brace, as in deepstream's `\${([^}]+)}` apart from line
/// breaks.
fn variable_name(rest: &str) -> Option<&str> {
    let end = rest.find(['}', '\n'])?;
    (end > 0 && rest.as_bytes()[end] == b'}').then(|| &rest[..end])
}

fn lookup(
    file: &Path,
    line: usize,
    name: &str,
    env: &EnvLookup,
) -> Result<Option<String>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(value) => value
            .into_string()
            .map(Some)
            .map_err(|_| ConfigError::EnvNotUnicode {
                file: file.to_path_buf(),
                line,
                variable: name.to_owned(),
            }),
    }
}

fn unset_notice(file: &Path, line: usize, name: &str) -> Notice {
    Notice {
        key: format!("${{{name}}}"),
        message: format!(
            "environment variable `{name}` is not set, so its use at line {line} of {} \
             (and any later one in that file) was replaced by an empty string",
            file.display()
        ),
    }
}

/// Tracks whether a byte of YAML text is inside a comment, one byte at a time.
struct CommentScanner {
    comments: Comments,
    state: ScanState,
    /// The last byte other than a space or tab on the current line, outside quotes and
    /// comments, used to tell an opening quote from an apostrophe inside a plain scalar.
    last_significant: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// Inside a double-quoted scalar, right after a backslash.
    DoubleQuotedEscape,
    /// Inside a single-quoted scalar, right after a quote that may be the first of `''`.
    SingleQuotedQuote,
    Comment,
}

impl CommentScanner {
    fn new(comments: Comments) -> Self {
        CommentScanner {
            comments,
            state: ScanState::Plain,
            last_significant: None,
        }
    }

    fn in_comment(&self) -> bool {
        self.state == ScanState::Comment
    }

    /// Records that substituted text was written, which counts as scalar content.
    fn after_content(&mut self) {
        if self.state == ScanState::Plain {
            self.last_significant = Some(b'$');
        }
    }

    fn advance(&mut self, bytes: &[u8], index: usize) {
        if self.comments == Comments::None {
            return;
        }
        let byte = bytes[index];

        if self.state == ScanState::SingleQuotedQuote {
            // A second quote is an escaped quote; anything else ended the scalar.
            if byte == b'\'' {
                self.state = ScanState::SingleQuoted;
                return;
            }
            self.state = ScanState::Plain;
            self.last_significant = Some(b'\'');
        }

        self.state = match (self.state, byte) {
            (ScanState::Comment, b'\n') => ScanState::Plain,
            (ScanState::Comment, _) => ScanState::Comment,
            (ScanState::DoubleQuotedEscape, _) => ScanState::DoubleQuoted,
            (ScanState::DoubleQuoted, b'\\') => ScanState::DoubleQuotedEscape,
            (ScanState::DoubleQuoted, b'"') => {
                self.last_significant = Some(b'"');
                ScanState::Plain
            }
            (ScanState::DoubleQuoted, _) => ScanState::DoubleQuoted,
            (ScanState::SingleQuoted, b'\'') => ScanState::SingleQuotedQuote,
            (ScanState::SingleQuoted, _) => ScanState::SingleQuoted,
            (ScanState::Plain, _) => self.advance_plain(bytes, index),
            (ScanState::SingleQuotedQuote, _) => ScanState::Plain,
        };

        if byte == b'\n' && self.state == ScanState::Plain {
            self.last_significant = None;
        }
    }

    fn advance_plain(&mut self, bytes: &[u8], index: usize) -> ScanState {
        let byte = bytes[index];
        let after_space = index == 0 || matches!(bytes[index - 1], b' ' | b'\t' | b'\n' | b'\r');
        let scalar_can_start = matches!(
            self.last_significant,
            None | Some(b':' | b'-' | b'[' | b'{' | b',' | b'?')
        );

        match byte {
            b'#' if after_space => ScanState::Comment,
            b'\'' if scalar_can_start => ScanState::SingleQuoted,
            b'"' if scalar_can_start => ScanState::DoubleQuoted,
            b' ' | b'\t' | b'\r' | b'\n' => ScanState::Plain,
            _ => {
                self.last_significant = Some(byte);
                ScanState::Plain
            }
        }
    }
}
