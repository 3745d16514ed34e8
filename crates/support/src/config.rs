//! Server configuration: every setting comes from a `--flag`, the environment or `.env` (loaded by
//! `main` with dotenvy before parsing), in that order of precedence, with the defaults documented in
//! README.md and `.env.example`. Empty environment values (`OPENAI_API_KEY=` in a copied `.env.example`)
//! count as unset. Secrets are wrapped in [`Secret`] so `Debug` output and `--help` never show them.
//! Validation failures are [`ConfigError`]s that `main` prints as one line before exiting with code 2.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::agent::DEFAULT_TEMPERATURE;

/// One mebibyte.
const MIB: usize = 1024 * 1024;

/// Default `DATABASE_URL`: a SQLite file under `data/` next to where the server is started.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://data/chatkit.db";
/// Default `MAX_BODY_BYTES` (16 MiB): large enough for base64 dictation audio.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 16 * MIB;
/// Default `MAX_UPLOAD_BYTES` (5 MiB, the sample's attachment limit; exactly 5 MiB is accepted).
pub(crate) const DEFAULT_MAX_UPLOAD_BYTES: usize = 5 * MIB;
/// The `User-Agent` of requests to the model APIs.
pub(crate) const MODEL_USER_AGENT: &str = concat!("openskies-agents/", env!("CARGO_PKG_VERSION"));

/// A secret value (API key). `Debug` and `Display` print `<redacted>`; use `Secret::expose` to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; never log it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.trim().to_string()))
    }
}

/// Which model provider answers chat turns when both keys are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderChoice {
    /// OpenAI Responses API.
    Openai,
    /// Google Gemini API.
    Gemini,
    /// An OpenAI-compatible Chat Completions server (`COMPATIBLE_*` settings).
    OpenaiCompatible,
}

/// `REASONING_EFFORT`: how much a reasoning model thinks (see [`agents::ReasoningEffort`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EffortChoice {
    /// As little as the model allows.
    Minimal,
    /// Little.
    Low,
    /// The models' usual default.
    Medium,
    /// Thorough.
    High,
}

/// `REASONING_SUMMARY`: how detailed the shown summary of the reasoning is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryChoice {
    /// The most detailed summary the model supports.
    Auto,
    /// Short.
    Concise,
    /// Long.
    Detailed,
}

/// An on/off switch accepting `on|off|true|false|1|0|yes|no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl std::str::FromStr for Switch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(Switch(true)),
            "off" | "false" | "0" | "no" => Ok(Switch(false)),
            other => Err(format!("expected on or off, got `{other}`")),
        }
    }
}

impl fmt::Display for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "on" } else { "off" })
    }
}

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin (the sample's behaviour).
    Any,
    /// Only these exact origins (`scheme://host[:port]`).
    List(Vec<String>),
}

