//! The `auth` section: the authentication services that a login is checked against, in order.
//!
//! deepstream 7.0 reads `auth` as a list. Each entry gives its decision or leaves the login to
//! the next entry, and a login that no entry decides is rejected. A single mapping is read as
//! a list of one entry.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use super::ConfigError;
use super::read::{Check, KeyPath, Reader};
use super::services::read_plugin;
use crate::auth::{UsersError, UsersTable};

/// One entry of the `auth` list.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthConfig {
    /// `type: none`: every login is accepted, under the name in `authData.username`.
    Open,
    /// `type: file`: user names and passwords from a users file.
    File(FileAuthConfig),
    /// `type: http`: an HTTP endpoint of the application decides.
    Http(HttpAuthConfig),
}

/// Settings of file authentication (`auth[].options` of `type: file`).
#[derive(Debug, Clone, PartialEq)]
pub struct FileAuthConfig {
    /// The source of the users (`path` or `users`).
    pub users: UsersSource,
    /// The hash settings of the stored passwords (`hash`, `iterations`, `keyLength`), or `None`
    /// when the users file stores plain-text passwords.
    pub hash: Option<HashSettings>,
    /// Whether a wrong password, or a login without a username or password, is rejected here
    /// (`reportInvalidParameters`) instead of being left to the next entry of the list.
    pub report_invalid_parameters: bool,
}

/// The source of the users of file authentication.
#[derive(Clone, PartialEq)]
pub enum UsersSource {
    /// `path`: a YAML or JSON users file, read when the server starts.
    File(PathBuf),
    /// `users`: the users written into the configuration, usually as `fileLoad(users.yml)`.
    Inline(UsersTable),
}

/// The PBKDF2 settings of hashed passwords, which the hash and the `deepstream hash` command
/// share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSettings {
    /// The HMAC digest (`hash`).
    pub algorithm: HashAlgorithm,
    /// The PBKDF2 iteration count (`iterations`).
    pub iterations: u32,
    /// The length of the derived key in bytes (`keyLength`).
    pub key_length: usize,
}

/// A digest for PBKDF2, named as Node.js's `crypto` module names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// `md5`, the digest of deepstream's shipped configuration.
    Md5,
    /// `sha1`.
    Sha1,
    /// `sha224`.
    Sha224,
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
    /// `sha512-224`.
    Sha512_224,
    /// `sha512-256`.
    Sha512_256,
}

/// Settings of HTTP authentication (`auth[].options` of `type: http`). Every field except
/// `promote_to_header` and `report_invalid_parameters` is required, as in deepstream.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAuthConfig {
    /// The URL that each login is posted to (`endpointUrl`).
    pub endpoint_url: WebhookUrl,
    /// The response statuses that accept a login (`permittedStatusCodes`).
    pub permitted_status_codes: Vec<u16>,
    /// How long one request may take, from connecting to the end of the response body
    /// (`requestTimeout`).
    pub request_timeout: Duration,
    /// The response statuses after which the request is sent again (`retryStatusCodes`).
    pub retry_status_codes: Vec<u16>,
    /// How many times a request is sent again after a failure or a retry status
    /// (`retryAttempts`).
    pub retry_attempts: u32,
    /// The pause before each retry (`retryInterval`).
    pub retry_interval: Duration,
    /// The fields of the login data that are also sent as request headers of the same name
    /// (`promoteToHeader`).
    pub promote_to_header: Vec<String>,
    /// Whether a status that is not permitted, or running out of retries, rejects the login
    /// here (`reportInvalidParameters`) instead of leaving it to the next entry of the list.
    pub report_invalid_parameters: bool,
}

/// The `http://` URL of an authentication endpoint. Its `Debug` and `Display` output leave out
/// the user name, password and query, which may hold credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(reqwest::Url);

/// The auth types of deepstream 7.0's schema.
const AUTH_TYPES: &[&str] = &["none", "file", "http", "storage"];

/// The options that deepstream 7.0's schema checks in every auth entry, whatever its type.
/// Its `hash`, `endpointUrl`, `permittedStatusCodes` and `requestTimeout` are checked by the
/// reading of their type instead, which accepts `hash: false`, keeps a URL that may hold a
/// password out of error messages, and checks the HTTP options more closely.
const AUTH_OPTIONS: &[(&str, Check)] = &[
    ("iterations", Check::WholeNumber { min: 1 }),
    ("keyLength", Check::WholeNumber { min: 1 }),
    ("createUser", Check::Bool),
    ("table", Check::Text),
];

/// The largest `keyLength` this server accepts. PBKDF2 allows longer keys, but every byte
/// past the digest's size only adds work, and each login allocates the key.
const MAX_KEY_LENGTH: u64 = 4096;

