#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::discover::chosen_file;
use super::document::{self, TOP_LEVEL_KEYS};
use super::*;

/// A folder under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "deepstream-config-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Writes `content` to `name` inside the folder, creating subfolders, and returns the path.
    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

/// Loads `content` as `name` in a fresh folder with an empty environment.
fn load_text(name: &str, content: &str) -> Result<Loaded, ConfigError> {
    let dir = TempDir::new();
    let path = dir.write(name, content);
    document::load(&path, &no_env)
}

fn load_yaml(content: &str) -> Result<Loaded, ConfigError> {
    load_text("config.yml", content)
}

/// Loads YAML that must fail and returns the error and its message, with the temporary
/// path replaced by `CONFIG`.
fn yaml_error(content: &str) -> (ConfigError, String) {
    let dir = TempDir::new();
    let path = dir.write("config.yml", content);
    let error = document::load(&path, &no_env).unwrap_err();
    let message = error
        .to_string()
        .replace(&path.display().to_string(), "CONFIG");
    (error, message)
}

fn notice_keys(loaded: &Loaded) -> Vec<&str> {
    loaded
        .notices
        .iter()
        .map(|notice| notice.key.as_str())
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

#[test]
fn embedded_defaults_match_deepstream() {
    let config = Config::embedded();

    assert!(!config.server_name.is_empty());
    assert_eq!(config.log_level, LogLevel::Info);
    assert_eq!(config.source, None);

    assert_eq!(config.http.host, "127.0.0.1");
    assert_eq!(config.http.port, 6020);
    assert_eq!(config.http.health_check_path, "/health-check");
    assert!(config.http.allow_all_origins);
    assert!(config.http.origins.is_empty());
    assert_eq!(config.http.max_message_size, 1_048_576);

    let websocket = config.websocket.unwrap();
    assert_eq!(websocket.url_path, "/deepstream");
    assert_eq!(websocket.heartbeat_interval, Duration::from_millis(30_000));
    assert_eq!(websocket.outgoing_buffer_timeout, Duration::ZERO);
    assert_eq!(websocket.max_buffer_byte_size, 100_000);
    assert_eq!(
        websocket.unauthenticated_client_timeout,
        Some(Duration::from_millis(180_000))
    );
    assert_eq!(websocket.max_auth_attempts, 3);
    assert!(!websocket.log_invalid_auth_data);
    assert_eq!(websocket.max_message_size, 1_048_576);
    assert_eq!(websocket.max_outgoing_queue_bytes, 16 * 1024 * 1024);

    let http_api = config.http_api.unwrap();
    assert!(http_api.allow_auth_data);
    assert!(http_api.enable_auth_endpoint);
    assert_eq!(http_api.auth_path, "/api/auth");
    assert_eq!(http_api.post_path, "/api");
    assert_eq!(http_api.get_path, "/api");
    assert!(!http_api.log_invalid_auth_data);
    assert_eq!(http_api.request_timeout, Duration::from_millis(20_000));
    assert_eq!(http_api.token_timeout, Duration::from_secs(3600));

    assert_eq!(config.rpc.ack_timeout, Duration::from_millis(1_000));
    assert_eq!(config.rpc.response_timeout, Duration::from_millis(10_000));
    assert!(!config.rpc.provide_requestor_name);
    assert!(!config.rpc.provide_requestor_data);

    assert!(config.listen.shuffle_providers);
    assert_eq!(config.listen.response_timeout, Duration::from_millis(500));
    assert_eq!(
        config.listen.rematch_interval,
        Duration::from_millis(30_000)
    );
    assert_eq!(config.listen.match_cooldown, Duration::from_millis(10_000));

    assert_eq!(
        config.features,
        EnabledFeatures {
            record: true,
            event: true,
            rpc: true,
            presence: true
        }
    );

    assert_eq!(
        config.record,
        RecordConfig {
            storage_exclusion_prefixes: Vec::new(),
            storage_hot_path_prefixes: Vec::new(),
            cache_retrieval_timeout: Duration::from_millis(1_000),
            storage_retrieval_timeout: Duration::from_millis(2_000),
        }
    );
    assert_eq!(
        config.storage,
        StorageConfig::Embedded {
            path: PathBuf::from("./deepstream-data/records.redb")
        }
    );
    assert_eq!(config.cache, CacheConfig::Memory);
}

#[test]
fn generated_server_names_differ() {
    let first = Config::embedded().server_name;
    let second = Config::embedded().server_name;
    assert_ne!(first, second);
    assert!(first.contains('-'), "{first}");
}

#[test]
fn empty_file_gives_defaults() {
    let loaded = load_yaml("# nothing but a comment\n").unwrap();
    let mut expected = Config::embedded();
    expected.server_name = loaded.config.server_name.clone();
    expected.source = loaded.config.source.clone();
    assert_eq!(loaded.config, expected);
    assert_eq!(notice_keys(&loaded), ["httpServer.options.host"]);
}

#[test]
fn shipped_config_loads_with_notices() {
    let path = fixture("config.yml");
    let loaded = document::load(&path, &no_env).unwrap();
    let config = &loaded.config;

    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_ne!(config.server_name, "UUID");
    assert_eq!(config.log_level, LogLevel::Info);
    assert_eq!(config.rpc, RpcConfig::default());
    assert_eq!(
        config.listen.rematch_interval,
        Duration::from_millis(60_000)
    );
    assert_eq!(config.http.origins, ["https://example.com"]);
    assert_eq!(config.http.host, "127.0.0.1");
    assert_eq!(config.websocket, Some(WebSocketConfig::default()));
    // The shipped `http` endpoint sets deepstream's defaults and leaves out `authPath`.
    assert_eq!(config.http_api, Some(HttpApiConfig::default()));
    assert_eq!(config.features, EnabledFeatures::default());

    // Commented-out `${REDIS_HOST}` and `fileLoad(users.yml)` lines add nothing.
    assert_eq!(
        notice_keys(&loaded),
        [
            "showLogo",
            "dependencyInitializationTimeout",
            "telemetry",
            "logger",
            "permission.options.cacheEvacuationInterval",
            "httpServer.options.host",
        ]
    );
    assert_eq!(config.monitoring, MonitoringConfig::None);
    assert_eq!(
        config.record.cache_retrieval_timeout,
        Duration::from_millis(30_000)
    );
    assert_eq!(
        config.record.storage_retrieval_timeout,
        Duration::from_millis(30_000)
    );
    assert_eq!(config.storage, StorageConfig::default());
    assert_eq!(config.cache, CacheConfig::Memory);
    assert!(matches!(config.permission, PermissionConfig::Rules(_)));
}

#[test]
fn shipped_config_needs_its_permission_file() {
    let dir = TempDir::new();
    let path = dir.write("config.yml", fs::read(fixture("config.yml")).unwrap());

    let error = document::load(&path, &no_env).unwrap_err();

    let ConfigError::Include { key, source, .. } = &error else {
        panic!("unexpected error: {error}");
    };
    assert_eq!(key, "permission.options.permissions");
    assert!(
        matches!(**source, ConfigError::NotFound { ref file } if *file == dir.path().join("permissions.yml"))
    );
}

#[test]
fn env_variables_are_substituted() {
    let table: HashMap<&str, &str> = [
        ("PORT", "7000"),
        ("NAME", "node-a"),
        ("EMPTY", ""),
        ("URL_PATH", "/ws"),
    ]
    .into();
    let env = move |name: &str| table.get(name).map(OsString::from);
    let dir = TempDir::new();
    let path = dir.write(
        "config.yml",
        "serverName: ${NAME}\n\
         httpServer:\n  options:\n    port: ${PORT}\n    host: \"127.0.0.1${EMPTY}\"\n\
         connectionEndpoints:\n  - type: ws-binary\n    options:\n      urlPath: '${URL_PATH}'\n\
         # port: ${COMMENTED_OUT}\n\
         logLevel: INFO # ${ALSO_COMMENTED_OUT}\n",
    );

    let loaded = document::load(&path, &env).unwrap();

    assert_eq!(loaded.config.server_name, "node-a");
    assert_eq!(loaded.config.http.port, 7000);
    assert_eq!(loaded.config.http.host, "127.0.0.1");
    assert_eq!(loaded.config.websocket.as_ref().unwrap().url_path, "/ws");
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
}

#[test]
fn unset_env_variable_gives_notice() {
    let dir = TempDir::new();
    let path = dir.write(
        "config.yml",
        "serverName: \"node${DEEPSTREAM_TEST_UNSET_VARIABLE}\"\n\
         rpc:\n  ackTimeout: 10${DEEPSTREAM_TEST_UNSET_VARIABLE}\n",
    );

    let loaded = document::load(&path, &text::process_env).unwrap();

    assert_eq!(loaded.config.server_name, "node");
    assert_eq!(loaded.config.rpc.ack_timeout, Duration::from_millis(10));
    let unset: Vec<_> = loaded
        .notices
        .iter()
        .filter(|notice| notice.key.starts_with('$'))
        .collect();
    assert_eq!(unset.len(), 1, "{:?}", loaded.notices);
    assert_eq!(unset[0].key, "${DEEPSTREAM_TEST_UNSET_VARIABLE}");
    assert!(unset[0].message.contains("line 1 of"), "{}", unset[0]);
}

#[test]
fn process_env_is_read() {
    let expected = std::env::var("PATH").expect("PATH is set for the test process");
    let dir = TempDir::new();
    let path = dir.write("config.yml", "serverName: '${PATH}'\n");

    let loaded = Config::load(&path).unwrap();

    assert_eq!(loaded.config.server_name, expected);
}

#[test]
fn env_substitution_skips_only_yaml_comments() {
    let table: HashMap<&str, &str> = [("A", "x")].into();
    let env = move |name: &str| table.get(name).map(OsString::from);
    let mut notices = Vec::new();
    let cases = [
        ("a: ${A} # ${A}\n", "a: x # ${A}\n"),
        ("# ${A}\nb: ${A}\n", "# ${A}\nb: x\n"),
        ("a: '#${A}' # ${A}\n", "a: '#x' # ${A}\n"),
        ("a: 'it''s # ${A}'\n", "a: 'it''s # x'\n"),
        ("a: \"q\\\" # ${A}\"\n", "a: \"q\\\" # x\"\n"),
        ("a: it's ${A} # ${A}\n", "a: it's x # ${A}\n"),
        ("a: b#${A}\n", "a: b#x\n"),
        ("- '${A}'\n- ${A}#${A} #${A}\n", "- 'x'\n- x#x #${A}\n"),
        ("a: ${}\n", "a: ${}\n"),
        ("a: ${A\n", "a: ${A\n"),
    ];
    for (input, expected) in cases {
        let output = text::substitute_env(
            Path::new("c.yml"),
            input,
            text::Comments::Yaml,
            &env,
            &mut notices,
        )
        .unwrap();
        assert_eq!(output, expected, "input {input:?}");
    }
    assert!(notices.is_empty());

    let json = text::substitute_env(
        Path::new("c.json"),
        "{\"a\": \"#${A}\"}",
        text::Comments::None,
        &env,
        &mut notices,
    )
    .unwrap();
    assert_eq!(json, "{\"a\": \"#x\"}");
}

#[test]
fn file_load_resolves_relative_to_config_folder() {
    let dir = TempDir::new();
    dir.write(
        "settings/rpc.yml",
        "ackTimeout: 1234\nprovideRequestorName: true\n",
    );
    dir.write("settings/listen.json", "{\"matchCooldown\": 77}");
    dir.write("settings/name.txt", "from-a-text-file");
    let path = dir.write(
        "config.yml",
        "rpc: fileLoad(settings/rpc.yml)\n\
         listen: \"fileLoad(./settings/listen.json)\"\n\
         serverName: fileLoad(settings/name.txt)\n",
    );

    let loaded = document::load(&path, &no_env).unwrap();

    assert_eq!(loaded.config.rpc.ack_timeout, Duration::from_millis(1234));
    assert!(loaded.config.rpc.provide_requestor_name);
    assert_eq!(
        loaded.config.listen.match_cooldown,
        Duration::from_millis(77)
    );
    assert_eq!(loaded.config.server_name, "from-a-text-file");
}

#[test]
fn included_file_gets_env_only() {
    let table: HashMap<&str, &str> = [("TIMEOUT", "4321")].into();
    let env = move |name: &str| table.get(name).map(OsString::from);
    let dir = TempDir::new();
    dir.write("rpc.yml", "ackTimeout: ${TIMEOUT}\n");
    dir.write("name.yml", "fileLoad(other.yml)\n");
    let path = dir.write(
        "config.yml",
        "rpc: fileLoad(rpc.yml)\nserverName: fileLoad(name.yml)\n",
    );

    let loaded = document::load(&path, &env).unwrap();

    assert_eq!(loaded.config.rpc.ack_timeout, Duration::from_millis(4321));
    assert_eq!(loaded.config.server_name, "fileLoad(other.yml)");
}

#[test]
fn file_function_gives_absolute_path() {
    let dir = TempDir::new();
    let path = dir.write("config.yml", "serverName: file(./data/names)\n");

    let loaded = document::load(&path, &no_env).unwrap();

    let expected = std::path::absolute(dir.path().join("data/names")).unwrap();
    assert_eq!(loaded.config.server_name, expected.to_string_lossy());
}

#[test]
fn missing_file_load_target_is_error() {
    let dir = TempDir::new();
    let path = dir.write(
        "config.yml",
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(missing.yml)\n",
    );

    let error = document::load(&path, &no_env).unwrap_err();

    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "failed to load the file named by `permission.options.permissions` in {}: file not found: {}",
            path.display(),
            dir.path().join("missing.yml").display()
        )
    );
}

