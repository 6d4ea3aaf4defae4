//! Loading one config file and reading its top-level keys and general settings.

use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_yaml::Value;

use super::include::Includes;
use super::read::{Check, KeyPath, Reader};
use super::text::{self, Comments, EnvLookup};
use super::{
    AuthConfig, Config, ConfigError, EnabledFeatures, FileFormat, ListenConfig, Loaded, RpcConfig,
    auth, endpoints, monitoring, permission, services, storage,
};

/// The top-level keys of deepstream 7.0's config schema, which are all this loader accepts.
pub(super) const TOP_LEVEL_KEYS: &[&str] = &[
    "libDir",
    "serverName",
    "showLogo",
    "exitOnFatalError",
    "dependencyInitializationTimeout",
    "logLevel",
    "enabledFeatures",
    "rpc",
    "record",
    "listen",
    "httpServer",
    "connectionEndpoints",
    "logger",
    "cache",
    "storage",
    "auth",
    "permission",
    "subscriptions",
    "monitoring",
    "telemetry",
    "locks",
    "clusterNode",
    "clusterRegistry",
    "clusterStates",
    "plugins",
];

/// Loads a config file with `env` as the environment.
/// Reads only the `auth` section of the config file at `path`, for `deepstream hash`. The
/// users of file authentication (`users`, `path`) are left out and no `fileLoad(...)` is
/// resolved, so a users file or permission file that does not exist yet is no error.
pub(super) fn load_auth(path: &Path, env: &EnvLookup) -> Result<Vec<AuthConfig>, ConfigError> {
    let format = text::config_format(path)?;
    let raw = text::read_file(path)?;
    let comments = match format {
        FileFormat::Yaml => Comments::Yaml,
        FileFormat::Json => Comments::None,
    };
    let substituted = text::substitute_env(path, &raw, comments, env, &mut Vec::new())?;
    let root = text::parse(path, &substituted, format)?;
    let Some(auth) = root.get("auth") else {
        return Ok(vec![AuthConfig::Open]);
    };

    let mut auth = auth.clone();
    let entries: Vec<&mut Value> = match &mut auth {
        Value::Sequence(items) => items.iter_mut().collect(),
        other => vec![other],
    };
    for entry in entries {
        if let Some(Value::Mapping(options)) = entry.get_mut("options") {
            // A users file named by `path` is read only when the server starts, so a
            // placeholder lets the entry load without its users.
            options.remove("users");
            options.insert(
                Value::String("path".to_owned()),
                Value::String("users.yml".to_owned()),
            );
        }
    }
    let mut reader = Reader::new(path);
    auth::auth(&mut reader, &KeyPath::root().key("auth"), &auth)
}

pub(super) fn load(path: &Path, env: &EnvLookup) -> Result<Loaded, ConfigError> {
    let format = text::config_format(path)?;
    let raw = text::read_file(path)?;

    let mut notices = Vec::new();
    let comments = match format {
        FileFormat::Yaml => Comments::Yaml,
        FileFormat::Json => Comments::None,
    };
    let substituted = text::substitute_env(path, &raw, comments, env, &mut notices)?;
    let mut root =
        text::parse(path, &substituted, format).map_err(|error| with_unset(error, &notices))?;
    Includes::new(path, env, &mut notices)
        .resolve(&KeyPath::root(), &mut root)
        .map_err(|error| with_unset(error, &notices))?;

    let mut reader = Reader::new(path);
    let mut config =
        read_config(&mut reader, &root).map_err(|error| with_unset(error, &notices))?;
    config.source = Some(path.to_path_buf());
    notices.extend(reader.into_notices());

    tracing::debug!(file = %path.display(), notices = notices.len(), "loaded config file");
    Ok(Loaded { config, notices })
}

/// Adds the unset environment variables to an error, since an empty
/// substitution is a likely cause of it.
fn with_unset(error: ConfigError, notices: &[super::Notice]) -> ConfigError {
    let variables: Vec<String> = notices
        .iter()
        .filter(|notice| notice.key.starts_with("${"))
        .map(|notice| notice.key.clone())
        .collect();
    if variables.is_empty() {
        return error;
    }
    ConfigError::UnsetVariables {
        variables: variables.join(", "),
        source: Box::new(error),
    }
}

/// Returns a name that differs between servers, in deepstream's format: the time in
/// milliseconds and a random number, both in base 36.
pub(super) fn generate_server_name() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    // RandomState's keys come from the operating system's random source, which is enough for
    // a name that is not a secret.
    let random = RandomState::new().hash_one((millis, std::process::id()));
    format!("{}-{}", base36(millis), base36(u128::from(random)))
}

