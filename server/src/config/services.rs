//! The service sections: `plugins` and the plugin-style sections that this server accepts
//! without implementing them yet (`logger`, `telemetry`, ...). The `auth`, `permission` and
//! `monitoring` sections are read in their own files, and the `cache` and `storage`
//! sections in `storage.rs`.

use serde_yaml::Value;

use super::ConfigError;
use super::read::{Check, KeyPath, Reader};

/// A plugin-style section (`{type, name, path, options}`) as deepstream 7.0's schema checks it.
struct ServiceSchema {
    /// The top-level key.
    key: &'static str,
    /// The values `type` accepts.
    types: &'static [&'static str],
    /// The options the schema checks. Others are accepted unchecked, as in deepstream.
    options: &'static [(&'static str, Check)],
}

/// The sections that are accepted with a notice and otherwise ignored.
const UNSUPPORTED_SERVICES: &[ServiceSchema] = &[
    ServiceSchema {
        key: "logger",
        types: &["default", "json"],
        options: &[
            ("colors", Check::Bool),
            ("logLevel", Check::LogLevel),
            ("options", Check::Mapping),
        ],
    },
    ServiceSchema {
        key: "subscriptions",
        types: &["default"],
        options: &[("subscriptionsSanityTimer", Check::WholeNumber { min: 50 })],
    },
    ServiceSchema {
        key: "telemetry",
        types: &["deepstreamIO"],
        options: &[("enabled", Check::Bool)],
    },
    ServiceSchema {
        key: "locks",
        types: &["default"],
        options: &[
            ("holdTimeout", Check::WholeNumber { min: 50 }),
            ("requestTimeout", Check::WholeNumber { min: 50 }),
        ],
    },
    ServiceSchema {
        key: "clusterNode",
        types: &["default"],
        options: &[],
    },
    ServiceSchema {
        key: "clusterRegistry",
        types: &["default"],
        options: &[
            ("keepAliveInterval", Check::WholeNumber { min: 1 }),
            ("activeCheckInterval", Check::WholeNumber { min: 1 }),
            ("nodeInactiveTimeout", Check::WholeNumber { min: 1 }),
        ],
    },
    ServiceSchema {
        key: "clusterStates",
        types: &["default"],
        options: &[("reconciliationTimeout", Check::WholeNumber { min: 1 })],
    },
];

/// A plugin-style entry, as far as the keys that choose its implementation.
pub(super) struct PluginEntry<'v> {
    /// The built-in type, when `type` is set.
    pub(super) kind: Option<&'v str>,
    /// Whether `name` or `path` names a plugin, which deepstream prefers over `type`.
    pub(super) is_plugin: bool,
}

/// Checks `plugins`, a mapping of custom plugin names to plugin entries. Each one produces a
/// notice because none is loaded.
pub(super) fn custom_plugins(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<(), ConfigError> {
    if value.is_null() {
        return Ok(());
    }
    for (name, entry) in reader.entries(path, value)? {
        let entry_path = path.key(name);
        reader.check(&entry_path, entry, Check::Mapping)?;
        let message = match name {
            // deepstream 3 configured the cache and the storage here; deepstream 4 and later
            // load any entry here as a generic plugin.
            "cache" | "storage" => format!(
                "custom plugins are not supported yet by this server, so this plugin is not \
                 loaded. To choose the {name}, set the top-level `{name}` key instead"
            ),
            _ => "custom plugins are not supported yet by this server, so this plugin is not \
                  loaded"
                .to_owned(),
        };
        reader.notice(&entry_path, message);
    }
    Ok(())
}

/// Checks a plugin-style section that this server accepts without implementing it, and adds
/// its notice.
pub(super) fn unsupported_service(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    key: &str,
    value: &Value,
) -> Result<(), ConfigError> {
    if let Some(schema) = UNSUPPORTED_SERVICES.iter().find(|schema| schema.key == key) {
        read_plugin(reader, path, value, schema.types, schema.options)?;
    }
    reader.not_supported_yet(path, value);
    Ok(())
}

/// Checks a plugin-style entry against deepstream's schema and returns how it chooses its
/// implementation.
pub(super) fn read_plugin<'v>(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &'v Value,
    types: &[&str],
    options: &[(&str, Check)],
) -> Result<PluginEntry<'v>, ConfigError> {
    let mut plugin = PluginEntry {
        kind: None,
        is_plugin: false,
    };
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "type" => {
                let kind = reader.text(&path, value)?;
                if !types.contains(&kind) {
                    return Err(reader.invalid(
                        &path,
                        format!("one of {}", types.join(", ")),
                        value,
                    ));
                }
                plugin.kind = Some(kind);
            }
            "name" | "path" => {
                reader.text(&path, value)?;
                plugin.is_plugin = true;
            }
            "options" => check_options(reader, &path, value, options)?,
            // deepstream's schema allows other keys here and ignores them.
            _ => {}
        }
    }
    Ok(plugin)
}

fn check_options(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
    options: &[(&str, Check)],
) -> Result<(), ConfigError> {
    for (key, value) in reader.entries(path, value)? {
        if let Some(&(_, check)) = options.iter().find(|(name, _)| *name == key) {
            reader.check(&path.key(key), value, check)?;
        }
    }
    Ok(())
}
