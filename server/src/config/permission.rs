//! The `permission` section: permission type `none`, or `config` with Valve rules from a
//! `permissions.yml`.
//!
//! The rules come from `options.permissions` (usually `fileLoad(permissions.yml)`, as in
//! deepstream's shipped config) or from the file named by `options.path`, relative to the
//! config file's folder. They are compiled here, so a rule with a syntax error, an unknown
//! variable or a misplaced `data` stops the server at start-up with a message naming it.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::read::{Check, KeyPath, Reader};
use super::services::read_plugin;
use super::{ConfigError, FileFormat, text};
use crate::permission::{DEFAULT_MAX_RULE_ITERATIONS, PermissionOptions, Permissions};

/// The permission checks the server applies.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub enum PermissionConfig {
    /// `type: none`: every action is allowed.
    #[default]
    None,
    /// `type: config`: Valve rules.
    Rules(PermissionRules),
}

/// Compiled permission rules and where they came from.
#[derive(Clone)]
pub struct PermissionRules {
    /// The compiled rules.
    pub permissions: Permissions,
    /// The file the rules were read from, for log lines.
    pub source: PathBuf,
    /// `maxRuleIterations`.
    pub max_rule_iterations: NonZeroU32,
}

impl fmt::Debug for PermissionRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionRules")
            .field("source", &self.source)
            .field("max_rule_iterations", &self.max_rule_iterations)
            .finish_non_exhaustive()
    }
}

/// Two rule sets are equal when they come from the same file with the same options.
impl PartialEq for PermissionRules {
    fn eq(&self, other: &PermissionRules) -> bool {
        self.source == other.source && self.max_rule_iterations == other.max_rule_iterations
    }
}

impl PermissionConfig {
    /// Returns the rules to check, `Permissions::allow_all` for type `none`.
    pub fn permissions(&self) -> Permissions {
        match self {
            PermissionConfig::None => Permissions::allow_all(),
            PermissionConfig::Rules(rules) => rules.permissions.clone(),
        }
    }
}

const PERMISSION_TYPES: &[&str] = &["config", "none"];

const PERMISSION_OPTIONS: &[(&str, Check)] = &[
    ("path", Check::Text),
    ("maxRuleIterations", Check::WholeNumber { min: 1 }),
    ("cacheEvacuationInterval", Check::WholeNumber { min: 1 }),
];

/// Reads `permission` and compiles its rules.
pub(super) fn permission(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<PermissionConfig, ConfigError> {
    let plugin = read_plugin(reader, path, value, PERMISSION_TYPES, PERMISSION_OPTIONS)?;
    if plugin.is_plugin {
        return Err(reader.unsupported(
            path,
            "custom permission plugins are not supported by this server; use type `config` \
             with a permissions.yml, or `none`",
        ));
    }
    if plugin.kind != Some("config") {
        return Ok(PermissionConfig::None);
    }

    let options_path = path.key("options");
    let options = value.get("options");
    let max_rule_iterations = match options.and_then(|options| options.get("maxRuleIterations")) {
        Some(value) => {
            let count = reader.whole_number(
                &options_path.key("maxRuleIterations"),
                value,
                1,
                u64::from(u32::MAX),
                "a whole number of rule evaluations",
            )?;
            // The range check above keeps `count` within 1..=u32::MAX.
            u32::try_from(count)
                .ok()
                .and_then(NonZeroU32::new)
                .unwrap_or(DEFAULT_MAX_RULE_ITERATIONS)
        }
        None => DEFAULT_MAX_RULE_ITERATIONS,
    };
    if options.is_some_and(|options| options.get("cacheEvacuationInterval").is_some()) {
        reader.notice(
            &options_path.key("cacheEvacuationInterval"),
            "has no effect: this server compiles each rule once and keeps no result cache",
        );
    }

    let (document, source) = rules_document(reader, &options_path, options)?;
    let permissions = Permissions::from_yaml(
        &document,
        &source,
        &PermissionOptions {
            max_rule_iterations,
        },
    )
    .map_err(|error| ConfigError::Permissions {
        file: reader.file().to_path_buf(),
        source: Box::new(error),
    })?;
    Ok(PermissionConfig::Rules(PermissionRules {
        permissions,
        source,
        max_rule_iterations,
    }))
}

/// Returns the rules document and the file it came from: `options.permissions`, loaded
/// already by `fileLoad(...)`, else the file named by `options.path`.
fn rules_document(
    reader: &Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
) -> Result<(Value, PathBuf), ConfigError> {
    if let Some(rules) = options.and_then(|options| options.get("permissions")) {
        let label = PathBuf::from(format!(
            "{} (permission.options.permissions)",
            reader.file().display()
        ));
        return Ok((rules.clone(), label));
    }
    let Some(file) = options.and_then(|options| options.get("path")) else {
        return Err(reader.invalid(
            &path.key("path"),
            "the permissions file: `path: permissions.yml` or \
             `permissions: fileLoad(permissions.yml)`",
            &Value::Null,
        ));
    };
    let file = resolve(reader.file(), reader.text(&path.key("path"), file)?);
    let wrap = |source: ConfigError| ConfigError::Include {
        file: reader.file().to_path_buf(),
        key: path.key("path").to_string(),
        source: Box::new(source),
    };
    let format = text::config_format(&file).map_err(wrap)?;
    let raw = text::read_file(&file).map_err(wrap)?;
    let document = text::parse(&file, &raw, format).map_err(wrap)?;
    debug_assert!(matches!(format, FileFormat::Yaml | FileFormat::Json));
    Ok((document, file))
}

/// Resolves `name` against the folder of the config file, as deepstream does.
fn resolve(config_file: &Path, name: &str) -> PathBuf {
    let file = Path::new(name);
    if file.is_absolute() {
        return file.to_path_buf();
    }
    let config_file =
        std::path::absolute(config_file).unwrap_or_else(|_| config_file.to_path_buf());
    config_file.parent().unwrap_or(Path::new(".")).join(file)
}
