//! `bench`: a bounded load benchmark of a ChatKit server with full chat turns.
//!
//! Without `--url` it starts the project's mock model in-process (on its own `bench-mock` runtime
//! thread, so its CPU is measured apart from the load generator's) and the server binary as a child
//! with a fresh SQLite database, then measures start-up, idle RSS, RSS after filling N threads, and for
//! each concurrency level turns/s, time to first/last SSE event, errors, CPU per turn and peak RSS.
//! With `--url` it loads any running ChatKit server (process metrics need `--pid`). See
//! `docs/benchmarks.md` for how to run it and past results.

mod child;
mod load;
mod procfs;
mod report;
mod turn;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use mock_llm::{MockServer, Script};

use crate::child::{ServerProcess, SpawnOptions};
use crate::load::{Stop, Target, run_phase};
use crate::report::RunReport;

/// Name prefix of the mock model's runtime threads (CPU accounting).
pub const MOCK_THREAD: &str = "bench-mock";
/// Name of the load generator's runtime threads.
const LOAD_THREAD: &str = "bench-load";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "bench", about = "Load benchmark: full ChatKit turns against the server with the mock model")]
struct Args {
    /// Base URL of a running server to load instead of spawning one (e.g. http://127.0.0.1:8000).
    #[arg(long)]
    url: Option<String>,
    /// Process id of the server at --url, to measure its CPU and memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Path of the ChatKit endpoint.
    #[arg(long, default_value = "/support/chatkit")]
    chatkit_path: String,
    /// Concurrency levels (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// How long each concurrency level runs (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Threads to create before the levels (RSS is read after them); 0 skips this phase.
    #[arg(long, default_value_t = 10_000)]
    threads: usize,
    /// Wall-time cap of the thread-creating phase.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    threads_timeout: Duration,
    /// Warm-up before the levels when --threads is 0.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Mock model delay before each text delta after the first (ms).
    #[arg(long, default_value_t = 0)]
    mock_delay_ms: u64,
    /// Port of the in-process mock model (default: a free port). With --url the mock only starts
    /// when this is given, so the server under test can be pointed at it.
    #[arg(long)]
    mock_port: Option<u16>,
    /// Server binary to spawn (without --url).
    #[arg(long, default_value = "target/release/support")]
    server_bin: PathBuf,
    /// Extra KEY=VALUE environment for the spawned server (repeatable).
    #[arg(long, value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// How many times to spawn the server to measure start-up (the last one is loaded).
    #[arg(long, default_value_t = 5)]
    startup_runs: usize,
    /// Give up if the server is not healthy after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    startup_timeout: Duration,
    /// Timeout of one turn.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Append the report to --report-file.
    #[arg(long)]
    write_report: bool,
    /// Where --write-report appends.
    #[arg(long, default_value = "docs/benchmarks.md")]
    report_file: PathBuf,
    /// Exit with status 2 when any turn failed (for CI smoke runs).
    #[arg(long)]
    fail_on_errors: bool,
    /// Open a new connection for every turn (diagnostic: shows costs hidden or added by keep-alive,
    /// such as delayed-ACK stalls on servers without TCP_NODELAY).
    #[arg(long)]
    no_keepalive: bool,
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

fn progress(msg: impl std::fmt::Display) {
    eprintln!("[bench] {msg}");
}

fn git_revision() -> String {
    let out = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match out(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = out(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev} (with uncommitted changes)") } else { rev }
        }
        None => "unknown".into(),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive levels, e.g. 1,16,64");
    }
    // The mock runs on its own runtime thread so its CPU time can be told apart from ours.
    let want_mock = args.url.is_none() || args.mock_port.is_some();
    let mock_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name(MOCK_THREAD).enable_all().build()?;
    let mock = if want_mock {
        let script = Script { delta_delay_ms: args.mock_delay_ms, ..Script::default() };
        let addr = SocketAddr::from(([127, 0, 0, 1], args.mock_port.unwrap_or(0)));
        let server = mock_rt.block_on(MockServer::start_on(addr, script, 0)).context("cannot start the mock model")?;
        progress(format_args!("mock model at {} (OpenAI base {}/v1)", server.base_url(), server.base_url()));
        Some(server)
    } else {
        None
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .thread_name(LOAD_THREAD)
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&args, mock.as_ref()));
    drop(rt);
    drop(mock);
    drop(mock_rt);
    let report = result?;
    let text = report::render(&report);
    println!("{text}");
    if args.write_report {
        append_report(&args.report_file, &text)?;
        progress(format_args!("appended to {}", args.report_file.display()));
    }
    let failed: u64 = report.levels.iter().chain(report.fill.iter().map(|(f, _)| f)).map(|r| r.error_count()).sum();
    if failed > 0 {
        progress(format_args!("{failed} turns failed"));
        if args.fail_on_errors {
            std::process::exit(2);
        }
    }
    Ok(())
}

