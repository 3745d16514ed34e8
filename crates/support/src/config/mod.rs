//! Server configuration: every setting comes from a `--flag`, the environment or `.env` (loaded by
//! `main` with dotenvy before parsing), in that order of precedence, with the defaults documented in
//! README.md and `.env.example`. Empty environment values (`OPENAI_API_KEY=` in a copied `.env.example`)
//! count as unset. Secrets are wrapped in [`Secret`] so `Debug` output and `--help` never show them.
//! Validation failures are [`ConfigError`]s that `main` prints as one line before exiting with code 2.

mod model;
mod parse;
mod validate;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::agent::DEFAULT_TEMPERATURE;

pub(crate) use values::redact_url;
pub use values::{CorsOrigins, EffortChoice, ProviderChoice, Secret, SummaryChoice, Switch};

/// One mebibyte.
const MIB: usize = 1024 * 1024;

// Each default is named once, for both the clap attributes and `Config::default`, so they cannot drift.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 8000;
const DEFAULT_CORS_ALLOW_ORIGINS: &str = "*";
const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 20;
const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 30;
const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 75;
const DEFAULT_STREAM_STALL_TIMEOUT_SECS: u64 = 60;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
const DEFAULT_TOMBSTONE_RETENTION_SECS: u64 = 86_400;
const DEFAULT_THREAD_TITLES: Switch = Switch(true);
const DEFAULT_RUST_LOG: &str = "info";

/// Default `DATABASE_URL`: a SQLite file under `data/` next to where the server is started.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://data/chatkit.db";
/// Default `MAX_BODY_BYTES` (16 MiB): large enough for base64 dictation audio.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 16 * MIB;
/// Default `MAX_UPLOAD_BYTES` (5 MiB, the sample's attachment limit; exactly 5 MiB is accepted).
pub(crate) const DEFAULT_MAX_UPLOAD_BYTES: usize = 5 * MIB;

/// Why the configuration is unusable. `main` prints it as one line and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag or variable could not be parsed.
    #[error("{0}")]
    Invalid(String),
}