#[test]
fn malformed_file_load_target_is_error() {
    let dir = TempDir::new();
    dir.write("permissions.json", "{\"record\": ");
    let path = dir.write(
        "config.yml",
        "permission:\n  options:\n    permissions: fileLoad(permissions.json)\n",
    );

    let error = document::load(&path, &no_env).unwrap_err();

    let ConfigError::Include { source, .. } = &error else {
        panic!("unexpected error: {error}");
    };
    assert!(
        matches!(
            **source,
            ConfigError::Syntax {
                format: FileFormat::Json,
                ..
            }
        ),
        "{source}"
    );
    assert!(error.to_string().contains("invalid JSON in"), "{error}");
}

#[test]
fn file_load_inside_text_is_error() {
    let (_, message) = yaml_error("serverName: \"name fileLoad(x.yml)\"\n");
    assert_eq!(
        message,
        "invalid value for `serverName` in CONFIG: expected `fileLoad(path)` as the whole value, \
         with a file name inside, found \"name fileLoad(x.yml)\""
    );
}

#[test]
fn yaml_syntax_error_has_position() {
    let (error, message) = yaml_error("rpc:\n  ackTimeout: 1000\n responseTimeout: [\n");

    let ConfigError::Syntax {
        format, position, ..
    } = &error
    else {
        panic!("unexpected error: {error}");
    };
    assert_eq!(*format, FileFormat::Yaml);
    assert_eq!(position.unwrap().line, 3, "{message}");
    assert!(
        message.starts_with("invalid YAML in CONFIG at line 3, column "),
        "{message}"
    );
}

#[test]
fn duplicate_yaml_key_is_error() {
    let (error, message) = yaml_error("logLevel: INFO\nlogLevel: WARN\n");
    assert!(matches!(error, ConfigError::Syntax { .. }), "{message}");
    assert!(message.contains("duplicate"), "{message}");
}

#[test]
fn json_syntax_error_has_position() {
    let dir = TempDir::new();
    let path = dir.write(
        "config.json",
        "{\n  \"logLevel\": \"INFO\",\n  \"rpc\": {,}\n}\n",
    );

    let error = document::load(&path, &no_env).unwrap_err();

    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "invalid JSON in {} at line 3, column 11: key must be a string",
            path.display()
        )
    );
}

#[test]
fn missing_config_file_is_error() {
    let dir = TempDir::new();
    let path = dir.path().join("absent.yml");

    let error = Config::load(&path).unwrap_err();

    assert!(matches!(error, ConfigError::NotFound { ref file } if *file == path));
    assert_eq!(
        error.to_string(),
        format!("file not found: {}", path.display())
    );
}

#[test]
fn unsupported_extensions_are_errors() {
    let javascript = load_text("config.js", "module.exports = {}").unwrap_err();
    assert!(matches!(
        javascript,
        ConfigError::UnsupportedFormat {
            javascript: true,
            ..
        }
    ));
    assert!(
        javascript
            .to_string()
            .contains("convert it to YAML or JSON"),
        "{javascript}"
    );

    let toml = load_text("config.toml", "a = 1").unwrap_err();
    assert!(matches!(
        toml,
        ConfigError::UnsupportedFormat {
            javascript: false,
            ..
        }
    ));

    let upper_case = load_text("CONFIG.YML", "logLevel: WARN\n").unwrap();
    assert_eq!(upper_case.config.log_level, LogLevel::Warn);
}

#[test]
fn folder_instead_of_file_is_read_error() {
    let dir = TempDir::new();
    let folder = dir.path().join("config.yml");
    fs::create_dir(&folder).unwrap();

    let error = Config::load(&folder).unwrap_err();

    assert!(matches!(error, ConfigError::Read { .. }), "{error}");
}

