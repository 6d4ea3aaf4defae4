//! The `monitoring` section: which report of deepstream's statistics the server gives.
//!
//! The Prometheus endpoint at `/metrics` does not depend on this section: it is always served.

use std::time::Duration;

use serde_yaml::Value;

use super::ConfigError;
use super::read::{KeyPath, Reader};

/// The `monitoring.type` and its options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitoringConfig {
    /// `type: none`: no report, deepstream's default.
    #[default]
    None,
    /// `type: log`: an info log line with the counts of each period.
    Log {
        /// The period (`logInterval`), 15 s by default.
        interval: Duration,
        /// The key of the statistics in the logged JSON (`monitoringKey`),
        /// `LOG_MONITORING` by default.
        key: String,
    },
    /// `type: http`: a GET endpoint that returns the counts since its previous request.
    Http(HttpMonitoringConfig),
}

/// Settings of `monitoring.type: http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpMonitoringConfig {
    /// The URL path of the endpoint (`url`).
    pub path: String,
    /// The header a request must carry, name and value (`headerKey`, `headerValue`), or `None`
    /// when `allowOpenPermissions` is true.
    pub required_header: Option<(String, String)>,
}

const DEFAULT_LOG_INTERVAL: Duration = Duration::from_millis(15_000);
const DEFAULT_LOG_KEY: &str = "LOG_MONITORING";

/// Reads `monitoring`. Unknown options give a notice, as deepstream ignores them.
pub(super) fn monitoring(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<MonitoringConfig, ConfigError> {
    let mut kind = None;
    let mut options = None;
    for (key, entry) in reader.entries(path, value)? {
        let entry_path = path.key(key);
        match key {
            "type" => kind = Some((reader.text(&entry_path, entry)?, entry_path, entry)),
            "options" => options = Some(entry),
            "name" | "path" => {
                return Err(reader.unsupported(
                    &entry_path,
                    "custom monitoring plugins are not supported by this server; use type \
                     `none`, `log` or `http`",
                ));
            }
            _ => reader.unknown_option(&entry_path),
        }
    }
    let options_path = path.key("options");
    let options = match options {
        Some(Value::Null) | None => Vec::new(),
        Some(options) => reader.entries(&options_path, options)?,
    };

    match kind {
        None | Some(("none", _, _)) => Ok(MonitoringConfig::None),
        Some(("log", _, _)) => log_options(reader, &options_path, &options),
        Some(("http", _, _)) => http_options(reader, &options_path, &options),
        Some((_, kind_path, kind_value)) => {
            Err(reader.invalid(&kind_path, "one of none, log, http", kind_value))
        }
    }
}

fn log_options(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: &[(&str, &Value)],
) -> Result<MonitoringConfig, ConfigError> {
    let mut interval = DEFAULT_LOG_INTERVAL;
    let mut key = DEFAULT_LOG_KEY.to_owned();
    for (name, value) in options {
        let option_path = path.key(name);
        match *name {
            "logInterval" => interval = reader.millis(&option_path, value, 1)?,
            "monitoringKey" => key = reader.text(&option_path, value)?.to_owned(),
            _ => reader.unknown_option(&option_path),
        }
    }
    Ok(MonitoringConfig::Log { interval, key })
}

fn http_options(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: &[(&str, &Value)],
) -> Result<MonitoringConfig, ConfigError> {
    let mut url = None;
    let mut header_key = None;
    let mut header_value = None;
    let mut allow_open = false;
    for (name, value) in options {
        let option_path = path.key(name);
        match *name {
            "url" => url = Some(reader.url_path(&option_path, value)?),
            "headerKey" => {
                // HTTP header names are case-insensitive; requests are matched in lower case.
                header_key = Some(reader.text(&option_path, value)?.to_ascii_lowercase());
            }
            "headerValue" => header_value = Some(reader.text(&option_path, value)?.to_owned()),
            "allowOpenPermissions" => allow_open = reader.boolean(&option_path, value)?,
            _ => reader.unknown_option(&option_path),
        }
    }

    let Some(url) = url else {
        return Err(reader.invalid(
            &path.key("url"),
            "the URL path of the monitoring endpoint, such as /monitoring",
            &Value::Null,
        ));
    };
    let required_header = match (header_key, header_value) {
        (Some(key), Some(value)) => Some((key, value)),
        _ if allow_open => None,
        _ => {
            return Err(reader.unsupported(
                path,
                "`headerKey` and `headerValue` are required, so that only callers that know \
                 the header read the statistics; set `allowOpenPermissions: true` to serve them \
                 to everyone",
            ));
        }
    };
    if allow_open {
        reader.notice(
            &path.key("allowOpenPermissions"),
            "the monitoring endpoint is open to everyone; do not use this in production",
        );
    }
    Ok(MonitoringConfig::Http(HttpMonitoringConfig {
        path: url,
        required_header,
    }))
}
