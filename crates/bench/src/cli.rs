//! The command line: every option of a run, with the defaults the documented command uses, and
//! the parsers of durations (`500ms`, `10s`, `2m`) and `KEY=VALUE` pairs.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "bench", about = "Load benchmark: full ChatKit turns against the server with the mock model")]
pub(crate) struct Args {
    /// Base URL of a running server to load instead of spawning one (e.g. http://127.0.0.1:8000).
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Process id of the server at --url, to measure its CPU and memory.
    #[arg(long)]
    pub(crate) pid: Option<u32>,
    /// Path of the ChatKit endpoint.
    #[arg(long, default_value = "/support/chatkit")]
    pub(crate) chatkit_path: String,
    /// Concurrency levels (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub(crate) concurrency: Vec<usize>,
    /// How long each concurrency level runs (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Threads to create before the levels (RSS is read after them); 0 skips this phase.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) threads: usize,
    /// Wall-time cap of the thread-creating phase.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub(crate) threads_timeout: Duration,
    /// Warm-up before the levels when --threads is 0.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// Mock model delay before each text delta after the first (ms).
    #[arg(long, default_value_t = 0)]
    pub(crate) mock_delay_ms: u64,
    /// Port of the in-process mock model (default: a free port). With --url the mock only starts
    /// when this is given, so the server under test can be pointed at it.
    #[arg(long)]
    pub(crate) mock_port: Option<u16>,
    /// Server binary to spawn (without --url).
    #[arg(long, default_value = "target/release/support")]
    pub(crate) server_bin: PathBuf,
    /// Extra KEY=VALUE environment for the spawned server (repeatable).
    #[arg(long, value_parser = parse_env)]
    pub(crate) server_env: Vec<(String, String)>,
    /// How many times to spawn the server to measure start-up (the last one is loaded).
    #[arg(long, default_value_t = 5)]
    pub(crate) startup_runs: usize,
    /// Give up if the server is not healthy after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) startup_timeout: Duration,
    /// Timeout of one turn.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) request_timeout: Duration,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    pub(crate) client_threads: usize,
    /// Append the report to --report-file.
    #[arg(long)]
    pub(crate) write_report: bool,
    /// Where --write-report appends.
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub(crate) report_file: PathBuf,
    /// Exit with status 2 when any turn failed (for CI smoke runs).
    #[arg(long)]
    pub(crate) fail_on_errors: bool,
    /// Open a new connection for every turn (diagnostic: shows costs hidden or added by keep-alive,
    /// such as delayed-ACK stalls on servers without TCP_NODELAY).
    #[arg(long)]
    pub(crate) no_keepalive: bool,
}

/// Parses `250ms`, `10s`, `1.5s`, `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid duration `{s}` (use e.g. 500ms, 10s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in `{s}` (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration `{s}`: {e}"))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn parses_env_pairs() {
        assert_eq!(parse_env("RUST_LOG=warn"), Ok(("RUST_LOG".into(), "warn".into())));
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("NOVALUE").is_err());
    }

    #[test]
    fn cli_defaults_match_the_documented_command() {
        let a = Args::try_parse_from(["bench"]).unwrap();
        assert_eq!(a.concurrency, vec![1, 16, 64]);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.threads, 10_000);
        assert_eq!(a.server_bin, PathBuf::from("target/release/support"));
        let a =
            Args::try_parse_from(["bench", "--url", "http://127.0.0.1:9", "--concurrency", "4,8", "--duration", "2s"])
                .unwrap();
        assert_eq!(a.concurrency, vec![4, 8]);
        assert_eq!(a.url.as_deref(), Some("http://127.0.0.1:9"));
    }
}