/// Reads the whole file's value tree over the embedded defaults.
fn read_config(reader: &mut Reader<'_>, root: &Value) -> Result<Config, ConfigError> {
    let mut config = Config::embedded();
    let entries = match root {
        // An empty file, like deepstream's empty object, leaves every default.
        Value::Null => Vec::new(),
        Value::Mapping(mapping) => reader.mapping_entries(&KeyPath::root(), mapping)?,
        other => {
            return Err(ConfigError::NotAMapping {
                file: reader.file().to_path_buf(),
                found: super::read::describe(other),
            });
        }
    };

    let mut host_set = false;
    for (key, value) in entries {
        let path = KeyPath::root().key(key);
        match key {
            "serverName" => config.server_name = server_name(reader, &path, value)?,
            "logLevel" => config.log_level = reader.log_level(&path, value)?,
            "enabledFeatures" => config.features = enabled_features(reader, &path, value)?,
            "rpc" => config.rpc = rpc(reader, &path, value)?,
            "listen" => config.listen = listen(reader, &path, value)?,
            "httpServer" => {
                let http = endpoints::http_server(reader, &path, value)?;
                host_set = http.host_set;
                config.http = http.config;
            }
            "connectionEndpoints" => {
                let endpoints = endpoints::connection_endpoints(reader, &path, value)?;
                config.websocket = endpoints.websocket;
                config.http_api = endpoints.http_api;
            }
            "auth" => config.auth = auth::auth(reader, &path, value)?,
            "monitoring" => config.monitoring = monitoring::monitoring(reader, &path, value)?,
            "permission" => config.permission = permission::permission(reader, &path, value)?,
            "plugins" => services::custom_plugins(reader, &path, value)?,
            "record" => config.record = storage::record(reader, &path, value)?,
            "storage" => config.storage = storage::storage(reader, &path, value)?,
            "cache" => config.cache = storage::cache(reader, &path, value)?,
            "libDir" => accept(reader, &path, value, Check::TextOrNull)?,
            "showLogo" | "exitOnFatalError" => accept(reader, &path, value, Check::Bool)?,
            "dependencyInitializationTimeout" => {
                accept(reader, &path, value, Check::Number { min: 1000 })?;
            }
            "logger" | "subscriptions" | "telemetry" | "locks" | "clusterNode"
            | "clusterRegistry" | "clusterStates" => {
                services::unsupported_service(reader, &path, key, value)?;
            }
            _ => return Err(unknown_key(reader.file(), key)),
        }
    }

    if !host_set {
        reader.notice(
            &KeyPath::root().key("httpServer").key("options").key("host"),
            "not set, so the server listens on 127.0.0.1 only (deepstream listens on all \
             interfaces). Set it to accept connections from other machines.",
        );
    }
    Ok(config)
}

/// Checks a general key that this server accepts without using it, and adds its notice.
fn accept(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
    check: Check,
) -> Result<(), ConfigError> {
    reader.check(path, value, check)?;
    reader.not_supported_yet(path, value);
    Ok(())
}

fn server_name(reader: &Reader<'_>, path: &KeyPath, value: &Value) -> Result<String, ConfigError> {
    let name = reader.text(path, value)?;
    if name == "UUID" {
        Ok(generate_server_name())
    } else {
        Ok(name.to_owned())
    }
}

fn enabled_features(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<EnabledFeatures, ConfigError> {
    let mut features = EnabledFeatures::default();
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "record" => features.record = reader.boolean(&path, value)?,
            "event" => features.event = reader.boolean(&path, value)?,
            "rpc" => features.rpc = reader.boolean(&path, value)?,
            "presence" => features.presence = reader.boolean(&path, value)?,
            "monitoring" => accept(reader, &path, value, Check::Bool)?,
            _ => reader.unknown_option(&path),
        }
    }
    Ok(features)
}

fn rpc(reader: &mut Reader<'_>, path: &KeyPath, value: &Value) -> Result<RpcConfig, ConfigError> {
    let mut rpc = RpcConfig::default();
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "ackTimeout" => rpc.ack_timeout = reader.millis(&path, value, 1)?,
            "responseTimeout" => rpc.response_timeout = reader.millis(&path, value, 1)?,
            "provideRequestorName" => rpc.provide_requestor_name = reader.boolean(&path, value)?,
            "provideRequestorData" => rpc.provide_requestor_data = reader.boolean(&path, value)?,
            _ => reader.unknown_option(&path),
        }
    }
    Ok(rpc)
}

fn listen(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<ListenConfig, ConfigError> {
    let mut listen = ListenConfig::default();
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "shuffleProviders" => listen.shuffle_providers = reader.boolean(&path, value)?,
            "responseTimeout" => listen.response_timeout = reader.millis(&path, value, 1)?,
            "rematchInterval" => listen.rematch_interval = reader.millis(&path, value, 1)?,
            "matchCooldown" => listen.match_cooldown = reader.millis(&path, value, 0)?,
            _ => reader.unknown_option(&path),
        }
    }
    Ok(listen)
}

fn unknown_key(file: &Path, key: &str) -> ConfigError {
    let suggestion = TOP_LEVEL_KEYS
        .iter()
        .copied()
        .map(|known| {
            (
                edit_distance(&key.to_ascii_lowercase(), &known.to_ascii_lowercase()),
                known,
            )
        })
        .filter(|&(distance, _)| distance <= 2)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, known)| known);
    ConfigError::UnknownKey {
        file: file.to_path_buf(),
        key: key.to_owned(),
        suggestion,
        expected: TOP_LEVEL_KEYS.join(", "),
    }
}

/// Returns the Levenshtein distance between two strings, counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

fn base36(mut number: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(number % 36) as usize]);
        number /= 36;
        if number == 0 {
            break;
        }
    }
    digits
        .iter()
        .rev()
        .map(|&digit| char::from(digit))
        .collect()
}