#[test]
fn non_utf8_file_is_read_error() {
    let dir = TempDir::new();
    let path = dir.write("config.yml", b"serverName: \xff\xfe\n");

    let error = Config::load(&path).unwrap_err();

    let ConfigError::Read { source, .. } = &error else {
        panic!("unexpected error: {error}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn oversized_file_is_error() {
    let dir = TempDir::new();
    let size = usize::try_from(text::MAX_FILE_BYTES).unwrap() + 1;
    let path = dir.write("config.yml", vec![b'#'; size]);

    let error = Config::load(&path).unwrap_err();

    assert!(
        matches!(error, ConfigError::TooLarge { max_bytes, .. } if max_bytes == text::MAX_FILE_BYTES)
    );
}

#[test]
fn top_level_list_is_error() {
    let (error, message) = yaml_error("- logLevel: INFO\n");
    assert!(matches!(error, ConfigError::NotAMapping { .. }));
    assert_eq!(
        message,
        "invalid config in CONFIG: expected a mapping of keys to values at the top level, found a list"
    );
}

#[test]
fn wrong_value_types_name_key_and_expectation() {
    let cases = [
        (
            "httpServer:\n  options:\n    port: \"abc\"\n",
            "invalid value for `httpServer.options.port` in CONFIG: expected a port number from 1 to 65535, found a string (\"abc\")",
        ),
        (
            "httpServer:\n  options:\n    port: 70000\n",
            "invalid value for `httpServer.options.port` in CONFIG: expected a port number from 1 to 65535, found the number 70000",
        ),
        (
            "connectionEndpoints:\n  - type: ws-binary\n    options:\n      heartbeatInterval: -5\n",
            "invalid value for `connectionEndpoints[0].options.heartbeatInterval` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found the number -5",
        ),
        (
            "connectionEndpoints:\n  - type: ws-binary\n    options:\n      maxAuthAttempts: 0\n",
            "invalid value for `connectionEndpoints[0].options.maxAuthAttempts` in CONFIG: expected a whole number from 1 to 4294967295, found the number 0",
        ),
        (
            "rpc:\n  ackTimeout: fast\n",
            "invalid value for `rpc.ackTimeout` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found a string (\"fast\")",
        ),
        (
            "rpc:\n  responseTimeout: 1.5\n",
            "invalid value for `rpc.responseTimeout` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found the number 1.5",
        ),
        (
            "rpc:\n  provideRequestorName: yes\n",
            "invalid value for `rpc.provideRequestorName` in CONFIG: expected true or false, found a string (\"yes\")",
        ),
        (
            "logLevel: verbose\n",
            "invalid value for `logLevel` in CONFIG: expected one of DEBUG, INFO, WARN, ERROR, OFF (or 0, 1, 2, 3, 100), found a string (\"verbose\")",
        ),
        (
            "serverName: \"\"\n",
            "invalid value for `serverName` in CONFIG: expected a non-empty string, found a string (\"\")",
        ),
        (
            "rpc: null\n",
            "invalid value for `rpc` in CONFIG: expected a mapping of keys to values, found null",
        ),
        (
            "enabledFeatures:\n  event: 1\n",
            "invalid value for `enabledFeatures.event` in CONFIG: expected true or false, found the number 1",
        ),
        (
            "connectionEndpoints:\n  - type: ws-binary\n    options:\n      urlPath: deepstream\n",
            "invalid value for `connectionEndpoints[0].options.urlPath` in CONFIG: expected a URL path starting with `/`, found a string (\"deepstream\")",
        ),
        (
            "connectionEndpoints:\n  - type: http\n    options:\n      postPath: api\n",
            "invalid value for `connectionEndpoints[0].options.postPath` in CONFIG: expected a URL path starting with `/`, found a string (\"api\")",
        ),
        (
            "connectionEndpoints:\n  - type: http\n    options:\n      authPath: /api/{user}\n",
            "invalid value for `connectionEndpoints[0].options.authPath` in CONFIG: expected a URL path starting with `/` without `{`, `}` or `*`, found a string (\"/api/{user}\")",
        ),
        (
            "connectionEndpoints:\n  - type: http\n    options:\n      allowAuthData: \"yes\"\n",
            "invalid value for `connectionEndpoints[0].options.allowAuthData` in CONFIG: expected true or false, found a string (\"yes\")",
        ),
        (
            "connectionEndpoints:\n  - type: http\n    options:\n      requestTimeout: 0\n",
            "invalid value for `connectionEndpoints[0].options.requestTimeout` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found the number 0",
        ),
        (
            "connectionEndpoints:\n  - type: http\n    options:\n      tokenTimeout: -1\n",
            "invalid value for `connectionEndpoints[0].options.tokenTimeout` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found the number -1",
        ),
        (
            "connectionEndpoints:\n  - type: websocket\n",
            "invalid value for `connectionEndpoints[0].type` in CONFIG: expected one of ws-binary, ws-text, ws-json, http, mqtt, found a string (\"websocket\")",
        ),
        (
            "connectionEndpoints:\n  - type: mqtt\n    options:\n      port: 0\n",
            "invalid value for `connectionEndpoints[0].options.port` in CONFIG: expected a whole number, at least 1, found the number 0",
        ),
        (
            "httpServer:\n  options:\n    allowAllOrigins: false\n",
            "invalid value for `httpServer.options.origins` in CONFIG: expected at least one origin when `allowAllOrigins` is false, found null",
        ),
        (
            "httpServer:\n  options:\n    origins: [example.com]\n",
            "invalid value for `httpServer.options.origins[0]` in CONFIG: expected an absolute URI such as `https://example.com`, found a string (\"example.com\")",
        ),
        (
            "locks:\n  options:\n    holdTimeout: 10\n",
            "invalid value for `locks.options.holdTimeout` in CONFIG: expected a whole number, at least 50, found the number 10",
        ),
        (
            "cache:\n  type: memcached\n",
            "invalid value for `cache.type` in CONFIG: expected one of default, memory, redis (or `name: redis`), found a string (\"memcached\")",
        ),
        (
            "dependencyInitializationTimeout: 10\n",
            "invalid value for `dependencyInitializationTimeout` in CONFIG: expected a number, at least 1000, found the number 10",
        ),
        (
            "connectionEndpoints: []\n",
            "invalid value for `connectionEndpoints` in CONFIG: expected at least one connection endpoint, found a list",
        ),
        (
            "rpc:\n  1: 2\n",
            "invalid value for `rpc` in CONFIG: expected keys that are strings, found the key the number 1",
        ),
    ];
    for (content, expected) in cases {
        let (error, message) = yaml_error(content);
        assert!(
            matches!(error, ConfigError::InvalidValue { .. }),
            "{content:?} gave {message}"
        );
        assert_eq!(message, expected, "for {content:?}");
    }
}

#[test]
fn whole_float_is_accepted_as_integer() {
    let loaded = load_yaml("rpc:\n  ackTimeout: 1500.0\n").unwrap();
    assert_eq!(loaded.config.rpc.ack_timeout, Duration::from_millis(1500));
}

#[test]
fn log_level_accepts_any_case_and_numbers() {
    let cases = [
        ("debug", LogLevel::Debug),
        ("Info", LogLevel::Info),
        ("WARN", LogLevel::Warn),
        ("3", LogLevel::Error),
        ("100", LogLevel::Off),
        ("off", LogLevel::Off),
    ];
    for (value, expected) in cases {
        let loaded = load_yaml(&format!("logLevel: {value}\n")).unwrap();
        assert_eq!(loaded.config.log_level, expected, "logLevel: {value}");
    }
}

#[test]
fn unknown_top_level_key_is_error() {
    let (error, message) = yaml_error("logLevel: INFO\nfoo: 1\n");

    assert!(matches!(
        error,
        ConfigError::UnknownKey {
            suggestion: None,
            ..
        }
    ));
    assert_eq!(
        message,
        format!(
            "unknown key `foo` in CONFIG; expected one of {}",
            TOP_LEVEL_KEYS.join(", ")
        )
    );
}

#[test]
fn misspelled_top_level_key_gets_suggestion() {
    let (error, message) = yaml_error("serverNmae: node-a\n");

    assert!(matches!(
        error,
        ConfigError::UnknownKey {
            suggestion: Some("serverName"),
            ..
        }
    ));
    assert!(message.starts_with("unknown key `serverNmae` in CONFIG (did you mean `serverName`?); expected one of libDir, "), "{message}");
}

#[test]
fn every_deepstream_top_level_key_is_known() {
    for key in TOP_LEVEL_KEYS {
        let result = load_yaml(&format!("{key}: {{}}\n"));
        assert!(
            !matches!(result, Err(ConfigError::UnknownKey { .. })),
            "{key} is reported unknown"
        );
    }
}

#[test]
fn each_unsupported_key_gives_one_notice() {
    let loaded = load_yaml(
        "showLogo: true\n\
         exitOnFatalError: false\n\
         libDir: ../lib\n\
         plugins:\n  custom:\n    path: ./plugin.js\n  heap-snapshot:\n    name: heap-snapshot\n\
         enabledFeatures:\n  monitoring: true\n\
         rpc:\n  ackTimout: 1000\n\
         httpServer:\n  type: uws\n  options:\n    host: 127.0.0.1\n    ssl:\n      key: file(ssl/key.pem)\n    headers: [user-agent]\n",
    )
    .unwrap();

    assert_eq!(
        notice_keys(&loaded),
        [
            "showLogo",
            "libDir",
            "plugins.custom",
            "plugins.heap-snapshot",
            "enabledFeatures.monitoring",
            "rpc.ackTimout",
            "httpServer.type",
            "httpServer.options.ssl",
            "httpServer.options.headers",
        ]
    );
    assert!(
        loaded.notices[7].message.contains("without TLS"),
        "{}",
        loaded.notices[7]
    );
}

#[test]
fn endpoint_types_other_than_ws_binary_give_notices() {
    let loaded = load_yaml(
        "connectionEndpoints:\n\
         \x20 - type: ws-text\n\
         \x20 - null\n\
         \x20 - type: ws-binary\n    options:\n      urlPath: /ws\n      port: 6021\n      colour: red\n\
         \x20 - type: mqtt\n    options:\n      port: 1883\n\
         \x20 - name: custom-endpoint\n\
         \x20 - type: ws-binary\n    options:\n      urlPath: /second\n",
    )
    .unwrap();

    assert_eq!(loaded.config.websocket.as_ref().unwrap().url_path, "/ws");
    assert_eq!(
        notice_keys(&loaded),
        [
            "connectionEndpoints[0]",
            "connectionEndpoints[2].options.port",
            "connectionEndpoints[2].options.colour",
            "connectionEndpoints[3]",
            "connectionEndpoints[4]",
            "connectionEndpoints[5]",
            "httpServer.options.host",
        ]
    );
}

#[test]
fn endpoints_without_ws_binary_give_no_websocket() {
    let loaded = load_yaml("connectionEndpoints:\n  - type: http\n").unwrap();
    assert_eq!(loaded.config.websocket, None);
    assert_eq!(loaded.config.http_api, Some(HttpApiConfig::default()));

    let (error, message) = yaml_error("connectionEndpoints:\n  - null\n");
    assert!(
        matches!(error, ConfigError::InvalidValue { .. }),
        "{message}"
    );

    let (_, message) = yaml_error("connectionEndpoints:\n  - options: {}\n");
    assert!(
        message.contains("`connectionEndpoints[0].type`"),
        "{message}"
    );
}

#[test]
fn endpoints_without_http_give_no_http_api() {
    let loaded = load_yaml("connectionEndpoints:\n  - type: ws-binary\n").unwrap();

    assert_eq!(loaded.config.http_api, None);
    assert!(loaded.config.websocket.is_some());
}

#[test]
fn http_options_are_read() {
    let loaded = load_yaml(
        "connectionEndpoints:\n  - type: http\n    options:\n\
         \x20     allowAuthData: false\n      enableAuthEndpoint: false\n      authPath: /token\n\
         \x20     postPath: /batch\n      getPath: /read\n      logInvalidAuthData: true\n\
         \x20     requestTimeout: 5000\n      tokenTimeout: 60000\n",
    )
    .unwrap();

    assert_eq!(
        loaded.config.http_api,
        Some(HttpApiConfig {
            allow_auth_data: false,
            enable_auth_endpoint: false,
            auth_path: "/token".to_owned(),
            post_path: "/batch".to_owned(),
            get_path: "/read".to_owned(),
            log_invalid_auth_data: true,
            request_timeout: Duration::from_millis(5000),
            token_timeout: Duration::from_millis(60_000),
        })
    );
    assert_eq!(notice_keys(&loaded), ["httpServer.options.host"]);
}

#[test]
fn http_partial_options_keep_defaults_and_note_others() {
    let loaded = load_yaml(
        "connectionEndpoints:\n\
         \x20 - type: http\n    options:\n      postPath: /v1/api\n      maxMessageSize: 10\n      colour: red\n\
         \x20 - type: http\n    options:\n      postPath: /second\n",
    )
    .unwrap();

    let http_api = loaded.config.http_api.as_ref().unwrap();
    assert_eq!(http_api.post_path, "/v1/api");
    assert_eq!(http_api.auth_path, "/api/auth");
    assert!(http_api.allow_auth_data);
    assert_eq!(
        notice_keys(&loaded),
        [
            "connectionEndpoints[0].options.maxMessageSize",
            "connectionEndpoints[0].options.colour",
            "connectionEndpoints[1]",
            "httpServer.options.host",
        ]
    );
    assert!(
        loaded.notices[0]
            .message
            .contains("not used by an `http` endpoint"),
        "{}",
        loaded.notices[0]
    );
    assert!(
        loaded.notices[2]
            .message
            .contains("only the first `http` endpoint"),
        "{}",
        loaded.notices[2]
    );
}

#[test]
fn ws_binary_options_are_read() {
    let loaded = load_yaml(
        "connectionEndpoints:\n  - type: ws-binary\n    options:\n\
         \x20     urlPath: /realtime\n      heartbeatInterval: 5000\n      outgoingBufferTimeout: 10\n\
         \x20     maxBufferByteSize: 2048\n      unauthenticatedClientTimeout: 9000\n\
         \x20     maxAuthAttempts: 5\n      logInvalidAuthData: true\n      maxMessageSize: 4096\n\
         \x20     maxOutgoingQueueBytes: 65536\n",
    )
    .unwrap();

    assert_eq!(
        loaded.config.websocket,
        Some(WebSocketConfig {
            url_path: "/realtime".to_owned(),
            heartbeat_interval: Duration::from_millis(5000),
            outgoing_buffer_timeout: Duration::from_millis(10),
            max_buffer_byte_size: 2048,
            unauthenticated_client_timeout: Some(Duration::from_millis(9000)),
            max_auth_attempts: 5,
            log_invalid_auth_data: true,
            max_message_size: 4096,
            max_outgoing_queue_bytes: 65536,
        })
    );
}

#[test]
fn ws_binary_partial_options_keep_defaults() {
    let loaded = load_yaml(
        "connectionEndpoints:\n  - type: ws-binary\n    options:\n      maxMessageSize: 0\n",
    )
    .unwrap();

    let websocket = loaded.config.websocket.unwrap();
    assert_eq!(websocket.max_message_size, usize::MAX);
    assert_eq!(websocket.url_path, "/deepstream");
    assert_eq!(websocket.heartbeat_interval, Duration::from_millis(30_000));
}

#[test]
fn unauthenticated_client_timeout_can_be_disabled() {
    for value in ["false", "null", "~"] {
        let loaded = load_yaml(&format!(
            "connectionEndpoints:\n  - type: ws-binary\n    options:\n      unauthenticatedClientTimeout: {value}\n"
        ))
        .unwrap();
        assert_eq!(
            loaded
                .config
                .websocket
                .unwrap()
                .unauthenticated_client_timeout,
            None,
            "{value}"
        );
    }

    let (_, message) = yaml_error(
        "connectionEndpoints:\n  - type: ws-binary\n    options:\n      unauthenticatedClientTimeout: true\n",
    );
    assert_eq!(
        message,
        "invalid value for `connectionEndpoints[0].options.unauthenticatedClientTimeout` in CONFIG: expected a whole number of milliseconds, or false to disable the timeout, found the boolean true"
    );
}

#[test]
fn http_server_options_are_read() {
    let loaded = load_yaml(
        "httpServer:\n  type: default\n  options:\n    host: localhost\n    port: 7020\n\
         \x20   healthCheckPath: /alive\n    allowAllOrigins: false\n\
         \x20   origins: ['https://app.example.com', 'http://127.0.0.1:3000']\n    maxMessageSize: 0\n",
    )
    .unwrap();

    assert_eq!(
        loaded.config.http,
        HttpConfig {
            host: "localhost".to_owned(),
            port: 7020,
            health_check_path: "/alive".to_owned(),
            allow_all_origins: false,
            origins: vec![
                "https://app.example.com".to_owned(),
                "http://127.0.0.1:3000".to_owned()
            ],
            max_message_size: 0,
        }
    );
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
}

#[test]
fn auth_none_is_accepted() {
    for (content, entries) in [
        ("auth:\n  - type: none\n", 1),
        ("auth:\n  type: none\n  options: {}\n", 1),
        ("auth:\n  - type: none\n  - type: none\n", 2),
    ] {
        let loaded = load_yaml(content).unwrap();
        assert_eq!(
            notice_keys(&loaded),
            ["httpServer.options.host"],
            "{content}"
        );
        assert_eq!(
            loaded.config.auth,
            vec![AuthConfig::Open; entries],
            "{content}"
        );
    }
}

#[test]
fn auth_defaults_to_none() {
    assert_eq!(Config::embedded().auth, [AuthConfig::Open]);
    assert_eq!(
        document::load(&fixture("config.yml"), &no_env)
            .unwrap()
            .config
            .auth,
        [AuthConfig::Open]
    );
}

#[test]
fn file_auth_reads_options() {
    let loaded = load_yaml(
        "auth:\n  - type: file\n    options:\n      path: users.yml\n      hash: sha256\n\
         \x20     iterations: 1000\n      keyLength: 64\n",
    )
    .unwrap();

    let [AuthConfig::File(file)] = loaded.config.auth.as_slice() else {
        panic!("unexpected auth config: {:?}", loaded.config.auth);
    };
    let config_folder = loaded.config.source.as_deref().unwrap().parent().unwrap();
    assert_eq!(
        file.users,
        UsersSource::File(
            std::path::absolute(config_folder)
                .unwrap()
                .join("users.yml")
        )
    );
    assert_eq!(
        file.hash,
        Some(HashSettings {
            algorithm: HashAlgorithm::Sha256,
            iterations: 1000,
            key_length: 64,
        })
    );
    assert!(file.report_invalid_parameters);
    assert_eq!(notice_keys(&loaded), ["httpServer.options.host"]);
}

#[test]
fn file_auth_absolute_path_is_kept() {
    let dir = TempDir::new();
    let users = dir.path().join("elsewhere").join("users.json");
    let loaded = load_yaml(&format!(
        "auth:\n  type: file\n  options:\n    path: {}\n",
        users.display()
    ))
    .unwrap();

    let [AuthConfig::File(file)] = loaded.config.auth.as_slice() else {
        panic!("unexpected auth config: {:?}", loaded.config.auth);
    };
    assert_eq!(file.users, UsersSource::File(users));
    assert_eq!(file.hash, None);
}

#[test]
fn file_auth_reads_users_from_file_load() {
    let dir = TempDir::new();
    dir.write(
        "users.yml",
        "ada:\n  password: lovelace\n  clientData:\n    color: red\n",
    );
    let path = dir.write(
        "config.yml",
        "auth:\n  - type: file\n    options:\n      users: fileLoad(users.yml)\n      hash: false\n",
    );

    let loaded = document::load(&path, &no_env).unwrap();

    let [AuthConfig::File(file)] = loaded.config.auth.as_slice() else {
        panic!("unexpected auth config: {:?}", loaded.config.auth);
    };
    let UsersSource::Inline(users) = &file.users else {
        panic!("expected inline users, found {:?}", file.users);
    };
    assert_eq!(users.len(), 1);
    assert_eq!(file.hash, None);
    assert!(
        !format!("{:?}", loaded.config).contains("lovelace"),
        "the config's Debug output shows a password"
    );
}

#[test]
fn file_auth_path_wins_over_users() {
    let loaded = load_yaml(
        "auth:\n  type: file\n  options:\n    path: users.json\n    users:\n      ada:\n        password: x\n",
    )
    .unwrap();

    let [AuthConfig::File(file)] = loaded.config.auth.as_slice() else {
        panic!("unexpected auth config: {:?}", loaded.config.auth);
    };
    assert!(
        matches!(file.users, UsersSource::File(_)),
        "{:?}",
        file.users
    );
    assert!(notice_keys(&loaded).contains(&"auth.options.users"));
}

#[test]
fn report_invalid_parameters_defaults_by_list_length() {
    let single = load_yaml("auth:\n  type: file\n  options:\n    path: users.yml\n").unwrap();
    let chained = load_yaml(
        "auth:\n  - type: file\n    options:\n      path: users.yml\n\
         \x20 - type: file\n    options:\n      path: more.yml\n      reportInvalidParameters: true\n\
         \x20 - type: none\n",
    )
    .unwrap();

    let reports = |config: &Config| -> Vec<bool> {
        config
            .auth
            .iter()
            .filter_map(|entry| match entry {
                AuthConfig::File(file) => Some(file.report_invalid_parameters),
                _ => None,
            })
            .collect()
    };
    assert_eq!(reports(&single.config), [true]);
    assert_eq!(reports(&chained.config), [false, true]);
    assert_eq!(chained.config.auth[2], AuthConfig::Open);
}

#[test]
fn http_auth_reads_options() {
    let loaded = load_yaml(
        "auth:\n  - type: http\n    options:\n      endpointUrl: http://127.0.0.1:8080/login?key=abc\n\
         \x20     permittedStatusCodes: [200, 201]\n      requestTimeout: 2000\n\
         \x20     retryStatusCodes: [503]\n      retryAttempts: 3\n      retryInterval: 500\n\
         \x20     promoteToHeader: [token]\n",
    )
    .unwrap();

    let [AuthConfig::Http(http)] = loaded.config.auth.as_slice() else {
        panic!("unexpected auth config: {:?}", loaded.config.auth);
    };
    assert_eq!(
        http.endpoint_url.url().as_str(),
        "http://127.0.0.1:8080/login?key=abc"
    );
    assert_eq!(http.endpoint_url.to_string(), "http://127.0.0.1:8080/login");
    assert!(!format!("{http:?}").contains("abc"), "{http:?}");
    assert_eq!(http.permitted_status_codes, [200, 201]);
    assert_eq!(http.request_timeout, Duration::from_millis(2000));
    assert_eq!(http.retry_status_codes, [503]);
    assert_eq!(http.retry_attempts, 3);
    assert_eq!(http.retry_interval, Duration::from_millis(500));
    assert_eq!(http.promote_to_header, ["token"]);
    assert!(http.report_invalid_parameters);
}

/// The options of a valid `http` entry, to be changed one at a time.
const HTTP_OPTIONS: &[(&str, &str)] = &[
    ("endpointUrl", "http://127.0.0.1:8080/login"),
    ("permittedStatusCodes", "[200]"),
    ("requestTimeout", "2000"),
    ("retryStatusCodes", "[]"),
    ("retryAttempts", "0"),
    ("retryInterval", "100"),
];

/// Returns a config with one `http` entry whose options are [`HTTP_OPTIONS`] without `left_out`
/// and with `extra` added.
fn http_config(left_out: &str, extra: &str) -> String {
    let mut text = "auth:\n  - type: http\n    options:\n".to_owned();
    for (key, value) in HTTP_OPTIONS {
        if *key != left_out {
            text.push_str(&format!("      {key}: {value}\n"));
        }
    }
    if !extra.is_empty() {
        text.push_str(&format!("      {extra}\n"));
    }
    text
}

#[test]
fn http_auth_requires_each_option() {
    for (key, _) in HTTP_OPTIONS {
        let (error, message) = yaml_error(&http_config(key, ""));
        assert!(
            matches!(error, ConfigError::InvalidValue { .. }),
            "{message}"
        );
        assert!(
            message.starts_with(&format!(
                "invalid value for `auth[0].options.{key}` in CONFIG: expected "
            )),
            "{message}"
        );
        assert!(message.ends_with("found null"), "{message}");
    }
}

#[test]
fn invalid_auth_options_name_key_and_expectation() {
    let file = "auth:\n  - type: file\n    options:\n      path: users.yml\n";
    let cases = [
        (
            format!("{file}      hash: whirlpool\n      iterations: 1\n      keyLength: 1\n"),
            "invalid value for `auth[0].options.hash` in CONFIG: expected one of the digests this server supports: md5, sha1, sha224, sha256, sha384, sha512, sha512-224, sha512-256, found a string (\"whirlpool\")",
        ),
        (
            format!("{file}      hash: SHA256\n      iterations: 1\n      keyLength: 1\n"),
            "invalid value for `auth[0].options.hash` in CONFIG: expected one of the digests this server supports: md5, sha1, sha224, sha256, sha384, sha512, sha512-224, sha512-256, found a string (\"SHA256\")",
        ),
        (
            format!("{file}      hash: true\n"),
            "invalid value for `auth[0].options.hash` in CONFIG: expected a digest name (md5, sha1, sha224, sha256, sha384, sha512, sha512-224, sha512-256) or false, found the boolean true",
        ),
        (
            format!("{file}      hash: md5\n      keyLength: 32\n"),
            "invalid value for `auth[0].options.iterations` in CONFIG: expected a whole number, which `hash` requires, found null",
        ),
        (
            format!("{file}      hash: md5\n      iterations: 100\n"),
            "invalid value for `auth[0].options.keyLength` in CONFIG: expected a whole number, which `hash` requires, found null",
        ),
        (
            format!("{file}      hash: md5\n      iterations: 0\n      keyLength: 32\n"),
            "invalid value for `auth[0].options.iterations` in CONFIG: expected a whole number, at least 1, found the number 0",
        ),
        (
            format!("{file}      hash: md5\n      iterations: 100\n      keyLength: 5000\n"),
            "invalid value for `auth[0].options.keyLength` in CONFIG: expected a number of bytes from 1 to 4096, found the number 5000",
        ),
        (
            format!("{file}      reportInvalidParameters: sometimes\n"),
            "invalid value for `auth[0].options.reportInvalidParameters` in CONFIG: expected true or false, found a string (\"sometimes\")",
        ),
        (
            "auth:\n  - type: file\n    options:\n      hash: md5\n".to_owned(),
            "invalid value for `auth[0].options.path` in CONFIG: expected the users file of file authentication (or the users themselves in `users`), found null",
        ),
        (
            "auth:\n  - type: file\n".to_owned(),
            "invalid value for `auth[0].options` in CONFIG: expected a mapping with the options of auth type file, found null",
        ),
        (
            "auth:\n  - type: http\n    options: []\n".to_owned(),
            "invalid value for `auth[0].options` in CONFIG: expected a mapping of keys to values, found a list",
        ),
        (
            "auth:\n  - type: file\n    options:\n      users: []\n".to_owned(),
            "invalid value for `auth[0].options.users` in CONFIG: expected a mapping of user names to entries with a `password` string, and optionally `clientData` and `serverData`, found the content is not a mapping of user names to entries",
        ),
        (
            "auth:\n  - type: file\n    options:\n      users: {}\n".to_owned(),
            "invalid value for `auth[0].options.users` in CONFIG: expected a mapping of user names to entries with a `password` string, and optionally `clientData` and `serverData`, found there are no users",
        ),
        (
            "auth:\n  - type: file\n    options:\n      users:\n        ada:\n          password: 1234\n".to_owned(),
            "invalid value for `auth[0].options.users.ada` in CONFIG: expected a mapping of user names to entries with a `password` string, and optionally `clientData` and `serverData`, found user `ada` has no `password` string",
        ),
        (
            http_config("endpointUrl", "endpointUrl: https://user:hunter2@example.com/login"),
            "invalid value for `auth[0].options.endpointUrl` in CONFIG: expected an http:// URL with a host, found an https:// URL, and TLS is not supported yet by this server",
        ),
        (
            http_config("endpointUrl", "endpointUrl: ftp://127.0.0.1/login"),
            "invalid value for `auth[0].options.endpointUrl` in CONFIG: expected an http:// URL with a host, found a URL with the scheme `ftp`",
        ),
        (
            http_config("endpointUrl", "endpointUrl: /login"),
            "invalid value for `auth[0].options.endpointUrl` in CONFIG: expected an http:// URL with a host, found not a URL (relative URL without a base)",
        ),
        (
            http_config("permittedStatusCodes", "permittedStatusCodes: [200, 42]"),
            "invalid value for `auth[0].options.permittedStatusCodes[1]` in CONFIG: expected an HTTP status from 100 to 599, found the number 42",
        ),
        (
            http_config("permittedStatusCodes", "permittedStatusCodes: 200"),
            "invalid value for `auth[0].options.permittedStatusCodes` in CONFIG: expected a list of HTTP statuses, found the number 200",
        ),
        (
            http_config("requestTimeout", "requestTimeout: 0"),
            "invalid value for `auth[0].options.requestTimeout` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found the number 0",
        ),
        (
            http_config("retryAttempts", "retryAttempts: -1"),
            "invalid value for `auth[0].options.retryAttempts` in CONFIG: expected a whole number from 0 to 4294967295, found the number -1",
        ),
        (
            http_config("", "promoteToHeader: [\"bad header\"]"),
            "invalid value for `auth[0].options.promoteToHeader[0]` in CONFIG: expected a field name that is also a valid HTTP header name, found a string (\"bad header\")",
        ),
    ];
    for (content, expected) in cases {
        let (error, message) = yaml_error(&content);
        assert!(
            matches!(error, ConfigError::InvalidValue { .. }),
            "{content:?} gave {message}"
        );
        assert_eq!(message, expected, "for {content:?}");
    }
}

#[test]
fn unknown_auth_options_give_notices() {
    let loaded = load_yaml(&http_config("", "fields: [token]")).unwrap();
    assert_eq!(
        notice_keys(&loaded),
        ["auth[0].options.fields", "httpServer.options.host"]
    );

    let loaded =
        load_yaml("auth:\n  type: file\n  options:\n    path: users.yml\n    salt: x\n").unwrap();
    assert_eq!(
        notice_keys(&loaded),
        ["auth.options.salt", "httpServer.options.host"]
    );
}

#[test]
fn unsupported_auth_is_error() {
    let (error, message) =
        yaml_error("auth:\n  - type: none\n  - type: storage\n    options:\n      table: users\n");
    assert!(
        matches!(error, ConfigError::Unsupported { .. }),
        "{message}"
    );
    assert_eq!(
        message,
        "unsupported value for `auth[1].type` in CONFIG: auth type `storage` is not supported yet by this server, which supports none, file and http, so it does not start rather than accept every login"
    );

    let (error, message) = yaml_error("auth:\n  type: none\n  path: ./my-auth.js\n");
    assert!(
        matches!(error, ConfigError::Unsupported { ref key, .. } if key == "auth"),
        "{message}"
    );
    assert!(
        message.contains("custom authentication plugins"),
        "{message}"
    );

    let (error, message) = yaml_error("auth:\n  - type: ldap\n");
    assert!(
        matches!(error, ConfigError::InvalidValue { .. }),
        "{message}"
    );
    assert!(
        message.contains("expected one of none, file, http, storage"),
        "{message}"
    );

    let (_, message) = yaml_error("auth: []\n");
    assert!(
        message.contains("expected at least one authentication entry"),
        "{message}"
    );

    let (_, message) = yaml_error("auth:\n  - options: {}\n");
    assert!(message.contains("`auth[0].type`"), "{message}");
}

/// Rules that allow every action, like deepstream's shipped `permissions.yml`.
const ALLOW_ALL_RULES: &str = r#"{
    "record": {"*": {"create": true, "write": true, "read": "true", "delete": true, "listen": true, "notify": true}},
    "event": {"*": {"publish": true, "subscribe": true, "listen": true}, "chat/.*": {"publish": true}},
    "rpc": {"*": {"provide": true, "request": true}},
    "presence": {"*": {"allow": true}}
}"#;

#[test]
fn permission_rules_load_from_file_load() {
    let rules = ALLOW_ALL_RULES.replacen(
        r#""publish": true"#,
        r#""publish": "user.id === 'admin'""#,
        1,
    );
    let dir = TempDir::new();
    dir.write("rules.json", &rules);
    let path = dir.write(
        "config.yml",
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(rules.json)\n    maxRuleIterations: 5\n",
    );
    let loaded = document::load(&path, &no_env).unwrap();
    let PermissionConfig::Rules(rules) = &loaded.config.permission else {
        panic!("expected rules, got {:?}", loaded.config.permission);
    };
    assert_eq!(rules.max_rule_iterations.get(), 5);
    assert!(!rules.permissions.is_allow_all());
    assert_eq!(notice_keys(&loaded), ["httpServer.options.host"]);
}

#[test]
fn permission_rules_load_from_path() {
    let dir = TempDir::new();
    dir.write("rules.json", ALLOW_ALL_RULES);
    let path = dir.write(
        "config.yml",
        "permission:\n  type: config\n  options:\n    path: rules.json\n    cacheEvacuationInterval: 60000\n",
    );
    let loaded = document::load(&path, &no_env).unwrap();
    let PermissionConfig::Rules(rules) = &loaded.config.permission else {
        panic!("expected rules, got {:?}", loaded.config.permission);
    };
    assert_eq!(rules.source, dir.path().join("rules.json"));
    assert_eq!(
        notice_keys(&loaded),
        [
            "permission.options.cacheEvacuationInterval",
            "httpServer.options.host"
        ]
    );
}

#[test]
fn invalid_permission_rules_stop_start() {
    let rules = ALLOW_ALL_RULES.replacen(
        r#""delete": true"#,
        r#""delete": "data.owner === user.id""#,
        1,
    );
    let dir = TempDir::new();
    dir.write("rules.json", &rules);
    let path = dir.write(
        "config.yml",
        "permission:\n  type: config\n  options:\n    path: rules.json\n",
    );
    let error = document::load(&path, &no_env).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, ConfigError::Permissions { .. }),
        "{message}"
    );
    assert!(message.contains("delete"), "{message}");
    assert!(message.contains("data"), "{message}");
}