/// The `agents` name of a provider choice.
fn provider_kind(choice: ProviderChoice) -> agents::ProviderKind {
    match choice {
        ProviderChoice::Openai => agents::ProviderKind::OpenAi,
        ProviderChoice::Gemini => agents::ProviderKind::Gemini,
        ProviderChoice::OpenaiCompatible => agents::ProviderKind::Compatible,
    }
}

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
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
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
    #[arg(long, env = "CORS_ALLOW_ORIGINS", default_value = "*")]
    pub cors_allow_origins: String,
    /// Largest accepted body of `POST /support/chatkit`, in bytes (dictation audio arrives as base64).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Largest accepted attachment upload, in bytes (multipart overhead is allowed on top).
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: usize,
    /// Seconds a client may take to send a request's headers, from its first byte.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 20)]
    pub header_read_timeout_secs: u64,
    /// Longest silence, in seconds, while a request body is being received (then 408).
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,
    /// Seconds a connection with no request in progress (kept alive, or never used) stays open.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 75)]
    pub idle_timeout_secs: u64,
    /// Seconds a client may stop reading a response (a chat stream) before it is disconnected and its turn
    /// cancelled.
    #[arg(long, env = "STREAM_STALL_TIMEOUT_SECS", default_value_t = 60)]
    pub stream_stall_timeout_secs: u64,
    /// Seconds answers in flight may take to finish after SIGTERM/Ctrl-C before they are stopped (their
    /// partial text kept) and the server exits. Keep Kubernetes' `terminationGracePeriodSeconds` above it.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Seconds the positions of deleted threads and items are kept, so that a client paging from one
    /// continues after it; older ones are pruned (at start-up, then periodically). 0 keeps them forever.
    #[arg(long, env = "TOMBSTONE_RETENTION_SECS", default_value_t = 86_400)]
    pub tombstone_retention_secs: u64,
    /// OpenTelemetry collector (OTLP over HTTP/protobuf) to send traces to, e.g. `http://127.0.0.1:4318`;
    /// unset: no traces. The other standard `OTEL_*` variables apply (service name, headers, sampler).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Title new threads from their first message (`on`/`off`).
    #[arg(long, env = "THREAD_TITLES", default_value = "on")]
    pub thread_titles: Switch,
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `debug`, `support=debug,tower_http=info`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
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
            host: "127.0.0.1".into(),
            port: 8000,
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
            cors_allow_origins: "*".into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            header_read_timeout_secs: 20,
            body_read_timeout_secs: 30,
            idle_timeout_secs: 75,
            stream_stall_timeout_secs: 60,
            shutdown_grace_secs: 30,
            tombstone_retention_secs: 86_400,
            otel_exporter_otlp_endpoint: None,
            thread_titles: Switch(true),
            rust_log: "info".into(),
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
    /// Parses the process arguments and environment (call `dotenvy::dotenv()` first).
    pub fn load() -> Result<Parsed, ConfigError> {
        Self::load_from(std::env::args_os())
    }

    /// Parses the given arguments (first = program name) and the environment, then validates.
    pub(crate) fn load_from<I, T>(args: I) -> Result<Parsed, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = Self::command_with_help();
        // Empty environment values (`KEY=` lines of a copied .env.example) mean "unset".
        let empty: Vec<clap::Id> = cmd
            .get_arguments()
            .filter(|a| a.get_env().and_then(std::env::var_os).is_some_and(|v| v.is_empty()))
            .map(|a| a.get_id().clone())
            .collect();
        for id in empty {
            cmd = cmd.mut_arg(id, |a| a.env(None::<&str>));
        }
        let matches = match cmd.try_get_matches_from(args) {
            Ok(m) => m,
            Err(e) => {
                return match e.kind() {
                    clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                        Ok(Parsed::Print(e.render().to_string()))
                    }
                    _ => Err(ConfigError::Invalid(one_line(&e.render().to_string()))),
                };
            }
        };
        let config = Config::from_arg_matches(&matches).map_err(|e| ConfigError::Invalid(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(Parsed::Run(Box::new(config)))
    }

    /// The clap command, with the help texts that name constants (clap attributes take only literals).
    fn command_with_help() -> clap::Command {
        Config::command().mut_arg("model", |a| {
            a.help(format!(
                "Model name (default: {} for OpenAI, {} for Gemini; required for openai-compatible)",
                agents::DEFAULT_OPENAI_MODEL,
                agents::DEFAULT_GEMINI_MODEL
            ))
        })
    }

    /// Checks values clap cannot check by type.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.host.trim().is_empty() {
            return bad("HOST must not be empty (use 127.0.0.1, 0.0.0.0 or a host name)".into());
        }
        if !(0.0..=2.0).contains(&self.temperature) || self.temperature.is_nan() {
            return bad(format!("TEMPERATURE must be between 0 and 2, got {}", self.temperature));
        }
        if self.max_body_bytes < 1024 {
            return bad(format!("MAX_BODY_BYTES must be at least 1024, got {}", self.max_body_bytes));
        }
        if self.max_upload_bytes == 0 {
            return bad("MAX_UPLOAD_BYTES must be greater than 0".into());
        }
        if self.database_pool_size == Some(0) {
            return bad("DATABASE_POOL_SIZE must be at least 1".into());
        }
        for (name, secs) in [
            ("MODEL_CONNECT_TIMEOUT_SECS", self.model_connect_timeout_secs),
            ("MODEL_FIRST_BYTE_TIMEOUT_SECS", self.model_first_byte_timeout_secs),
            ("MODEL_IDLE_TIMEOUT_SECS", self.model_idle_timeout_secs),
            ("HEADER_READ_TIMEOUT_SECS", self.header_read_timeout_secs),
            ("BODY_READ_TIMEOUT_SECS", self.body_read_timeout_secs),
            ("IDLE_TIMEOUT_SECS", self.idle_timeout_secs),
            ("STREAM_STALL_TIMEOUT_SECS", self.stream_stall_timeout_secs),
        ] {
            if secs == 0 {
                return bad(format!("{name} must be at least 1 second"));
            }
        }
        if self.model_max_retries > 10 {
            return bad(format!("MODEL_MAX_RETRIES must be from 0 to 10, got {}", self.model_max_retries));
        }
        let db = self.database_url.trim();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("memory:"))
        {
            return bad(format!(
                "DATABASE_URL must start with sqlite:, postgres://, postgresql:// or memory:, got `{}`",
                redact_url(db)
            ));
        }
        for (name, url) in [("OPENAI_BASE_URL", &self.openai_base_url), ("GEMINI_BASE_URL", &self.gemini_base_url)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("{name} must start with http:// or https://, got `{url}`"));
            }
        }
        self.cors_origins()?;
        self.auth.validate().map_err(|e| ConfigError::Invalid(e.0))?;
        self.public_url.validate().map_err(ConfigError::Invalid)?;
        self.signed_urls.validate().map_err(ConfigError::Invalid)?;
        self.metrics.validate().map_err(ConfigError::Invalid)?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.rust_log) {
            return bad(format!("RUST_LOG `{}` is not a valid log filter: {e}", self.rust_log));
        }
        let compatible_chosen = self.model_provider == Some(ProviderChoice::OpenaiCompatible);
        self.compatible.validate(compatible_chosen, self.model.as_deref()).map_err(ConfigError::Invalid)?;
        let keyed = match self.model_provider {
            Some(ProviderChoice::Openai) => Some(("openai", "OPENAI_API_KEY", &self.openai_api_key)),
            Some(ProviderChoice::Gemini) => Some(("gemini", "GEMINI_API_KEY", &self.gemini_api_key)),
            // Its key is optional; the base URL and model were checked above.
            Some(ProviderChoice::OpenaiCompatible) | None => None,
        };
        if let Some((name, var, key)) = keyed
            && expose_key(key).is_none()
        {
            return bad(format!("MODEL_PROVIDER is `{name}` but {var} is not set (add it to .env)"));
        }
        self.validate_fallback()
    }

    /// `MODEL_FALLBACK` needs its own key and must name the provider that is not answering already;
    /// `FALLBACK_MODEL` means nothing without it.
    fn validate_fallback(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let Some(choice) = self.model_fallback else {
            if self.fallback_model.as_deref().is_some_and(|m| !m.trim().is_empty()) {
                return bad("FALLBACK_MODEL is set but MODEL_FALLBACK is not (set it to openai or gemini)".into());
            }
            return Ok(());
        };
        let (name, var, key) = match choice {
            ProviderChoice::Openai => ("openai", "OPENAI_API_KEY", &self.openai_api_key),
            ProviderChoice::Gemini => ("gemini", "GEMINI_API_KEY", &self.gemini_api_key),
            ProviderChoice::OpenaiCompatible => {
                return bad("MODEL_FALLBACK must be openai or gemini, got `openai-compatible`".into());
            }
        };
        if expose_key(key).is_none() {
            return bad(format!("MODEL_FALLBACK is `{name}` but {var} is not set (add it to .env)"));
        }
        if self.model_config().selected_provider().ok().flatten() == Some(provider_kind(choice)) {
            return bad(format!(
                "MODEL_FALLBACK is `{name}`, the provider already answering chat turns; set it to the other provider"
            ));
        }
        Ok(())
    }

    /// The parsed `CORS_ALLOW_ORIGINS`.
    pub fn cors_origins(&self) -> Result<CorsOrigins, ConfigError> {
        let raw = self.cors_allow_origins.trim();
        if raw.is_empty() || raw == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut list = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                return Ok(CorsOrigins::Any);
            }
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && origin.bytes().all(|b| b.is_ascii_graphic())
                && !origin.trim_start_matches("https://").trim_start_matches("http://").contains('/');
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "CORS_ALLOW_ORIGINS entry `{origin}` is not an origin like http://localhost:5171 (no path, no trailing slash)"
                )));
            }
            list.push(origin.to_string());
        }
        Ok(CorsOrigins::List(list))
    }

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

    /// `REASONING_EFFORT` and `REASONING_SUMMARY` in the form the `agents` crate takes.
    fn reasoning(&self) -> agents::Reasoning {
        agents::Reasoning {
            effort: self.reasoning_effort.map(|e| match e {
                EffortChoice::Minimal => agents::ReasoningEffort::Minimal,
                EffortChoice::Low => agents::ReasoningEffort::Low,
                EffortChoice::Medium => agents::ReasoningEffort::Medium,
                EffortChoice::High => agents::ReasoningEffort::High,
            }),
            summary: self.reasoning_summary.map(|s| match s {
                SummaryChoice::Auto => agents::ReasoningSummary::Auto,
                SummaryChoice::Concise => agents::ReasoningSummary::Concise,
                SummaryChoice::Detailed => agents::ReasoningSummary::Detailed,
            }),
        }
    }

    /// The model settings in the form the `agents` crate takes.
    pub fn model_config(&self) -> agents::ModelConfig {
        let access = |key: &Option<Secret>, base_url: &str, var: &str| agents::ProviderAccess {
            api_key: expose_key(key).map(str::to_string),
            base_url: base_url.to_string(),
            rejected_key_hint: Some(format!("check {var} in .env")),
        };
        agents::ModelConfig {
            provider: self.model_provider.map(provider_kind),
            model: self.model.clone().filter(|m| !m.trim().is_empty()),
            fallback: self.model_fallback.map(provider_kind),
            fallback_model: self.fallback_model.clone().filter(|m| !m.trim().is_empty()),
            openai: access(&self.openai_api_key, &self.openai_base_url, "OPENAI_API_KEY"),
            gemini: access(&self.gemini_api_key, &self.gemini_base_url, "GEMINI_API_KEY"),
            compatible: self.compatible.model_settings(),
            transcription_model: self.transcription_model.clone(),
            timeouts: agents::Timeouts {
                connect: Duration::from_secs(self.model_connect_timeout_secs),
                first_byte: Duration::from_secs(self.model_first_byte_timeout_secs),
                idle: Duration::from_secs(self.model_idle_timeout_secs),
            },
            retry: agents::RetryPolicy {
                max_retries: self.model_max_retries,
                max_total_wait: Duration::from_secs(self.model_max_retry_wait_secs),
                ..agents::RetryPolicy::default()
            },
            user_agent: Some(MODEL_USER_AGENT.to_string()),
            reasoning: self.reasoning(),
        }
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

    /// The model key names that are configured (for the banner), e.g. `["openai"]`.
    pub fn configured_providers(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if expose_key(&self.openai_api_key).is_some() {
            out.push("openai");
        }
        if expose_key(&self.gemini_api_key).is_some() {
            out.push("gemini");
        }
        if self.model_provider == Some(ProviderChoice::OpenaiCompatible) {
            out.push("openai-compatible");
        }
        out
    }
}

