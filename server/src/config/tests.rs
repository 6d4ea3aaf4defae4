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
    assert_eq!(config.features, EnabledFeatures::default());

    // Commented-out `${REDIS_HOST}` and `fileLoad(users.yml)` lines add nothing.
    assert_eq!(
        notice_keys(&loaded),
        [
            "showLogo",
            "dependencyInitializationTimeout",
            "telemetry",
            "record",
            "connectionEndpoints[1]",
            "logger",
            "permission",
            "monitoring",
            "httpServer.options.host",
        ]
    );
    let permission = &loaded.notices[6];
    assert!(permission.message.contains("every action"), "{permission}");
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
            "cache:\n  type: redis\n",
            "invalid value for `cache.type` in CONFIG: expected one of default, found a string (\"redis\")",
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
         cache:\n  name: redis\n  options:\n    host: 127.0.0.1\n    port: 6379\n\
         storage:\n  type: default\n\
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
            "cache",
            "storage",
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
        loaded.notices[9].message.contains("without TLS"),
        "{}",
        loaded.notices[9]
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
    for content in [
        "auth:\n  - type: none\n",
        "auth:\n  type: none\n  options: {}\n",
        "auth:\n  - type: none\n  - type: none\n",
    ] {
        let loaded = load_yaml(content).unwrap();
        assert_eq!(
            notice_keys(&loaded),
            ["httpServer.options.host"],
            "{content}"
        );
    }
}

#[test]
fn other_auth_types_are_unsupported() {
    for kind in ["file", "http", "storage"] {
        let (error, message) = yaml_error(&format!(
            "auth:\n  - type: none\n  - type: {kind}\n    options:\n      hash: md5\n"
        ));
        assert!(
            matches!(error, ConfigError::Unsupported { .. }),
            "{message}"
        );
        assert_eq!(
            message,
            format!(
                "unsupported value for `auth[1].type` in CONFIG: auth type `{kind}` is not supported yet by this server, which supports only `none`, so it does not start rather than accept every login"
            )
        );
    }

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

#[test]
fn permission_types() {
    let none = load_yaml("permission:\n  type: none\n").unwrap();
    assert_eq!(notice_keys(&none), ["httpServer.options.host"]);

    let dir = TempDir::new();
    dir.write("rules.json", "{\"record\": {\"*\": {\"read\": true}}}");
    let path = dir.write("config.yml", "permission:\n  type: config\n  options:\n    permissions: fileLoad(rules.json)\n    maxRuleIterations: 3\n");
    let config = document::load(&path, &no_env).unwrap();
    assert_eq!(
        notice_keys(&config),
        ["permission", "httpServer.options.host"]
    );

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