#[test]
fn permission_config_without_rules_stops_start() {
    let (error, message) = yaml_error("permission:\n  type: config\n");
    assert!(
        matches!(error, ConfigError::InvalidValue { .. }),
        "{message}"
    );
    assert!(message.contains("permission.options.path"), "{message}");

    let (_, message) =
        yaml_error("permission:\n  type: config\n  options:\n    path: missing.yml\n");
    assert!(message.contains("missing.yml"), "{message}");
}

#[test]
fn permission_types() {
    let none = load_yaml("permission:\n  type: none\n").unwrap();
    assert_eq!(notice_keys(&none), ["httpServer.options.host"]);
    assert_eq!(none.config.permission, PermissionConfig::None);

    let (error, message) = yaml_error("permission:\n  name: my-permissions\n");
    assert!(
        matches!(error, ConfigError::Unsupported { .. }),
        "{message}"
    );

    let (error, message) = yaml_error("permission:\n  type: valve\n");
    assert!(
        matches!(error, ConfigError::InvalidValue { .. }),
        "{message}"
    );
}

#[test]
fn json_config_loads() {
    let loaded = load_text(
        "config.json",
        r##"{
            "serverName": "json#1",
            "logLevel": "WARN",
            "rpc": { "ackTimeout": 2000, "provideRequestorData": true },
            "listen": { "shuffleProviders": false },
            "enabledFeatures": { "presence": false },
            "httpServer": { "options": { "host": "127.0.0.1", "port": 6030 } },
            "connectionEndpoints": [
                { "type": "ws-binary", "options": { "unauthenticatedClientTimeout": false } }
            ],
            "auth": [{ "type": "none" }]
        }"##,
    )
    .unwrap();

    let config = &loaded.config;
    assert_eq!(config.server_name, "json#1");
    assert_eq!(config.log_level, LogLevel::Warn);
    assert_eq!(config.rpc.ack_timeout, Duration::from_millis(2000));
    assert!(config.rpc.provide_requestor_data);
    assert!(!config.listen.shuffle_providers);
    assert!(!config.features.presence);
    assert!(config.features.record);
    assert_eq!(config.http.port, 6030);
    assert_eq!(
        config
            .websocket
            .as_ref()
            .unwrap()
            .unauthenticated_client_timeout,
        None
    );
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
}