/// All settings of the server (`support --help` lists them with their environment variables).
#[derive(Clone, Parser)]
#[command(
    name = "support",
    version,
    about = "OpenSkies airline customer-support concierge: a ChatKit backend.",
    long_about = "OpenSkies airline customer-support concierge: a ChatKit backend.\n\nEvery option can also be set \
                  through the environment variable shown, or in a .env file in the working directory \
                  (copy .env.example). Empty values count as unset."
)]
pub struct Config {
    /// Interface to listen on (`0.0.0.0` for all interfaces).
    #[arg(long, env = "HOST", default_value = DEFAULT_HOST)]
    pub host: String,
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Database: `sqlite://path/to/file.db` (folder created), `sqlite::memory:`, or `postgres://user@host/db`.
    // `hide_env_values`: `--help` must not print the value from the environment, it may carry a password.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Maximum number of database connections (default: chosen by the store).
    #[arg(long, env = "DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<u32>,
    /// OpenAI API key (enables the OpenAI provider and dictation).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<Secret>,
    /// OpenAI-compatible base URL, e.g. the mock model `http://127.0.0.1:9100/v1`.
    #[arg(long, env = "OPENAI_BASE_URL", default_value = agents::DEFAULT_OPENAI_BASE_URL)]
    pub openai_base_url: String,
    /// Google Gemini API key (enables the Gemini provider).
    #[arg(long, env = "GEMINI_API_KEY", hide_env_values = true)]
    pub gemini_api_key: Option<Secret>,
    /// Gemini base URL.
    #[arg(long, env = "GEMINI_BASE_URL", default_value = agents::DEFAULT_GEMINI_BASE_URL)]
    pub gemini_base_url: String,
    /// Provider answering chat turns: openai, gemini or openai-compatible (default: the family MODEL names,
    /// e.g. gemini-…, if its key is set, else openai if its key is set, else gemini).
    #[arg(long, env = "MODEL_PROVIDER", value_enum, ignore_case = true)]
    pub model_provider: Option<ProviderChoice>,
    /// Chat model name (`--help` names each provider's default, see `command_with_help`).
    #[arg(long, env = "MODEL")]
    pub model: Option<String>,
    /// Provider answering a turn when the chat provider fails before its first token (after its retries)
    /// or refuses for a reason other than blocked content; needs that provider's key (default: no failover).
    #[arg(long, env = "MODEL_FALLBACK", value_enum, ignore_case = true)]
    pub model_fallback: Option<ProviderChoice>,
    /// Model of the fallback provider (default: that provider's default model).
    #[arg(long, env = "FALLBACK_MODEL")]
    pub fallback_model: Option<String>,
    /// Sampling temperature of the agent (0 to 2).
    #[arg(long, env = "TEMPERATURE", default_value_t = DEFAULT_TEMPERATURE)]
    pub temperature: f32,
    /// Reasoning effort of reasoning models: minimal, low, medium or high (unset: not sent; Gemini gets a
    /// thinking budget of 512, 1024, 8192 or 24576 tokens).
    #[arg(long, env = "REASONING_EFFORT", value_enum, ignore_case = true)]
    pub reasoning_effort: Option<EffortChoice>,
    /// Reasoning summary shown as "Thought for N s": auto, concise or detailed (unset: none; Gemini
    /// shows its thoughts for any value).
    #[arg(long, env = "REASONING_SUMMARY", value_enum, ignore_case = true)]
    pub reasoning_summary: Option<SummaryChoice>,
    /// Milliseconds a tool call may take before the chat shows what it is doing (0: always show it).
    #[arg(long, env = "TOOL_PROGRESS_DELAY_MS", default_value_t = agents::DEFAULT_PROGRESS_DELAY.as_millis() as u64)]
    pub tool_progress_delay_ms: u64,
    /// OpenAI model used for dictation (`input.transcribe`).
    #[arg(long, env = "TRANSCRIPTION_MODEL", default_value = agents::DEFAULT_TRANSCRIPTION_MODEL)]
    pub transcription_model: String,
    /// Seconds allowed to connect to the model API.
    #[arg(long, env = "MODEL_CONNECT_TIMEOUT_SECS", default_value_t = agents::DEFAULT_CONNECT_TIMEOUT.as_secs())]
    pub model_connect_timeout_secs: u64,
    /// Seconds to wait for a model response to start.
    #[arg(long, env = "MODEL_FIRST_BYTE_TIMEOUT_SECS", default_value_t = agents::DEFAULT_FIRST_BYTE_TIMEOUT.as_secs())]
    pub model_first_byte_timeout_secs: u64,
    /// Seconds without any data from a model stream before the turn fails.
    #[arg(long, env = "MODEL_IDLE_TIMEOUT_SECS", default_value_t = agents::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub model_idle_timeout_secs: u64,
    /// Retries (0–10) of a model request that failed before streaming (429, 5xx, connection errors).
    #[arg(long, env = "MODEL_MAX_RETRIES", default_value_t = agents::DEFAULT_MAX_RETRIES)]
    pub model_max_retries: u32,
    /// Total seconds a model request may spend waiting between retries.
    #[arg(long, env = "MODEL_MAX_RETRY_WAIT_SECS", default_value_t = agents::DEFAULT_MAX_RETRY_WAIT.as_secs())]
    pub model_max_retry_wait_secs: u64,
    /// Allowed browser origins: `*` or a comma-separated list such as `http://localhost:5171`.
    #[arg(long, env = "CORS_ALLOW_ORIGINS", default_value = DEFAULT_CORS_ALLOW_ORIGINS)]
    pub cors_allow_origins: String,
    /// Largest accepted body of `POST /support/chatkit`, in bytes (dictation audio arrives as base64).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Largest accepted attachment upload, in bytes (multipart overhead is allowed on top).
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: usize,
    /// Seconds a client may take to send a request's headers, from its first byte.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS)]
    pub header_read_timeout_secs: u64,
    /// Longest silence, in seconds, while a request body is being received (then 408).
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_READ_TIMEOUT_SECS)]
    pub body_read_timeout_secs: u64,
    /// Seconds a connection with no request in progress (kept alive, or never used) stays open.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout_secs: u64,
    /// Seconds a client may stop reading a response (a chat stream) before it is disconnected and its turn
    /// cancelled.
    #[arg(long, env = "STREAM_STALL_TIMEOUT_SECS", default_value_t = DEFAULT_STREAM_STALL_TIMEOUT_SECS)]
    pub stream_stall_timeout_secs: u64,
    /// Seconds answers in flight may take to finish after SIGTERM/Ctrl-C before they are stopped (their
    /// partial text kept) and the server exits. Keep Kubernetes' `terminationGracePeriodSeconds` above it.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,
    /// Seconds the positions of deleted threads and items are kept, so that a client paging from one
    /// continues after it; older ones are pruned (at start-up, then periodically). 0 keeps them forever.
    #[arg(long, env = "TOMBSTONE_RETENTION_SECS", default_value_t = DEFAULT_TOMBSTONE_RETENTION_SECS)]
    pub tombstone_retention_secs: u64,
    /// OpenTelemetry collector (OTLP over HTTP/protobuf) to send traces to, e.g. `http://127.0.0.1:4318`;
    /// unset: no traces. The other standard `OTEL_*` variables apply (service name, headers, sampler).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Title new threads from their first message (`on`/`off`).
    #[arg(long, env = "THREAD_TITLES", default_value_t = DEFAULT_THREAD_TITLES)]
    pub thread_titles: Switch,
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `debug`, `support=debug,tower_http=info`.
    #[arg(long, env = "RUST_LOG", default_value = DEFAULT_RUST_LOG)]
    pub rust_log: String,
    /// An OpenAI-compatible server (`COMPATIBLE_*`).
    #[command(flatten)]
    pub compatible: crate::compatible::CompatibleServerSettings,
    /// Log line format: `text` (human-readable) or `json` (one JSON object per line).
    #[arg(long, env = "LOG_FORMAT", value_enum, ignore_case = true, default_value = "text")]
    pub log_format: crate::log_format::LogFormat,
    /// Prometheus metrics (`METRICS*`).
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsSettings,
    /// Authentication (`AUTH_*`).
    #[command(flatten)]
    pub auth: crate::auth::AuthSettings,
    /// External URL and trusted proxies.
    #[command(flatten)]
    pub public_url: crate::public_url::PublicUrlSettings,
    /// Signed attachment links.
    #[command(flatten)]
    pub signed_urls: crate::signed_urls::SignedUrlSettings,
    /// Abuse limits per user.
    #[command(flatten)]
    pub user_limits: crate::limits::UserLimitSettings,
    /// A tool to run instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Tools of the `support` binary besides serving.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Print an HS256 token signed with AUTH_JWT_SECRET, for trying AUTH_MODE=jwt locally.
    Token(crate::auth::token::TokenArgs),
}

