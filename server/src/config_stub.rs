use std::path::{Path, PathBuf};
use std::time::Duration;
#[derive(Debug, Clone)]
pub struct Config { pub server_name: String, pub log_level: LogLevel, pub http: HttpConfig, pub websocket: Option<WebSocketConfig>, pub rpc: RpcConfig, pub listen: ListenConfig, pub features: EnabledFeatures, pub source: Option<PathBuf> }
#[derive(Debug, Clone)]
pub struct HttpConfig { pub host: String, pub port: u16, pub health_check_path: String, pub allow_all_origins: bool, pub origins: Vec<String>, pub max_message_size: usize }
#[derive(Debug, Clone)]
pub struct WebSocketConfig { pub url_path: String, pub heartbeat_interval: Duration, pub outgoing_buffer_timeout: Duration, pub max_buffer_byte_size: usize, pub unauthenticated_client_timeout: Option<Duration>, pub max_auth_attempts: u32, pub log_invalid_auth_data: bool, pub max_message_size: usize, pub max_outgoing_queue_bytes: usize }
impl Default for WebSocketConfig { fn default() -> Self { WebSocketConfig { url_path: "/deepstream".into(), heartbeat_interval: Duration::from_millis(30000), outgoing_buffer_timeout: Duration::ZERO, max_buffer_byte_size: 100000, unauthenticated_client_timeout: Some(Duration::from_millis(180000)), max_auth_attempts: 3, log_invalid_auth_data: false, max_message_size: 1048576, max_outgoing_queue_bytes: 16<<20 } } }
#[derive(Debug, Clone)]
pub struct RpcConfig { pub ack_timeout: Duration, pub response_timeout: Duration, pub provide_requestor_name: bool, pub provide_requestor_data: bool }
#[derive(Debug, Clone)]
pub struct ListenConfig { pub shuffle_providers: bool, pub response_timeout: Duration, pub rematch_interval: Duration, pub match_cooldown: Duration }
#[derive(Debug, Clone)]
pub struct EnabledFeatures { pub record: bool, pub event: bool, pub rpc: bool, pub presence: bool }
#[derive(Debug, Clone, Copy)]
pub enum LogLevel { Debug, Info, Warn, Error, Off }
impl std::str::FromStr for LogLevel { type Err = String; fn from_str(s: &str) -> Result<Self, String> { Ok(LogLevel::Info) } }
pub struct Loaded { pub config: Config, pub notices: Vec<Notice> }
pub struct Notice { pub key: String, pub message: String }
#[derive(Debug, thiserror::Error)]
#[error("config")]
pub struct ConfigError;
impl Config {
    pub fn embedded() -> Config { Config { server_name: "x".into(), log_level: LogLevel::Info, http: HttpConfig { host: "127.0.0.1".into(), port: 6020, health_check_path: "/health-check".into(), allow_all_origins: true, origins: vec![], max_message_size: 1048576 }, websocket: Some(WebSocketConfig::default()), rpc: RpcConfig { ack_timeout: Duration::from_millis(1000), response_timeout: Duration::from_millis(10000), provide_requestor_name: false, provide_requestor_data: false }, listen: ListenConfig { shuffle_providers: true, response_timeout: Duration::from_millis(500), rematch_interval: Duration::from_millis(30000), match_cooldown: Duration::from_millis(10000) }, features: EnabledFeatures { record: true, event: true, rpc: true, presence: true }, source: None } }
    pub fn load(_path: &Path) -> Result<Loaded, ConfigError> { Ok(Loaded { config: Config::embedded(), notices: vec![] }) }
    pub fn discover() -> Result<Loaded, ConfigError> { Ok(Loaded { config: Config::embedded(), notices: vec![] }) }
}