#[test]
fn yaml_anchors_and_merge_keys_work() {
    let loaded = load_yaml(
        "rpc: &timeouts\n  ackTimeout: 2500\n\
         listen:\n  <<: {responseTimeout: 800}\n  shuffleProviders: false\n",
    )
    .unwrap();
    assert_eq!(loaded.config.rpc.ack_timeout, Duration::from_millis(2500));
    assert_eq!(
        loaded.config.listen.response_timeout,
        Duration::from_millis(800)
    );
    assert!(!loaded.config.listen.shuffle_providers);
}

#[test]
fn discovery_prefers_env_variable() {
    let dir = TempDir::new();
    let named = dir.write("custom/settings.yml", "logLevel: ERROR\n");
    dir.write("folder/config.json", "{}");
    let configured = named.clone().into_os_string();
    let env = move |name: &str| (name == "DEEPSTREAM_CONFIG_DIRECTORY").then(|| configured.clone());

    assert_eq!(
        chosen_file(&env, &[dir.path().to_path_buf()]).unwrap(),
        Some(named)
    );

    let folder = dir.path().join("folder").into_os_string();
    let env = move |name: &str| (name == "DEEPSTREAM_CONFIG_DIRECTORY").then(|| folder.clone());
    assert_eq!(
        chosen_file(&env, &[]).unwrap(),
        Some(dir.path().join("folder/config.json"))
    );

    let missing = dir.path().join("missing.yml");
    let missing_os = missing.clone().into_os_string();
    let env = move |name: &str| (name == "DEEPSTREAM_CONFIG_DIRECTORY").then(|| missing_os.clone());
    let error = chosen_file(&env, &[]).unwrap_err();
    assert!(matches!(error, ConfigError::NotFound { ref file } if *file == missing));
}