impl HashSettings {
    /// The settings of deepstream's shipped `config.yml` (`md5`, 100 iterations, 32-byte keys),
    /// which `deepstream hash` uses when the configuration has no file authentication.
    pub const DEEPSTREAM_DEFAULT: HashSettings = HashSettings {
        algorithm: HashAlgorithm::Md5,
        iterations: 100,
        key_length: 32,
    };
}

impl HashAlgorithm {
    /// Every digest this server supports.
    pub const ALL: [HashAlgorithm; 8] = [
        HashAlgorithm::Md5,
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha512_224,
        HashAlgorithm::Sha512_256,
    ];

    /// Parses Node.js's name of a digest, such as `sha256`. Names are case-sensitive, as in
    /// deepstream's check of the `hash` option.
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
    }

    /// Returns Node.js's name of the digest.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha224 => "sha224",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Sha512_224 => "sha512-224",
            HashAlgorithm::Sha512_256 => "sha512-256",
        }
    }
}

impl WebhookUrl {
    /// Parses an `http://` URL with a host. Returns a description of the problem otherwise.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let url = reqwest::Url::parse(text).map_err(|error| format!("not a URL ({error})"))?;
        match url.scheme() {
            "http" if url.host().is_some() => Ok(WebhookUrl(url)),
            "http" => Err("a URL without a host".to_owned()),
            "https" => {
                Err("an https:// URL, and TLS is not supported yet by this server".to_owned())
            }
            other => Err(format!("a URL with the scheme `{other}`")),
        }
    }

    /// Returns the whole URL, credentials included, for sending requests to it.
    pub fn url(&self) -> &reqwest::Url {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        let host = url.host_str().unwrap_or_default();
        match url.port() {
            Some(port) => write!(f, "{}://{host}:{port}{}", url.scheme(), url.path()),
            None => write!(f, "{}://{host}{}", url.scheme(), url.path()),
        }
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({self})")
    }
}

impl fmt::Debug for UsersSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersSource::File(path) => f.debug_tuple("File").field(path).finish(),
            // The table's own Debug output hides the passwords.
            UsersSource::Inline(users) => f.debug_tuple("Inline").field(users).finish(),
        }
    }
}

/// Reads `auth`: a list of `{type, options}` entries, or one such entry.
pub(super) fn auth(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<Vec<AuthConfig>, ConfigError> {
    let entries: Vec<(KeyPath, &Value)> = match value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| (path.index(index), item))
            .collect(),
        Value::Mapping(_) => vec![(path.clone(), value)],
        _ => return Err(reader.invalid(path, "a list of authentication entries", value)),
    };
    if entries.is_empty() {
        return Err(reader.invalid(path, "at least one authentication entry", value));
    }

    // deepstream lets an entry of a longer list pass on the logins it cannot decide, unless
    // `reportInvalidParameters` is set to true.
    let report_by_default = entries.len() == 1;
    entries
        .into_iter()
        .map(|(entry_path, entry)| read_entry(reader, &entry_path, entry, report_by_default))
        .collect()
}

fn read_entry(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    entry: &Value,
    report_by_default: bool,
) -> Result<AuthConfig, ConfigError> {
    let plugin = read_plugin(reader, path, entry, AUTH_TYPES, AUTH_OPTIONS)?;
    if plugin.is_plugin {
        return Err(reader.unsupported(
            path,
            "custom authentication plugins are not supported yet by this server, so it does not \
             start rather than skip the checks the plugin would make. Use the auth type none, \
             file or http",
        ));
    }
    let options_path = path.key("options");
    let options = entry.get("options");
    match plugin.kind {
        Some("none") => Ok(AuthConfig::Open),
        Some("file") => {
            let options = required_options(reader, &options_path, options, "file")?;
            file_options(reader, &options_path, options, report_by_default).map(AuthConfig::File)
        }
        Some("http") => {
            let options = required_options(reader, &options_path, options, "http")?;
            http_options(reader, &options_path, options, report_by_default).map(AuthConfig::Http)
        }
        Some(kind) => Err(reader.unsupported(
            &path.key("type"),
            format!(
                "auth type `{kind}` is not supported yet by this server, which supports none, \
                 file and http, so it does not start rather than accept every login"
            ),
        )),
        None => Err(reader.invalid(
            &path.key("type"),
            format!("one of {}", AUTH_TYPES.join(", ")),
            &Value::Null,
        )),
    }
}

