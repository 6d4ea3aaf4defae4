//! Finding the config file when none is named on the command line.

use std::path::{Path, PathBuf};

use super::text::EnvLookup;
use super::{Config, ConfigError, Loaded, document};

/// The environment variable that names the config file, as in deepstream. Despite its name
/// deepstream expects a file; a folder is accepted too and searched for `config.*`.
const CONFIG_VARIABLE: &str = "DEEPSTREAM_CONFIG_DIRECTORY";

/// The extensions tried for `config.*`, in deepstream's order (without `.js`).
const EXTENSIONS: &[&str] = &["yml", "yaml", "json"];

/// Loads the file that [`chosen_file`] picks, or returns the embedded defaults.
pub(super) fn discover(env: &EnvLookup) -> Result<Loaded, ConfigError> {
    match chosen_file(env, &default_folders())? {
        Some(path) => {
            tracing::debug!(file = %path.display(), "found config file");
            document::load(&path, env)
        }
        None => Ok(Loaded {
            config: Config::embedded(),
            notices: Vec::new(),
        }),
    }
}

/// Returns the file that [`discover`] loads, or `None` for the embedded defaults.
pub(super) fn discover_file(env: &EnvLookup) -> Result<Option<PathBuf>, ConfigError> {
    chosen_file(env, &default_folders())
}

/// Returns the folders whose `conf/config.*` deepstream tries: `/etc/deepstream`, `.`, `..`,
/// then the executable's folder and its parent.
fn default_folders() -> Vec<PathBuf> {
    let mut folders = vec![
        PathBuf::from("/etc/deepstream"),
        PathBuf::from("."),
        PathBuf::from(".."),
    ];
    let executable = std::env::current_exe().ok();
    if let Some(folder) = executable.as_deref().and_then(Path::parent) {
        folders.push(folder.to_path_buf());
        folders.extend(folder.parent().map(Path::to_path_buf));
    }
    folders
}

/// Picks the config file: the one named by `$DEEPSTREAM_CONFIG_DIRECTORY` when it is set and
/// not empty, else the first `conf/config.{yml,yaml,json}` that exists under `folders`.
pub(super) fn chosen_file(
    env: &EnvLookup,
    folders: &[PathBuf],
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(configured) = env(CONFIG_VARIABLE).filter(|value| !value.is_empty()) {
        let configured = PathBuf::from(configured);
        if configured.is_dir() {
            return match config_in(&configured) {
                Some(file) => Ok(Some(file)),
                None => Err(ConfigError::NotFound {
                    file: configured.join("config.yml"),
                }),
            };
        }
        if configured.exists() {
            return Ok(Some(configured));
        }
        return Err(ConfigError::NotFound { file: configured });
    }

    Ok(folders
        .iter()
        .find_map(|folder| config_in(&folder.join("conf"))))
}

/// Returns the first `config.{yml,yaml,json}` that exists in `folder`.
fn config_in(folder: &Path) -> Option<PathBuf> {
    EXTENSIONS
        .iter()
        .map(|extension| folder.join(format!("config.{extension}")))
        .find(|file| file.is_file())
}