#[test]
fn discovery_searches_conf_folders_in_order() {
    let dir = TempDir::new();
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    fs::create_dir_all(&first).unwrap();
    dir.write("second/conf/config.json", "{}");
    dir.write("second/conf/config.yaml", "{}");
    let empty_env = |name: &str| (name == "DEEPSTREAM_CONFIG_DIRECTORY").then(OsString::new);

    let chosen = chosen_file(&empty_env, &[first.clone(), second.clone()]).unwrap();
    assert_eq!(chosen, Some(second.join("conf/config.yaml")));

    dir.write("first/conf/config.json", "{}");
    let chosen = chosen_file(&no_env, &[first.clone(), second]).unwrap();
    assert_eq!(chosen, Some(first.join("conf/config.json")));

    assert_eq!(
        chosen_file(&no_env, &[dir.path().join("none")]).unwrap(),
        None
    );
}

/// Loads YAML that must load and returns the notices' keys and the config.
fn load_ok(content: &str) -> (Config, Vec<String>) {
    let loaded = load_yaml(content).unwrap_or_else(|error| panic!("{content:?}: {error}"));
    let keys = notice_keys(&loaded)
        .into_iter()
        .filter(|key| *key != "httpServer.options.host")
        .map(str::to_owned)
        .collect();
    (loaded.config, keys)
}

fn postgres_of(config: &Config) -> &PostgresConfig {
    match &config.storage {
        StorageConfig::Postgres(postgres) => postgres,
        other => panic!("expected a PostgreSQL storage, got {other:?}"),
    }
}

fn redis_of(config: &Config) -> &RedisConfig {
    match &config.cache {
        CacheConfig::Redis(redis) => redis,
        other => panic!("expected a Redis cache, got {other:?}"),
    }
}

#[test]
fn record_options_are_read() {
    let (config, notices) = load_ok(
        "record:\n  cacheRetrievalTimeout: 500\n  storageRetrievalTimeout: 750\n\
         \x20 storageExclusionPrefixes: [private/, temp/]\n  storageHotPathPrefixes: [hot/]\n\
         \x20 colour: red\n",
    );

    assert_eq!(
        config.record,
        RecordConfig {
            storage_exclusion_prefixes: vec!["private/".to_owned(), "temp/".to_owned()],
            storage_hot_path_prefixes: vec!["hot/".to_owned()],
            cache_retrieval_timeout: Duration::from_millis(500),
            storage_retrieval_timeout: Duration::from_millis(750),
        }
    );
    assert_eq!(notices, ["record.colour"]);

    let (config, notices) =
        load_ok("record:\n  storageExclusionPrefixes: null\n  storageHotPathPrefixes: ~\n");
    assert_eq!(config.record, RecordConfig::default());
    assert!(notices.is_empty(), "{notices:?}");
}

#[test]
fn record_option_errors_name_key() {
    let cases = [
        (
            "record:\n  cacheRetrievalTimeout: 0\n",
            "invalid value for `record.cacheRetrievalTimeout` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found the number 0",
        ),
        (
            "record:\n  storageRetrievalTimeout: soon\n",
            "invalid value for `record.storageRetrievalTimeout` in CONFIG: expected a whole number of milliseconds from 1 to 2147483647, found a string (\"soon\")",
        ),
        (
            "record:\n  storageExclusionPrefixes: private/\n",
            "invalid value for `record.storageExclusionPrefixes` in CONFIG: expected a list of strings, found a string (\"private/\")",
        ),
        (
            "record:\n  storageHotPathPrefixes: [hot/, 7]\n",
            "invalid value for `record.storageHotPathPrefixes[1]` in CONFIG: expected a string, found the number 7",
        ),
    ];
    for (content, expected) in cases {
        let (_, message) = yaml_error(content);
        assert_eq!(message, expected, "for {content:?}");
    }
}

