use std::path::PathBuf;
use std::time::Duration;

use super::model::MODEL_USER_AGENT;
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
    let c =
        parse(&["--port", "9001", "--thread-titles", "off", "--cors-allow-origins", "http://a:1, https://b"]).unwrap();
    assert_eq!(c.port, 9001);
    assert_eq!(c.thread_titles, Switch(false));
    assert_eq!(c.cors_origins().unwrap(), CorsOrigins::List(vec!["http://a:1".to_string(), "https://b".to_string()]));
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
    let models =
        format!("default: {} for OpenAI, {} for Gemini", agents::DEFAULT_OPENAI_MODEL, agents::DEFAULT_GEMINI_MODEL);
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
    let c =
        parse(&[&keys[..], &["--model-fallback", "gemini", "--fallback-model", "gemini-2.5-pro"]].concat()).unwrap();
    let m = c.model_config();
    assert_eq!((m.fallback, m.fallback_model.as_deref()), (Some(agents::ProviderKind::Gemini), Some("gemini-2.5-pro")));
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