/// A key that is set and not blank.
fn expose_key(key: &Option<Secret>) -> Option<&str> {
    key.as_ref().map(Secret::expose).filter(|k| !k.is_empty())
}

/// Hides the password of a database URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}

/// Reduces a clap error rendering to its first meaningful line, without the `error: ` prefix.
fn one_line(rendered: &str) -> String {
    let line = rendered.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("invalid arguments");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["support"];
        full.extend_from_slice(args);
        match Config::load_from(full)? {
            Parsed::Run(c) => Ok(*c),
            Parsed::Print(p) => panic!("unexpected print: {p}"),
        }
    }

    #[test]
    fn debug_redacts_keys_and_database_password() {
        let c = Config {
            openai_api_key: Some(Secret::new("sk-very-secret")),
            gemini_api_key: Some(Secret::new("AIza-secret")),
            database_url: "postgres://app:hunter2@db:5432/x".into(),
            ..Config::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("sk-very-secret"), "{d}");
        assert!(!d.contains("AIza-secret"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("openai_api_key: Some(\"<redacted>\")"), "{d}");
        assert!(d.contains("postgres://app:***@db:5432/x"), "{d}");
    }

    #[test]
    fn flags_parse_and_validate() {
        let c = parse(&["--port", "9001", "--thread-titles", "off", "--cors-allow-origins", "http://a:1, https://b"])
            .unwrap();
        assert_eq!(c.port, 9001);
        assert_eq!(c.thread_titles, Switch(false));
        assert_eq!(
            c.cors_origins().unwrap(),
            CorsOrigins::List(vec!["http://a:1".to_string(), "https://b".to_string()])
        );
        assert_eq!(c.listen_addr(), format!("{}:9001", c.host));
    }

    #[test]
    fn bad_values_give_one_line_errors() {
        let e = parse(&["--port", "notaport"]).unwrap_err().to_string();
        assert!(e.contains("notaport") && e.contains("--port <PORT>"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = parse(&["--temperature", "7"]).unwrap_err().to_string();
        assert_eq!(e, "TEMPERATURE must be between 0 and 2, got 7");
        let e = parse(&["--database-url", "mysql://x"]).unwrap_err().to_string();
        assert_eq!(e, "DATABASE_URL must start with sqlite:, postgres://, postgresql:// or memory:, got `mysql://x`");
        let e = parse(&["--cors-allow-origins", "http://a/path"]).unwrap_err().to_string();
        assert!(e.starts_with("CORS_ALLOW_ORIGINS entry `http://a/path`"), "{e}");
        let e = parse(&["--thread-titles", "maybe"]).unwrap_err().to_string();
        assert!(e.contains("expected on or off"), "{e}");
        let e = parse(&["--model-provider", "claude"]).unwrap_err().to_string();
        assert!(e.contains("claude"), "{e}");
    }

    #[test]
    fn help_lists_every_variable_and_hides_key_values() {
        let Parsed::Print(help) = Config::load_from(["support", "--help"]).unwrap() else { panic!("no help") };
        let models = format!(
            "default: {} for OpenAI, {} for Gemini",
            agents::DEFAULT_OPENAI_MODEL,
            agents::DEFAULT_GEMINI_MODEL
        );
        assert!(help.contains(&models), "{help}");
        for var in [
            "HOST",
            "PORT",
            "DATABASE_URL",
            "DATABASE_POOL_SIZE",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "GEMINI_API_KEY",
            "GEMINI_BASE_URL",
            "MODEL_PROVIDER",
            "MODEL",
            "TEMPERATURE",
            "REASONING_EFFORT",
            "REASONING_SUMMARY",
            "TOOL_PROGRESS_DELAY_MS",
            "TRANSCRIPTION_MODEL",
            "MODEL_CONNECT_TIMEOUT_SECS",
            "MODEL_FIRST_BYTE_TIMEOUT_SECS",
            "MODEL_IDLE_TIMEOUT_SECS",
            "MODEL_MAX_RETRIES",
            "MODEL_MAX_RETRY_WAIT_SECS",
            "CORS_ALLOW_ORIGINS",
            "MAX_BODY_BYTES",
            "MAX_UPLOAD_BYTES",
            "HEADER_READ_TIMEOUT_SECS",
            "BODY_READ_TIMEOUT_SECS",
            "IDLE_TIMEOUT_SECS",
            "STREAM_STALL_TIMEOUT_SECS",
            "SHUTDOWN_GRACE_SECS",
            "TOMBSTONE_RETENTION_SECS",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "THREAD_TITLES",
            "RUST_LOG",
            "COMPATIBLE_BASE_URL",
            "COMPATIBLE_API_KEY",
            "COMPATIBLE_HEADERS",
            "COMPATIBLE_MAX_TOKENS",
        ] {
            assert!(help.contains(&format!("[env: {var}")), "missing {var} in help:\n{help}");
        }
    }

    #[test]
    fn defaults_match_clap_defaults() {
        let cmd = Config::command_with_help();
        let d = Config::default();
        let default_of = |id: &str| -> String {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_default_values().first().map(|v| v.to_string_lossy().to_string()).unwrap_or_default()
        };
        assert_eq!(default_of("host"), d.host);
        assert_eq!(default_of("port"), d.port.to_string());
        assert_eq!(default_of("database_url"), d.database_url);
        assert_eq!(default_of("openai_base_url"), d.openai_base_url);
        assert_eq!(default_of("gemini_base_url"), d.gemini_base_url);
        assert_eq!(default_of("temperature"), d.temperature.to_string());
        assert_eq!(default_of("tool_progress_delay_ms"), d.tool_progress_delay_ms.to_string());
        assert_eq!(default_of("transcription_model"), d.transcription_model);
        assert_eq!(default_of("model_connect_timeout_secs"), d.model_connect_timeout_secs.to_string());
        assert_eq!(default_of("model_first_byte_timeout_secs"), d.model_first_byte_timeout_secs.to_string());
        assert_eq!(default_of("model_idle_timeout_secs"), d.model_idle_timeout_secs.to_string());
        assert_eq!(default_of("model_max_retry_wait_secs"), d.model_max_retry_wait_secs.to_string());
        assert_eq!(default_of("model_max_retries"), d.model_max_retries.to_string());
        assert_eq!(default_of("cors_allow_origins"), d.cors_allow_origins);
        assert_eq!(default_of("max_body_bytes"), d.max_body_bytes.to_string());
        assert_eq!(default_of("max_upload_bytes"), d.max_upload_bytes.to_string());
        assert_eq!(default_of("header_read_timeout_secs"), d.header_read_timeout_secs.to_string());
        assert_eq!(default_of("body_read_timeout_secs"), d.body_read_timeout_secs.to_string());
        assert_eq!(default_of("idle_timeout_secs"), d.idle_timeout_secs.to_string());
        assert_eq!(default_of("stream_stall_timeout_secs"), d.stream_stall_timeout_secs.to_string());
        assert_eq!(default_of("shutdown_grace_secs"), d.shutdown_grace_secs.to_string());
        assert_eq!(default_of("tombstone_retention_secs"), d.tombstone_retention_secs.to_string());
        assert_eq!(default_of("thread_titles"), d.thread_titles.to_string());
        assert_eq!(default_of("rust_log"), d.rust_log);
    }

    #[test]
    fn model_config_carries_every_model_setting() {
        let c = parse(&[
            "--openai-api-key",
            " sk-1 ",
            "--model-provider",
            "OpenAI",
            "--model",
            "gpt-x",
            "--openai-base-url",
            "http://127.0.0.1:9100/v1",
            "--model-idle-timeout-secs",
            "7",
            "--model-max-retries",
            "3",
        ])
        .unwrap();
        let m = c.model_config();
        assert_eq!(m.provider, Some(agents::ProviderKind::OpenAi));
        assert_eq!(m.model.as_deref(), Some("gpt-x"));
        assert_eq!(m.openai.api_key.as_deref(), Some("sk-1"));
        assert_eq!(m.openai.base_url, "http://127.0.0.1:9100/v1");
        assert_eq!(m.openai.rejected_key_hint.as_deref(), Some("check OPENAI_API_KEY in .env"));
        assert_eq!(m.gemini.api_key, None);
        assert_eq!(m.gemini.base_url, agents::DEFAULT_GEMINI_BASE_URL);
        assert_eq!(m.gemini.rejected_key_hint.as_deref(), Some("check GEMINI_API_KEY in .env"));
        assert_eq!(m.transcription_model, agents::DEFAULT_TRANSCRIPTION_MODEL);
        assert_eq!(m.timeouts.idle, Duration::from_secs(7));
        assert_eq!(m.timeouts.first_byte, agents::DEFAULT_FIRST_BYTE_TIMEOUT);
        assert_eq!(m.retry.max_retries, 3);
        assert_eq!(m.retry.max_total_wait, agents::DEFAULT_MAX_RETRY_WAIT);
        assert_eq!(m.user_agent.as_deref(), Some(MODEL_USER_AGENT));
        assert_eq!(m.reasoning, agents::Reasoning::default());
        let r = parse(&["--reasoning-effort", "HIGH", "--reasoning-summary", "auto"]).unwrap().model_config().reasoning;
        assert_eq!(r.effort, Some(agents::ReasoningEffort::High));
        assert_eq!(r.summary, Some(agents::ReasoningSummary::Auto));
        assert!(parse(&["--reasoning-effort", "max"]).is_err());
        assert_eq!(c.configured_providers(), vec!["openai"]);
        let e = parse(&["--model-max-retries", "11"]).unwrap_err().to_string();
        assert_eq!(e, "MODEL_MAX_RETRIES must be from 0 to 10, got 11");
        let e = parse(&["--model-provider", "gemini", "--openai-api-key", "sk-1"]).unwrap_err().to_string();
        assert_eq!(e, "MODEL_PROVIDER is `gemini` but GEMINI_API_KEY is not set (add it to .env)");
    }

    #[test]
    fn openai_compatible_settings() {
        let c = parse(&[
            "--model-provider",
            "openai-compatible",
            "--compatible-base-url",
            "http://127.0.0.1:11434/v1",
            "--model",
            "qwen3:8b",
            "--compatible-headers",
            "X-Title=OpenSkies",
            "--compatible-max-tokens",
            "300",
        ])
        .unwrap();
        let m = c.model_config();
        assert_eq!(m.provider, Some(agents::ProviderKind::Compatible));
        assert_eq!(m.compatible.access.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(m.compatible.access.api_key, None);
        assert_eq!(m.compatible.headers, vec![("X-Title".to_string(), "OpenSkies".to_string())]);
        assert_eq!(m.compatible.max_tokens, Some(300));
        assert_eq!(c.configured_providers(), vec!["openai-compatible"]);
        assert!(!format!("{c:?}").contains("OpenSkies"));
        let e = parse(&["--model-provider", "openai-compatible", "--compatible-base-url", "http://h/v1"]);
        assert!(e.unwrap_err().to_string().contains("MODEL is not set"));
        let e = parse(&["--model-provider", "openai-compatible", "--model", "m"]).unwrap_err().to_string();
        assert!(e.contains("COMPATIBLE_BASE_URL is not set"), "{e}");
    }

    #[test]
    fn model_fallback_needs_its_key_and_another_provider() {
        let keys = ["--openai-api-key", "sk-1", "--gemini-api-key", "g-1"];
        let c = parse(&[&keys[..], &["--model-fallback", "gemini", "--fallback-model", "gemini-2.5-pro"]].concat())
            .unwrap();
        let m = c.model_config();
        assert_eq!(
            (m.fallback, m.fallback_model.as_deref()),
            (Some(agents::ProviderKind::Gemini), Some("gemini-2.5-pro"))
        );
        let e = parse(&["--openai-api-key", "sk-1", "--model-fallback", "gemini"]).unwrap_err().to_string();
        assert_eq!(e, "MODEL_FALLBACK is `gemini` but GEMINI_API_KEY is not set (add it to .env)");
        let e = parse(&[&keys[..], &["--model-fallback", "openai"]].concat()).unwrap_err().to_string();
        assert_eq!(
            e,
            "MODEL_FALLBACK is `openai`, the provider already answering chat turns; set it to the other provider"
        );
        let e = parse(&["--fallback-model", "gemini-2.5-pro"]).unwrap_err().to_string();
        assert!(e.starts_with("FALLBACK_MODEL is set but MODEL_FALLBACK is not"), "{e}");
        assert_eq!(parse(&[]).unwrap().model_config().fallback, None, "off by default");
    }

    #[test]
    fn sqlite_parent_dir_is_found() {
        let with = |url: &str| Config { database_url: url.into(), ..Config::default() }.sqlite_parent_dir();
        assert_eq!(with("sqlite://data/chatkit.db"), Some(PathBuf::from("data")));
        assert_eq!(with("sqlite:///tmp/x/y.db?mode=rwc"), Some(PathBuf::from("/tmp/x")));
        assert_eq!(with("sqlite::memory:"), None);
        assert_eq!(with("sqlite://file.db"), None);
        assert_eq!(with("postgres://localhost/x"), None);
    }

    #[test]
    fn redact_url_hides_only_passwords() {
        assert_eq!(redact_url("postgres://u:p@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/chatkit.db"), "sqlite://data/chatkit.db");
    }
}