#[test]
fn default_storage_is_embedded_file() {
    let cases = [
        (
            "storage:\n  type: default\n",
            "./deepstream-data/records.redb",
        ),
        (
            "storage:\n  type: default\n  options:\n    path: /srv/deepstream/records.redb\n",
            "/srv/deepstream/records.redb",
        ),
        (
            "storage:\n  options:\n    path: data/x.redb\n",
            "data/x.redb",
        ),
    ];
    for (content, path) in cases {
        let (config, notices) = load_ok(content);
        assert_eq!(
            config.storage,
            StorageConfig::Embedded {
                path: PathBuf::from(path)
            },
            "{content:?}"
        );
        assert!(notices.is_empty(), "{content:?}: {notices:?}");
    }

    let (_, notices) = load_ok("storage:\n  type: default\n  options:\n    cacheSize: 10\n");
    assert_eq!(notices, ["storage.options.cacheSize"]);

    let (_, message) = yaml_error("storage:\n  options:\n    path: ''\n");
    assert_eq!(
        message,
        "invalid value for `storage.options.path` in CONFIG: expected a non-empty string, found a string (\"\")"
    );
}

#[test]
fn memory_storage_gives_notice() {
    let loaded = load_yaml("storage:\n  type: memory\n").unwrap();

    assert_eq!(loaded.config.storage, StorageConfig::Memory);
    let notice = &loaded.notices[0];
    assert_eq!(notice.key, "storage.type");
    assert!(
        notice.message.contains("lost when the server stops"),
        "{notice}"
    );
}

#[test]
fn postgres_storage_options_are_read() {
    let options = "  options:\n    host: db.internal\n    port: 6543\n    user: deepstream\n\
                   \x20   password: hunter2\n    database: realtime\n    schema: app\n\
                   \x20   table: documents\n    max: 8\n    connectionTimeoutMillis: 2500\n";
    let expected = PostgresConfig {
        connection: PostgresConnection::Parameters {
            host: "db.internal".to_owned(),
            port: 6543,
            user: "deepstream".to_owned(),
            password: Some(Secret::new("hunter2")),
            database: "realtime".to_owned(),
        },
        schema: "app".to_owned(),
        table: "documents".to_owned(),
        max_connections: 8,
        connect_timeout: Duration::from_millis(2500),
    };
    for selection in ["  type: postgres\n", "  name: postgres\n"] {
        let (config, notices) = load_ok(&format!("storage:\n{selection}{options}"));
        assert_eq!(*postgres_of(&config), expected, "{selection}");
        assert!(notices.is_empty(), "{notices:?}");
    }
}

#[test]
fn postgres_storage_defaults() {
    let (config, _) = load_ok("storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n");

    assert_eq!(
        *postgres_of(&config),
        PostgresConfig {
            connection: PostgresConnection::Parameters {
                host: "127.0.0.1".to_owned(),
                port: 5432,
                user: "postgres".to_owned(),
                password: None,
                database: "postgres".to_owned(),
            },
            schema: "ds".to_owned(),
            table: "records".to_owned(),
            max_connections: 4,
            connect_timeout: Duration::from_millis(10_000),
        }
    );

    let (config, _) =
        load_ok("storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    user: app\n");
    let PostgresConnection::Parameters { database, .. } = &postgres_of(&config).connection else {
        panic!("expected separate connection options");
    };
    assert_eq!(database, "app", "the database defaults to the user's name");
}

#[test]
fn postgres_connection_string_is_accepted() {
    let (config, notices) = load_ok(
        "storage:\n  name: postgres\n  options:\n\
         \x20   connectionString: postgresql://app:pw@127.0.0.1:5432/realtime\n    table: t\n",
    );

    let postgres = postgres_of(&config);
    assert_eq!(
        postgres.connection,
        PostgresConnection::ConnectionString(Secret::new(
            "postgresql://app:pw@127.0.0.1:5432/realtime"
        ))
    );
    assert_eq!(postgres.table, "t");
    assert!(notices.is_empty(), "{notices:?}");

    let (config, _) = load_ok(
        "storage:\n  type: postgres\n  options:\n\
         \x20   connectionString: 'host=127.0.0.1 user=app dbname=realtime'\n",
    );
    assert!(matches!(
        postgres_of(&config).connection,
        PostgresConnection::ConnectionString(_)
    ));
}

#[test]
fn postgres_connector_options_give_notices() {
    let (_, notices) = load_ok(
        "storage:\n  name: postgres\n  options:\n    host: 127.0.0.1\n    writeInterval: 200\n\
         \x20   splitChar: /\n    useJsonb: true\n    notifications: {INSERT: false}\n\
         \x20   idleTimeoutMillis: 200\n    ssl: false\n",
    );

    assert_eq!(
        notices,
        [
            "storage.options.writeInterval",
            "storage.options.splitChar",
            "storage.options.useJsonb",
            "storage.options.notifications",
            "storage.options.idleTimeoutMillis",
        ]
    );
}