impl Default for Config {
    /// The documented defaults, ignoring the environment (used by tests).
    fn default() -> Self {
        Config {
            host: DEFAULT_HOST.into(),
            port: DEFAULT_PORT,
            database_url: DEFAULT_DATABASE_URL.into(),
            database_pool_size: None,
            openai_api_key: None,
            openai_base_url: agents::DEFAULT_OPENAI_BASE_URL.into(),
            gemini_api_key: None,
            gemini_base_url: agents::DEFAULT_GEMINI_BASE_URL.into(),
            model_provider: None,
            model_fallback: None,
            fallback_model: None,
            model: None,
            temperature: DEFAULT_TEMPERATURE,
            reasoning_effort: None,
            reasoning_summary: None,
            tool_progress_delay_ms: agents::DEFAULT_PROGRESS_DELAY.as_millis() as u64,
            transcription_model: agents::DEFAULT_TRANSCRIPTION_MODEL.into(),
            model_connect_timeout_secs: agents::DEFAULT_CONNECT_TIMEOUT.as_secs(),
            model_first_byte_timeout_secs: agents::DEFAULT_FIRST_BYTE_TIMEOUT.as_secs(),
            model_idle_timeout_secs: agents::DEFAULT_IDLE_TIMEOUT.as_secs(),
            model_max_retries: agents::DEFAULT_MAX_RETRIES,
            model_max_retry_wait_secs: agents::DEFAULT_MAX_RETRY_WAIT.as_secs(),
            cors_allow_origins: DEFAULT_CORS_ALLOW_ORIGINS.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
            body_read_timeout_secs: DEFAULT_BODY_READ_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            stream_stall_timeout_secs: DEFAULT_STREAM_STALL_TIMEOUT_SECS,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            tombstone_retention_secs: DEFAULT_TOMBSTONE_RETENTION_SECS,
            otel_exporter_otlp_endpoint: None,
            thread_titles: DEFAULT_THREAD_TITLES,
            rust_log: DEFAULT_RUST_LOG.into(),
            compatible: crate::compatible::CompatibleServerSettings::default(),
            log_format: crate::log_format::LogFormat::Text,
            metrics: crate::metrics::MetricsSettings::default(),
            auth: crate::auth::AuthSettings::default(),
            public_url: crate::public_url::PublicUrlSettings::default(),
            signed_urls: crate::signed_urls::SignedUrlSettings::default(),
            user_limits: crate::limits::UserLimitSettings::default(),
            command: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_pool_size", &self.database_pool_size)
            .field("openai_api_key", &self.openai_api_key)
            .field("openai_base_url", &self.openai_base_url)
            .field("gemini_api_key", &self.gemini_api_key)
            .field("gemini_base_url", &self.gemini_base_url)
            .field("model_provider", &self.model_provider)
            .field("model_fallback", &self.model_fallback)
            .field("fallback_model", &self.fallback_model)
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("reasoning_effort", &self.reasoning_effort)
            .field("reasoning_summary", &self.reasoning_summary)
            .field("tool_progress_delay_ms", &self.tool_progress_delay_ms)
            .field("transcription_model", &self.transcription_model)
            .field("model_connect_timeout_secs", &self.model_connect_timeout_secs)
            .field("model_first_byte_timeout_secs", &self.model_first_byte_timeout_secs)
            .field("model_idle_timeout_secs", &self.model_idle_timeout_secs)
            .field("model_max_retries", &self.model_max_retries)
            .field("model_max_retry_wait_secs", &self.model_max_retry_wait_secs)
            .field("cors_allow_origins", &self.cors_allow_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("body_read_timeout_secs", &self.body_read_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("stream_stall_timeout_secs", &self.stream_stall_timeout_secs)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("tombstone_retention_secs", &self.tombstone_retention_secs)
            .field("otel_exporter_otlp_endpoint", &self.otel_exporter_otlp_endpoint.as_deref().map(redact_url))
            .field("thread_titles", &self.thread_titles)
            .field("rust_log", &self.rust_log)
            .field("compatible", &self.compatible)
            .field("log_format", &self.log_format)
            .field("metrics", &self.metrics)
            .field("auth", &self.auth)
            .field("public_url", &self.public_url)
            .field("signed_urls", &self.signed_urls)
            .field("user_limits", &self.user_limits)
            .field("command", &self.command)
            .finish()
    }
}

/// What parsing the command line produced.
#[derive(Debug)]
pub enum Parsed {
    /// A usable configuration.
    Run(Box<Config>),
    /// `--help` or `--version`: print this text to stdout and exit 0.
    Print(String),
}

impl Config {
    /// The listen address as `host:port` (IPv6 hosts bracketed).
    pub(crate) fn listen_addr(&self) -> String {
        let host = self.host.trim();
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The folder a SQLite database file lives in, if `DATABASE_URL` names a file.
    pub(crate) fn sqlite_parent_dir(&self) -> Option<PathBuf> {
        let rest = self.database_url.trim().strip_prefix("sqlite:")?;
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" || path.starts_with(":memory:") {
            return None;
        }
        let parent = std::path::Path::new(path).parent()?;
        if parent.as_os_str().is_empty() { None } else { Some(parent.to_path_buf()) }
    }

    /// The timeouts of client connections.
    pub(crate) fn connection_timeouts(&self) -> crate::connections::ConnectionTimeouts {
        crate::connections::ConnectionTimeouts {
            header_read: Duration::from_secs(self.header_read_timeout_secs),
            body_read: Duration::from_secs(self.body_read_timeout_secs),
            idle: Duration::from_secs(self.idle_timeout_secs),
            write_stall: Duration::from_secs(self.stream_stall_timeout_secs),
        }
    }
}