fn required_options<'v>(
    reader: &Reader<'_>,
    path: &KeyPath,
    options: Option<&'v Value>,
    kind: &str,
) -> Result<&'v Value, ConfigError> {
    match options {
        Some(options @ Value::Mapping(_)) => Ok(options),
        other => Err(reader.invalid(
            path,
            format!("a mapping with the options of auth type {kind}"),
            other.unwrap_or(&Value::Null),
        )),
    }
}

fn file_options(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: &Value,
    report_by_default: bool,
) -> Result<FileAuthConfig, ConfigError> {
    let mut users_file = None;
    let mut inline_users = None;
    let mut algorithm = None;
    let mut iterations = None;
    let mut key_length = None;
    let mut report_invalid_parameters = report_by_default;

    for (key, value) in reader.entries(path, options)? {
        let key_path = path.key(key);
        match key {
            "path" => users_file = Some(users_file_path(reader, &key_path, value)?),
            "users" => inline_users = Some(read_inline_users(reader, &key_path, value)?),
            "hash" => algorithm = read_algorithm(reader, &key_path, value)?,
            "iterations" => {
                let count = reader.whole_number(
                    &key_path,
                    value,
                    1,
                    u64::from(u32::MAX),
                    "a whole number",
                )?;
                // The range check above keeps `count` within u32.
                iterations = Some(u32::try_from(count).unwrap_or(u32::MAX));
            }
            "keyLength" => {
                let bytes = reader.whole_number(
                    &key_path,
                    value,
                    1,
                    MAX_KEY_LENGTH,
                    "a number of bytes",
                )?;
                // The range check above keeps `bytes` within usize.
                key_length = Some(usize::try_from(bytes).unwrap_or(1));
            }
            "reportInvalidParameters" => {
                report_invalid_parameters = reader.boolean(&key_path, value)?;
            }
            _ => reader.notice(
                &key_path,
                "not an option of file authentication, so it is ignored",
            ),
        }
    }

    let users = match (users_file, inline_users) {
        (Some(file), Some(_)) => {
            reader.notice(
                &path.key("users"),
                "ignored because `path` is set, as in deepstream, which reads the users from \
                 the file that `path` names",
            );
            UsersSource::File(file)
        }
        (Some(file), None) => UsersSource::File(file),
        (None, Some(users)) => UsersSource::Inline(users),
        (None, None) => {
            return Err(reader.invalid(
                &path.key("path"),
                "the users file of file authentication (or the users themselves in `users`)",
                &Value::Null,
            ));
        }
    };
    let hash = match algorithm {
        Some(algorithm) => Some(HashSettings {
            algorithm,
            iterations: required(reader, path, "iterations", iterations)?,
            key_length: required(reader, path, "keyLength", key_length)?,
        }),
        None => None,
    };
    Ok(FileAuthConfig {
        users,
        hash,
        report_invalid_parameters,
    })
}

/// Returns a value that `hash` requires, or the error naming its key.
fn required<T>(
    reader: &Reader<'_>,
    path: &KeyPath,
    key: &str,
    value: Option<T>,
) -> Result<T, ConfigError> {
    value.ok_or_else(|| {
        reader.invalid(
            &path.key(key),
            "a whole number, which `hash` requires",
            &Value::Null,
        )
    })
}

