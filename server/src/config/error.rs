use std::fmt;
use std::io;
use std::path::PathBuf;

/// A config file that cannot be used. Every variant names the file, and where it applies the
/// dotted key path and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An error in a file that uses environment variables which are not set.
    #[error("{source} (environment variables not set, so replaced by empty text: {variables})")]
    UnsetVariables {
        /// The unset variables as written in the file, such as `${PORT}`.
        variables: String,
        /// The error itself.
        source: Box<ConfigError>,
    },
    /// The file does not exist.
    #[error("file not found: {}", file.display())]
    NotFound {
        /// The missing file.
        file: PathBuf,
    },

    /// The file exists but reading it failed, or its content is not UTF-8.
    #[error("failed to read {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },

    /// The file is larger than any config file should be.
    #[error("failed to read {}: the file is larger than the maximum of {max_bytes} bytes", file.display())]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// The maximum size in bytes.
        max_bytes: u64,
    },

    /// The config file's name does not end in `.yml`, `.yaml` or `.json`.
    #[error(
        "unsupported config file {}: expected a name ending in .yml, .yaml or .json{}",
        file.display(),
        if *.javascript { " (JavaScript config files are not supported, convert it to YAML or JSON)" } else { "" }
    )]
    UnsupportedFormat {
        /// The file.
        file: PathBuf,
        /// Whether the name ends in `.js`, which deepstream accepts and this server does not.
        javascript: bool,
    },

    /// The file is not valid YAML or JSON.
    #[error("invalid {format} in {}{}: {message}", file.display(), PositionSuffix(*.position))]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The syntax the file was parsed as.
        format: FileFormat,
        /// The position where the parser stopped, when it reports one.
        position: Option<TextPosition>,
        /// The parser's message.
        message: String,
    },

    /// The file's top level is not a mapping of keys to values.
    #[error("invalid config in {}: expected a mapping of keys to values at the top level, found {found}", file.display())]
    NotAMapping {
        /// The file.
        file: PathBuf,
        /// A description of the value found.
        found: String,
    },

    /// An environment variable named by `${VAR}` has a value that is not valid Unicode.
    #[error(
        "invalid value of environment variable `{variable}`, used at line {line} of {}: expected valid Unicode",
        file.display()
    )]
    EnvNotUnicode {
        /// The file that names the variable.
        file: PathBuf,
        /// The line of the first `${VAR}` that names it, counted from 1.
        line: usize,
        /// The variable's name.
        variable: String,
    },

    /// A value has the wrong type or is out of range.
    #[error("invalid value for `{key}` in {}: expected {expected}, found {found}", file.display())]
    InvalidValue {
        /// The file.
        file: PathBuf,
        /// The dotted key path, such as `connectionEndpoints[0].options.heartbeatInterval`.
        key: String,
        /// A description of the values the key accepts.
        expected: String,
        /// A description of the value found.
        found: String,
    },

    /// A top-level key that deepstream does not know either.
    #[error(
        "unknown key `{key}` in {}{}; expected one of {expected}",
        file.display(),
        match .suggestion { Some(known) => format!(" (did you mean `{known}`?)"), None => String::new() }
    )]
    UnknownKey {
        /// The file.
        file: PathBuf,
        /// The unknown key.
        key: String,
        /// A known key with a similar spelling, if there is one.
        suggestion: Option<&'static str>,
        /// The known keys, comma separated.
        expected: String,
    },

    /// A setting that this server cannot provide and must not ignore, such as the `storage`
    /// authentication type.
    #[error("unsupported value for `{key}` in {}: {reason}", file.display())]
    Unsupported {
        /// The file.
        file: PathBuf,
        /// The dotted key path.
        key: String,
        /// The reason the value is rejected, with what to do instead.
        reason: String,
    },

    /// The permission rules are invalid.
    #[error("invalid permission rules, configured in {}:\n{source}", file.display())]
    Permissions {
        /// The config file with the `permission` section.
        file: PathBuf,
        /// Every problem found in the rules.
        #[source]
        source: Box<crate::permission::PermissionConfigError>,
    },

    /// A file named by `fileLoad(...)` is missing, unreadable or malformed.
    #[error("failed to load the file named by `{key}` in {}: {source}", file.display())]
    Include {
        /// The config file that contains the `fileLoad(...)`.
        file: PathBuf,
        /// The dotted key path of the `fileLoad(...)` value.
        key: String,
        /// The error with the named file.
        #[source]
        source: Box<ConfigError>,
    },
}

/// The syntax a file is parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// YAML 1.2, for `.yml` and `.yaml` files.
    Yaml,
    /// JSON, for `.json` files.
    Json,
}

/// A position in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPosition {
    /// The line, counted from 1.
    pub line: usize,
    /// The column, counted from 1.
    pub column: usize,
}

/// Formats an optional position as ` at line L, column C`, or as nothing.
struct PositionSuffix(Option<TextPosition>);

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Yaml => "YAML",
            FileFormat::Json => "JSON",
        })
    }
}

impl fmt::Display for PositionSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(position) => write!(f, " at line {}, column {}", position.line, position.column),
            None => Ok(()),
        }
    }
}