#[test]
fn postgres_option_errors_name_key_and_fix() {
    let cases = [
        (
            "storage:\n  type: postgres\n",
            "invalid value for `storage.options.host` in CONFIG: expected the PostgreSQL server's host (or a `connectionString`); this server has no default database host, found null",
        ),
        (
            "storage:\n  name: postgres\n  options:\n    user: app\n",
            "invalid value for `storage.options.host` in CONFIG: expected the PostgreSQL server's host (or a `connectionString`); this server has no default database host, found null",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    connectionString: postgresql://a@127.0.0.1/b\n",
            "invalid value for `storage.options.host` in CONFIG: expected either `connectionString` or `host` with the other connection options, found both `connectionString` and `host`",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    connectionString: postgresql://a@127.0.0.1/b\n    password: hunter2\n",
            "invalid value for `storage.options.password` in CONFIG: expected no separate connection options when `connectionString` is set, found a string (\"***\")",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    connectionString: postgresql://app:hunter2@/realtime\n",
            "invalid value for `storage.options.connectionString` in CONFIG: expected a PostgreSQL connection string such as `postgresql://user:password@127.0.0.1:5432/database`, found a string that names no host",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    connectionString: postgresql://127.0.0.1/realtime\n",
            "invalid value for `storage.options.connectionString` in CONFIG: expected a PostgreSQL connection string such as `postgresql://user:password@127.0.0.1:5432/database`, found a string that names no user",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    port: 0\n",
            "invalid value for `storage.options.port` in CONFIG: expected a port number from 1 to 65535, found the number 0",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    max: 0\n",
            "invalid value for `storage.options.max` in CONFIG: expected a whole number from 1 to 1000, found the number 0",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    password: 1234\n",
            "invalid value for `storage.options.password` in CONFIG: expected a non-empty string, found the number 1234",
        ),
        (
            "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    table: ''\n",
            "invalid value for `storage.options.table` in CONFIG: expected a PostgreSQL identifier of 1 to 63 bytes, found a string (\"\")",
        ),
    ];
    for (content, expected) in cases {
        let (error, message) = yaml_error(content);
        assert!(
            matches!(error, ConfigError::InvalidValue { .. }),
            "{content:?} gave {message}"
        );
        assert_eq!(message, expected, "for {content:?}");
        assert!(
            !message.contains("hunter2"),
            "the message shows the password: {message}"
        );
    }

    let long_schema = "s".repeat(64);
    let (_, message) = yaml_error(&format!(
        "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    schema: {long_schema}\n"
    ));
    assert!(message.contains("`storage.options.schema`"), "{message}");

    let (_, message) = yaml_error(
        "storage:\n  type: postgres\n  options:\n    connectionString: 'host=127.0.0.1 password=hunter2 port=notaport'\n",
    );
    assert!(
        message.contains("found a string that does not parse"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2"),
        "the message shows the password: {message}"
    );
}

#[test]
fn postgres_tls_is_unsupported() {
    for content in [
        "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    ssl: true\n",
        "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    ssl: {rejectUnauthorized: false}\n",
        "storage:\n  type: postgres\n  options:\n    connectionString: postgresql://a@127.0.0.1/b?sslmode=require\n",
    ] {
        let (error, message) = yaml_error(content);
        assert!(
            matches!(error, ConfigError::Unsupported { .. }),
            "{content:?} gave {message}"
        );
        assert!(message.contains("without TLS"), "{message}");
    }
}

#[test]
fn unknown_storage_types_are_errors() {
    let (error, message) = yaml_error("storage:\n  type: mongodb\n");
    assert!(
        matches!(error, ConfigError::InvalidValue { .. }),
        "{message}"
    );
    assert_eq!(
        message,
        "invalid value for `storage.type` in CONFIG: expected one of default, memory, postgres (or `name: postgres`), found a string (\"mongodb\")"
    );

    let (error, message) = yaml_error("storage:\n  name: rethinkdb\n");
    assert!(
        matches!(error, ConfigError::Unsupported { .. }),
        "{message}"
    );
    assert!(
        message.starts_with(
            "unsupported value for `storage.name` in CONFIG: storage plugin `rethinkdb` is not available"
        ),
        "{message}"
    );

    let (error, message) = yaml_error("storage:\n  path: ./my-storage.js\n");
    assert!(
        matches!(error, ConfigError::Unsupported { .. }),
        "{message}"
    );
    assert!(message.contains("custom storage plugins"), "{message}");

    let (error, message) = yaml_error("storage: default\n");
    assert!(
        matches!(error, ConfigError::InvalidValue { .. }),
        "{message}"
    );
}

#[test]
fn redis_cache_options_are_read() {
    let options = "  options:\n    host: cache.internal\n    port: 6380\n    username: app\n\
                   \x20   password: hunter2\n    db: 2\n    keyPrefix: 'ds:'\n    ttl: 3600\n\
                   \x20   connectTimeout: 1500\n    commandTimeout: 2500\n";
    let expected = RedisConfig {
        connection: RedisConnection::Parameters {
            host: "cache.internal".to_owned(),
            port: 6380,
            username: Some("app".to_owned()),
            password: Some(Secret::new("hunter2")),
            db: 2,
        },
        key_prefix: "ds:".to_owned(),
        ttl: Some(Duration::from_secs(3600)),
        connect_timeout: Duration::from_millis(1500),
        command_timeout: Duration::from_millis(2500),
    };
    for selection in ["  type: redis\n", "  name: redis\n"] {
        let (config, notices) = load_ok(&format!("cache:\n{selection}{options}"));
        assert_eq!(*redis_of(&config), expected, "{selection}");
        assert!(notices.is_empty(), "{notices:?}");
    }
}

#[test]
fn redis_cache_defaults_and_url() {
    let (config, _) = load_ok("cache:\n  name: redis\n  options:\n    host: 127.0.0.1\n");
    assert_eq!(
        *redis_of(&config),
        RedisConfig {
            connection: RedisConnection::Parameters {
                host: "127.0.0.1".to_owned(),
                port: 6379,
                username: None,
                password: None,
                db: 0,
            },
            key_prefix: String::new(),
            ttl: None,
            connect_timeout: Duration::from_millis(10_000),
            command_timeout: Duration::from_millis(10_000),
        }
    );

    let (config, notices) = load_ok(
        "cache:\n  type: redis\n  options:\n    url: redis://:pw@127.0.0.1:6379/1\n    keyPrefix: x\n\
         \x20   lazyConnect: true\n",
    );
    let redis = redis_of(&config);
    assert_eq!(
        redis.connection,
        RedisConnection::Url(Secret::new("redis://:pw@127.0.0.1:6379/1"))
    );
    assert_eq!(redis.key_prefix, "x");
    assert_eq!(notices, ["cache.options.lazyConnect"]);
}

#[test]
fn memory_cache_types() {
    for content in [
        "cache:\n  type: default\n",
        "cache:\n  type: memory\n",
        "cache: {}\n",
    ] {
        let (config, notices) = load_ok(content);
        assert_eq!(config.cache, CacheConfig::Memory, "{content:?}");
        assert!(notices.is_empty(), "{content:?}: {notices:?}");
    }
    let (_, notices) = load_ok("cache:\n  type: default\n  options:\n    maxSize: 10\n");
    assert_eq!(notices, ["cache.options.maxSize"]);
}

#[test]
fn redis_option_errors_name_key_and_fix() {
    let cases = [
        (
            "cache:\n  type: redis\n",
            "invalid value for `cache.options.host` in CONFIG: expected the Redis server's host (or a `url`); this server has no default cache host, found null",
        ),
        (
            "cache:\n  type: redis\n  options:\n    host: 127.0.0.1\n    url: redis://127.0.0.1\n",
            "invalid value for `cache.options.host` in CONFIG: expected either `url` or `host` with the other connection options, found both `url` and `host`",
        ),
        (
            "cache:\n  type: redis\n  options:\n    url: redis://:hunter2@127.0.0.1\n    password: hunter2\n",
            "invalid value for `cache.options.password` in CONFIG: expected no separate connection options when `url` is set, found a string (\"***\")",
        ),
        (
            "cache:\n  type: redis\n  options:\n    url: redis://:hunter2@127.0.0.1\n    db: 4\n",
            "invalid value for `cache.options.db` in CONFIG: expected no separate connection options when `url` is set, found the number 4",
        ),
        (
            "cache:\n  type: redis\n  options:\n    url: 'http://:hunter2@127.0.0.1'\n",
            "invalid value for `cache.options.url` in CONFIG: expected a Redis URL such as `redis://127.0.0.1:6379/0` or `unix:///run/redis.sock`, found a string that does not parse (Redis URL did not parse - InvalidClientConfig)",
        ),
        (
            "cache:\n  type: redis\n  options:\n    host: 127.0.0.1\n    db: -1\n",
            "invalid value for `cache.options.db` in CONFIG: expected a database number from 0 to 9223372036854775807, found the number -1",
        ),
        (
            "cache:\n  type: redis\n  options:\n    host: 127.0.0.1\n    ttl: 0\n",
            "invalid value for `cache.options.ttl` in CONFIG: expected a whole number of seconds from 1 to 4294967295, found the number 0",
        ),
        (
            "cache:\n  type: redis\n  options:\n    host: 127.0.0.1\n    port: 70000\n",
            "invalid value for `cache.options.port` in CONFIG: expected a port number from 1 to 65535, found the number 70000",
        ),
    ];
    for (content, expected) in cases {
        let (error, message) = yaml_error(content);
        assert!(
            matches!(error, ConfigError::InvalidValue { .. }),
            "{content:?} gave {message}"
        );
        assert_eq!(message, expected, "for {content:?}");
        assert!(
            !message.contains("hunter2"),
            "the message shows the password: {message}"
        );
    }
}

#[test]
fn redis_unsupported_setups_are_errors() {
    let cases = [
        (
            "cache:\n  type: redis\n  options:\n    nodes: [{host: 127.0.0.1, port: 7000}]\n",
            "Redis Cluster and Sentinel are not supported yet",
        ),
        (
            "cache:\n  type: redis\n  options:\n    host: 127.0.0.1\n    tls: {}\n    sentinels: []\n",
            "Redis Cluster and Sentinel are not supported yet",
        ),
        (
            "cache:\n  type: redis\n  options:\n    host: 127.0.0.1\n    tls: {servername: cache}\n",
            "TLS connections to Redis are not supported yet",
        ),
        (
            "cache:\n  type: redis\n  options:\n    url: rediss://127.0.0.1:6380\n",
            "TLS connections to Redis (`rediss://`) are not supported yet",
        ),
        (
            "cache:\n  name: memcached\n",
            "cache plugin `memcached` is not available",
        ),
        (
            "cache:\n  path: ./cache.js\n",
            "custom cache plugins are not supported",
        ),
    ];
    for (content, expected) in cases {
        let (error, message) = yaml_error(content);
        assert!(
            matches!(error, ConfigError::Unsupported { .. }),
            "{content:?} gave {message}"
        );
        assert!(message.contains(expected), "for {content:?}: {message}");
    }
}

#[test]
fn secrets_are_hidden_from_debug_output() {
    let (config, _) = load_ok(
        "storage:\n  type: postgres\n  options:\n    host: 127.0.0.1\n    password: hunter2\n\
         cache:\n  type: redis\n  options:\n    url: redis://:hunter3@127.0.0.1\n",
    );

    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("hunter3"), "{debug}");
    assert!(debug.contains("Secret(***)"), "{debug}");
    assert_eq!(Secret::new("hunter2").expose(), "hunter2");
}

#[test]
fn plugins_cache_entry_points_to_top_level_key() {
    let loaded =
        load_yaml("plugins:\n  cache:\n    name: redis\n    options:\n      host: 127.0.0.1\n")
            .unwrap();

    assert_eq!(loaded.config.cache, CacheConfig::Memory);
    let notice = &loaded.notices[0];
    assert_eq!(notice.key, "plugins.cache");
    assert!(
        notice.message.contains("set the top-level `cache` key"),
        "{notice}"
    );
}

#[test]
fn error_names_unset_variables() {
    let (error, message) = yaml_error("httpServer:\n  options:\n    port: ${DS_PORT}\n");
    assert!(
        matches!(error, ConfigError::UnsetVariables { .. }),
        "{message}"
    );
    assert!(message.contains("`httpServer.options.port`"), "{message}");
    assert!(message.contains("${DS_PORT}"), "{message}");
}

#[test]
fn monitoring_types_load() {
    let loaded = load_yaml("monitoring:\n  type: none\n").unwrap();
    assert_eq!(loaded.config.monitoring, MonitoringConfig::None);

    let loaded = load_yaml("monitoring:\n  type: log\n").unwrap();
    assert_eq!(
        loaded.config.monitoring,
        MonitoringConfig::Log {
            interval: Duration::from_millis(15_000),
            key: "LOG_MONITORING".to_owned()
        }
    );

    let loaded = load_yaml(
        "monitoring:\n  type: log\n  options:\n    logInterval: 500\n    monitoringKey: STATS\n",
    )
    .unwrap();
    assert_eq!(
        loaded.config.monitoring,
        MonitoringConfig::Log {
            interval: Duration::from_millis(500),
            key: "STATS".to_owned()
        }
    );

    let loaded = load_yaml(
        "monitoring:\n  type: http\n  options:\n    url: /monitoring\n    headerKey: X-Key\n    headerValue: abc\n",
    )
    .unwrap();
    assert_eq!(
        loaded.config.monitoring,
        MonitoringConfig::Http(HttpMonitoringConfig {
            path: "/monitoring".to_owned(),
            required_header: Some(("x-key".to_owned(), "abc".to_owned())),
        })
    );

    let loaded = load_yaml(
        "monitoring:\n  type: http\n  options:\n    url: /monitoring\n    allowOpenPermissions: true\n",
    )
    .unwrap();
    assert!(
        notice_keys(&loaded).contains(&"monitoring.options.allowOpenPermissions"),
        "{:?}",
        loaded.notices
    );
}

#[test]
fn monitoring_errors_name_the_key() {
    for (content, expected) in [
        ("monitoring:\n  type: prometheus\n", "monitoring.type"),
        ("monitoring:\n  type: http\n", "monitoring.options.url"),
        (
            "monitoring:\n  type: http\n  options:\n    url: monitoring\n",
            "monitoring.options.url",
        ),
        (
            "monitoring:\n  type: http\n  options:\n    url: /m\n    headerKey: X-Key\n",
            "headerValue",
        ),
        (
            "monitoring:\n  type: log\n  options:\n    logInterval: -5\n",
            "monitoring.options.logInterval",
        ),
        (
            "monitoring:\n  name: custom-monitoring\n",
            "monitoring.name",
        ),
    ] {
        let (_, message) = yaml_error(content);
        assert!(message.contains(expected), "{content}: {message}");
    }
}