/// Reads `path`, which deepstream resolves against the config file's folder.
fn users_file_path(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<PathBuf, ConfigError> {
    let text = reader.text(path, value)?;
    let file = Path::new(text);
    if file.is_absolute() {
        return Ok(file.to_path_buf());
    }
    let config_file =
        std::path::absolute(reader.file()).unwrap_or_else(|_| reader.file().to_path_buf());
    let folder = config_file.parent().unwrap_or(Path::new("."));
    Ok(folder.join(file))
}

fn read_inline_users(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<UsersTable, ConfigError> {
    let json = serde_json::to_value(value).map_err(|_| {
        reader.invalid(
            path,
            "a mapping of user names to entries, with string keys",
            value,
        )
    })?;
    UsersTable::from_json(json).map_err(|error| {
        let key = match error.user() {
            Some(user) => path.key(user),
            None => path.clone(),
        };
        invalid_users(reader, &key, &error)
    })
}

fn invalid_users(reader: &Reader<'_>, path: &KeyPath, error: &UsersError) -> ConfigError {
    ConfigError::InvalidValue {
        file: reader.file().to_path_buf(),
        key: path.to_string(),
        expected: "a mapping of user names to entries with a `password` string, and \
                   optionally `clientData` and `serverData`"
            .to_owned(),
        found: error.to_string(),
    }
}

/// Reads `hash`: a digest name, or `false` for plain-text passwords.
fn read_algorithm(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<Option<HashAlgorithm>, ConfigError> {
    // deepstream 7.0's schema requires a string, but its file authentication reads any false
    // value as plain-text passwords.
    if matches!(value, Value::Bool(false) | Value::Null) {
        return Ok(None);
    }
    let names = || {
        let names: Vec<&str> = HashAlgorithm::ALL
            .iter()
            .map(|algorithm| algorithm.name())
            .collect();
        names.join(", ")
    };
    let name = reader.text(path, value).map_err(|_| {
        reader.invalid(path, format!("a digest name ({}) or false", names()), value)
    })?;
    match HashAlgorithm::from_name(name) {
        Some(algorithm) => Ok(Some(algorithm)),
        None => Err(reader.invalid(
            path,
            format!("one of the digests this server supports: {}", names()),
            value,
        )),
    }
}

fn http_options(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: &Value,
    report_by_default: bool,
) -> Result<HttpAuthConfig, ConfigError> {
    let mut endpoint_url = None;
    let mut permitted_status_codes = None;
    let mut request_timeout = None;
    let mut retry_status_codes = None;
    let mut retry_attempts = None;
    let mut retry_interval = None;
    let mut promote_to_header = Vec::new();
    let mut report_invalid_parameters = report_by_default;

    for (key, value) in reader.entries(path, options)? {
        let key_path = path.key(key);
        match key {
            "endpointUrl" => endpoint_url = Some(read_webhook_url(reader, &key_path, value)?),
            "permittedStatusCodes" => {
                permitted_status_codes = Some(status_codes(reader, &key_path, value)?);
            }
            "requestTimeout" => request_timeout = Some(reader.millis(&key_path, value, 1)?),
            "retryStatusCodes" => {
                retry_status_codes = Some(status_codes(reader, &key_path, value)?);
            }
            "retryAttempts" => {
                let count = reader.whole_number(
                    &key_path,
                    value,
                    0,
                    u64::from(u32::MAX),
                    "a whole number",
                )?;
                // The range check above keeps `count` within u32.
                retry_attempts = Some(u32::try_from(count).unwrap_or(u32::MAX));
            }
            "retryInterval" => retry_interval = Some(reader.millis(&key_path, value, 0)?),
            "promoteToHeader" => promote_to_header = header_names(reader, &key_path, value)?,
            "reportInvalidParameters" => {
                report_invalid_parameters = reader.boolean(&key_path, value)?;
            }
            _ => reader.notice(
                &key_path,
                "not an option of http authentication, so it is ignored",
            ),
        }
    }

    let missing =
        |key: &str, expected: &str| reader.invalid(&path.key(key), expected, &Value::Null);
    Ok(HttpAuthConfig {
        endpoint_url: endpoint_url
            .ok_or_else(|| missing("endpointUrl", "the http:// URL that logins are posted to"))?,
        permitted_status_codes: permitted_status_codes.ok_or_else(|| {
            missing(
                "permittedStatusCodes",
                "a list of the HTTP statuses that accept a login",
            )
        })?,
        request_timeout: request_timeout
            .ok_or_else(|| missing("requestTimeout", "a whole number of milliseconds"))?,
        retry_status_codes: retry_status_codes.ok_or_else(|| {
            missing(
                "retryStatusCodes",
                "a list of the HTTP statuses after which a request is sent again (may be empty)",
            )
        })?,
        retry_attempts: retry_attempts
            .ok_or_else(|| missing("retryAttempts", "a whole number (may be 0)"))?,
        retry_interval: retry_interval
            .ok_or_else(|| missing("retryInterval", "a whole number of milliseconds"))?,
        promote_to_header,
        report_invalid_parameters,
    })
}

fn read_webhook_url(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<WebhookUrl, ConfigError> {
    let text = reader.text(path, value)?;
    // The problem alone describes the value, because the URL may contain a password.
    WebhookUrl::parse(text).map_err(|problem| ConfigError::InvalidValue {
        file: reader.file().to_path_buf(),
        key: path.to_string(),
        expected: "an http:// URL with a host".to_owned(),
        found: problem,
    })
}

fn status_codes(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<Vec<u16>, ConfigError> {
    let Value::Sequence(items) = value else {
        return Err(reader.invalid(path, "a list of HTTP statuses", value));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let status =
                reader.whole_number(&path.index(index), item, 100, 599, "an HTTP status")?;
            // The range check above keeps `status` within u16.
            Ok(u16::try_from(status).unwrap_or(599))
        })
        .collect()
}

fn header_names(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<Vec<String>, ConfigError> {
    let names = reader.texts(path, value)?;
    for (index, name) in names.iter().enumerate() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(reader.invalid(
                &path.index(index),
                "a field name that is also a valid HTTP header name",
                &Value::String(name.clone()),
            ));
        }
    }
    Ok(names)
}
