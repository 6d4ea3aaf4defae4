//! Resolving `fileLoad(path)` and `file(path)` inside string values.
//!
//! deepstream replaces both in the text of the file before parsing it. Here they are replaced
//! in the parsed tree, which gives the same result for the forms that work in deepstream and
//! cannot be fooled by a comment or by a quote inside the loaded content.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::read::KeyPath;
use super::text::{self, Comments, EnvLookup};
use super::{ConfigError, FileFormat, Notice};

/// Resolves includes in a config file's value tree.
pub(super) struct Includes<'a> {
    /// The config file, for error messages.
    file: &'a Path,
    /// The folder relative paths start from: the config file's folder, made absolute.
    base: PathBuf,
    env: &'a EnvLookup,
    notices: &'a mut Vec<Notice>,
}

impl<'a> Includes<'a> {
    /// Prepares to resolve includes for `file`.
    pub(super) fn new(file: &'a Path, env: &'a EnvLookup, notices: &'a mut Vec<Notice>) -> Self {
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let base = match absolute.parent() {
            Some(parent) => parent.to_path_buf(),
            None => PathBuf::from("."),
        };
        Includes {
            file,
            base,
            env,
            notices,
        }
    }

    /// Replaces every `fileLoad(path)` and `file(path)` in `value` and below it. The content
    /// of a loaded file is not searched again, as in deepstream.
    pub(super) fn resolve(&mut self, path: &KeyPath, value: &mut Value) -> Result<(), ConfigError> {
        match value {
            Value::String(string) => {
                if let Some(target) = self.file_load_target(path, string)? {
                    *value = self.load(path, &target)?;
                } else if let Some(replaced) = self.replace_file_path(string) {
                    *string = replaced;
                }
            }
            Value::Sequence(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.resolve(&path.index(index), item)?;
                }
            }
            Value::Mapping(mapping) => {
                for (key, item) in mapping.iter_mut() {
                    self.resolve(&path.key(&key_text(key)), item)?;
                }
            }
            Value::Tagged(tagged) => self.resolve(path, &mut tagged.value)?,
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    /// Returns the path named by a `fileLoad(path)` value. Other uses of `fileLoad(` are an
    /// error: deepstream would paste the file's content into the middle of the text.
    fn file_load_target(
        &self,
        path: &KeyPath,
        string: &str,
    ) -> Result<Option<PathBuf>, ConfigError> {
        if !string.contains("fileLoad(") {
            return Ok(None);
        }
        let name = string
            .trim()
            .strip_prefix("fileLoad(")
            .and_then(|rest| rest.strip_suffix(')'))
            .map(str::trim)
            .filter(|name| !name.is_empty());
        match name {
            Some(name) => Ok(Some(self.resolve_path(name))),
            None => Err(ConfigError::InvalidValue {
                file: self.file.to_path_buf(),
                key: path.to_string(),
                expected: "`fileLoad(path)` as the whole value, with a file name inside".to_owned(),
                found: format!("{string:?}"),
            }),
        }
    }

    /// Loads a `fileLoad(...)` target: YAML and JSON files are parsed, other files become a
    /// string. `${VAR}` is substituted in all of them, as in deepstream.
    fn load(&mut self, path: &KeyPath, target: &Path) -> Result<Value, ConfigError> {
        let wrap = |source: ConfigError| ConfigError::Include {
            file: self.file.to_path_buf(),
            key: path.to_string(),
            source: Box::new(source),
        };

        let format = text::config_format(target).ok();
        let comments = match format {
            Some(FileFormat::Yaml) => Comments::Yaml,
            Some(FileFormat::Json) | None => Comments::None,
        };
        let raw = text::read_file(target).map_err(wrap)?;
        let substituted =
            text::substitute_env(target, &raw, comments, self.env, self.notices).map_err(wrap)?;
        let value = match format {
            Some(format) => text::parse(target, &substituted, format).map_err(wrap)?,
            None => Value::String(substituted),
        };

        tracing::debug!(file = %target.display(), key = %path, "loaded file named by fileLoad");
        Ok(value)
    }

    /// Returns `name` as an absolute path, relative to the config file's folder unless it is
    /// absolute already.
    fn resolve_path(&self, name: &str) -> PathBuf {
        let joined = self.base.join(name);
        std::path::absolute(&joined).unwrap_or(joined)
    }

    /// Replaces `file(path)` with the resolved path, like deepstream: from the first `file(`
    /// that starts a word to the last `)` after it.
    fn replace_file_path(&self, string: &str) -> Option<String> {
        let start = string
            .match_indices("file(")
            .map(|(index, _)| index)
            .find(|&index| {
                let before = string[..index].chars().next_back();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })?;
        let name_start = start + "file(".len();
        let end = name_start + string[name_start..].rfind(')')?;
        let resolved = self.resolve_path(string[name_start..end].trim());

        // NOTE: a folder name that is not UTF-8 is written with replacement characters.
        Some(format!(
            "{}{}{}",
            &string[..start],
            resolved.to_string_lossy(),
            &string[end + 1..]
        ))
    }
}

/// Returns a mapping key as text for a key path. Keys that are not strings are rejected later,
/// when the section that contains them is read.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(string) => string.clone(),
        Value::Bool(value) => value.to_string(),
        Value::Number(number) => number.to_string(),
        _ => "?".to_owned(),
    }
}