fn append_report(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "\n{text}")?;
    Ok(())
}

async fn run(args: &Args, mock: Option<&MockServer>) -> anyhow::Result<RunReport> {
    let max_c = args.concurrency.iter().copied().max().unwrap_or(1);
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(if args.no_keepalive { 0 } else { max_c })
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let mut settings: Vec<(String, String)> = Vec::new();
    let mut startups = Vec::new();
    let mut server = None;
    let (base_url, pid) = match &args.url {
        Some(url) => {
            settings.push(("server".into(), format!("external at {url} (pid {})", opt_str(args.pid))));
            (url.trim_end_matches('/').to_string(), args.pid)
        }
        None => {
            let Some(mock) = mock else { bail!("internal: no mock model") };
            let opts = SpawnOptions {
                bin: args.server_bin.clone(),
                openai_base_url: format!("{}/v1", mock.base_url()),
                extra_env: args.server_env.clone(),
                startup_timeout: args.startup_timeout,
            };
            for i in 0..args.startup_runs.max(1) {
                let s = ServerProcess::spawn(&opts, &client).await?;
                progress(format_args!("start-up {}: {:.2} ms", i + 1, s.startup.as_secs_f64() * 1000.0));
                startups.push(s.startup);
                server = Some(s); // replacing drops (kills) the previous one
            }
            let Some(s) = &server else { bail!("internal: no server") };
            settings.push((
                "server".into(),
                format!("`{}` spawned with a fresh SQLite database in a temp dir", args.server_bin.display()),
            ));
            let env: Vec<String> = args.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            settings.push((
                "server environment".into(),
                if env.is_empty() {
                    "defaults (plus OPENAI_API_KEY/OPENAI_BASE_URL → mock)".into()
                } else {
                    env.join(" ")
                },
            ));
            (s.base_url.clone(), Some(s.pid()))
        }
    };
    settings.push(("revision".into(), git_revision()));
    settings.push(("load average at start (1/5/15 min; other processes compete for the cores)".into(), load_average()));
    settings.push((
        "mock model".into(),
        match mock {
            Some(_) => format!("in-process, {} ms delay per delta", args.mock_delay_ms),
            None => "external (not started by bench)".into(),
        },
    ));
    settings.push((
        "turn".into(),
        "`threads.create` with user text \"hello\"; default mock reply \"Mock reply: hello\"".into(),
    ));
    settings.push(("levels".into(), format!("concurrency {:?}, {:?} each", args.concurrency, args.duration)));
    settings.push((
        "client".into(),
        format!(
            "reqwest HTTP/1.1, {}, {} load thread(s), bench built {}",
            if args.no_keepalive {
                "a new connection per turn".to_string()
            } else {
                format!("keep-alive pool of up to {max_c} connections")
            },
            args.client_threads.max(1),
            if cfg!(debug_assertions) { "in DEBUG mode (numbers not representative)" } else { "in release mode" }
        ),
    ));
    let target = Target {
        client,
        chatkit_url: format!("{base_url}{}", args.chatkit_path),
        body: Bytes::from_static(turn::CREATE_THREAD_BODY.as_bytes()),
        timeout: args.request_timeout,
        pid,
        mock_in_process: mock.is_some(),
    };
    let idle_rss_kib = match pid {
        Some(p) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            procfs::memory(p).ok().map(|m| m.rss_kib)
        }
        None => None,
    };
    let mut fill = None;
    if args.threads > 0 {
        progress(format_args!("creating {} threads at concurrency {max_c}", args.threads));
        let r = run_phase(&target, max_c, Stop::Turns { count: args.threads, cap: args.threads_timeout }).await;
        let after = pid.and_then(|p| procfs::memory(p).ok()).map(|m| m.rss_kib);
        progress(format_args!("{} turns in {:.1} s, {} errors", r.ok, r.elapsed.as_secs_f64(), r.error_count()));
        fill = Some((r, after));
    } else if !args.warmup.is_zero() {
        run_phase(&target, max_c, Stop::After(args.warmup)).await;
    }
    let mut levels = Vec::new();
    for &c in &args.concurrency {
        progress(format_args!("concurrency {c} for {:?}", args.duration));
        let started = Instant::now();
        let r = run_phase(&target, c, Stop::After(args.duration)).await;
        progress(format_args!(
            "  {:.0} turns/s, {} errors ({:.1} s)",
            r.turns_per_second(),
            r.error_count(),
            started.elapsed().as_secs_f64()
        ));
        if r.error_count() > 0
            && let Some(s) = &server
        {
            progress(format_args!("server log tail:\n{}", s.log_tail()));
        }
        levels.push(r);
    }
    let hwm_kib = pid.and_then(|p| procfs::memory(p).ok()).map(|m| m.hwm_kib);
    drop(server);
    Ok(RunReport { date, machine: procfs::machine(), settings, startups, idle_rss_kib, fill, levels, hwm_kib })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn opt_str<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into())
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
