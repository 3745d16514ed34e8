//! One benchmark run, step by step: find or spawn the server under test (timing its start-ups),
//! write down the settings, read the idle memory, fill the server with threads (or warm it up),
//! then load it at each concurrency level.

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use mock_llm::MockServer;

use crate::child::{ServerProcess, SpawnOptions};
use crate::cli::Args;
use crate::load::{PhaseResult, Stop, Target, run_phase};
use crate::report::RunReport;
use crate::{procfs, progress, turn};

/// Measures everything the report shows; `mock` is the in-process mock model, if one was started.
pub(crate) async fn run(args: &Args, mock: Option<&MockServer>) -> anyhow::Result<RunReport> {
    let max_c = args.concurrency.iter().copied().max().unwrap_or(1);
    let client = http_client(args, max_c)?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let server = ServerUnderTest::find_or_spawn(args, mock, &client).await?;
    let settings = settings(args, mock.is_some(), max_c);
    let target = Target {
        client,
        chatkit_url: format!("{}{}", server.base_url, args.chatkit_path),
        body: Bytes::from_static(turn::CREATE_THREAD_BODY.as_bytes()),
        timeout: args.request_timeout,
        pid: server.pid,
        mock_in_process: mock.is_some(),
    };
    let idle_rss_kib = idle_rss(server.pid).await;
    let fill = fill_or_warm_up(args, &target, max_c).await;
    let levels = run_levels(args, &target, server.spawned.as_ref()).await;
    let hwm_kib = server.pid.and_then(|p| procfs::memory(p).ok()).map(|m| m.hwm_kib);
    drop(server.spawned);
    Ok(RunReport {
        date,
        machine: procfs::machine(),
        settings: [server.settings, settings].concat(),
        startups: server.startups,
        idle_rss_kib,
        fill,
        levels,
        hwm_kib,
    })
}

/// The load generator's HTTP client: HTTP/1.1 like a browser's SSE connection, with a keep-alive
/// pool as large as the highest level (or none with `--no-keepalive`).
fn http_client(args: &Args, max_c: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(if args.no_keepalive { 0 } else { max_c })
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(5))
        .build()
}

/// The server the load goes to.
struct ServerUnderTest {
    base_url: String,
    /// Its process id, when known (process metrics need it).
    pid: Option<u32>,
    /// The process this run spawned; dropping it stops the server.
    spawned: Option<ServerProcess>,
    /// Start-up times of every spawn (empty for an external server).
    startups: Vec<Duration>,
    /// The report's settings lines that describe it.
    settings: Vec<(String, String)>,
}

impl ServerUnderTest {
    /// The server at `--url`, or else the binary spawned `--startup-runs` times (each spawn
    /// replaces the previous one, so the last one is loaded).
    async fn find_or_spawn(
        args: &Args,
        mock: Option<&MockServer>,
        client: &reqwest::Client,
    ) -> anyhow::Result<ServerUnderTest> {
        if let Some(url) = &args.url {
            return Ok(ServerUnderTest {
                base_url: url.trim_end_matches('/').to_string(),
                pid: args.pid,
                spawned: None,
                startups: Vec::new(),
                settings: vec![("server".into(), format!("external at {url} (pid {})", opt_str(args.pid)))],
            });
        }
        let Some(mock) = mock else { bail!("internal: no mock model") };
        let opts = SpawnOptions {
            bin: args.server_bin.clone(),
            openai_base_url: format!("{}/v1", mock.base_url()),
            extra_env: args.server_env.clone(),
            startup_timeout: args.startup_timeout,
        };
        let mut startups = Vec::new();
        let mut spawned = None;
        for i in 0..args.startup_runs.max(1) {
            let s = ServerProcess::spawn(&opts, client).await?;
            progress(format_args!("start-up {}: {:.2} ms", i + 1, s.startup.as_secs_f64() * 1000.0));
            startups.push(s.startup);
            spawned = Some(s);
        }
        let Some(s) = spawned else { bail!("internal: no server") };
        let env: Vec<String> = args.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let settings = vec![
            (
                "server".into(),
                format!("`{}` spawned with a fresh SQLite database in a temp dir", args.server_bin.display()),
            ),
            (
                "server environment".into(),
                if env.is_empty() {
                    "defaults (plus OPENAI_API_KEY/OPENAI_BASE_URL → mock)".into()
                } else {
                    env.join(" ")
                },
            ),
        ];
        Ok(ServerUnderTest { base_url: s.base_url.clone(), pid: Some(s.pid()), spawned: Some(s), startups, settings })
    }
}

/// The report's settings lines that do not depend on the server: revision, load, mock, the turn,
/// the levels and the client.
fn settings(args: &Args, mock_in_process: bool, max_c: usize) -> Vec<(String, String)> {
    let connections = if args.no_keepalive {
        "a new connection per turn".to_string()
    } else {
        format!("keep-alive pool of up to {max_c} connections")
    };
    let build = if cfg!(debug_assertions) { "in DEBUG mode (numbers not representative)" } else { "in release mode" };
    vec![
        ("revision".into(), git_revision()),
        ("load average at start (1/5/15 min; other processes compete for the cores)".into(), load_average()),
        (
            "mock model".into(),
            if mock_in_process {
                format!("in-process, {} ms delay per delta", args.mock_delay_ms)
            } else {
                "external (not started by bench)".into()
            },
        ),
        ("turn".into(), "`threads.create` with user text \"hello\"; default mock reply \"Mock reply: hello\"".into()),
        ("levels".into(), format!("concurrency {:?}, {:?} each", args.concurrency, args.duration)),
        (
            "client".into(),
            format!(
                "reqwest HTTP/1.1, {connections}, {} load thread(s), bench built {build}",
                args.client_threads.max(1)
            ),
        ),
    ]
}

/// The server's RSS after a second of rest (it frees start-up buffers meanwhile).
async fn idle_rss(pid: Option<u32>) -> Option<u64> {
    let pid = pid?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    procfs::memory(pid).ok().map(|m| m.rss_kib)
}

/// Creates `--threads` threads at the highest level and reads the RSS after them; with
/// `--threads 0` only warms up for `--warmup` (not reported).
async fn fill_or_warm_up(args: &Args, target: &Target, max_c: usize) -> Option<(PhaseResult, Option<u64>)> {
    if args.threads == 0 {
        if !args.warmup.is_zero() {
            run_phase(target, max_c, Stop::After(args.warmup)).await;
        }
        return None;
    }
    progress(format_args!("creating {} threads at concurrency {max_c}", args.threads));
    let r = run_phase(target, max_c, Stop::Turns { count: args.threads, cap: args.threads_timeout }).await;
    let after = target.pid.and_then(|p| procfs::memory(p).ok()).map(|m| m.rss_kib);
    progress(format_args!("{} turns in {:.1} s, {} errors", r.ok, r.elapsed.as_secs_f64(), r.error_count()));
    Some((r, after))
}

/// Loads the server at each concurrency level for `--duration`; shows the server's log when
/// turns failed.
async fn run_levels(args: &Args, target: &Target, spawned: Option<&ServerProcess>) -> Vec<PhaseResult> {
    let mut levels = Vec::new();
    for &c in &args.concurrency {
        progress(format_args!("concurrency {c} for {:?}", args.duration));
        let started = Instant::now();
        let r = run_phase(target, c, Stop::After(args.duration)).await;
        progress(format_args!(
            "  {:.0} turns/s, {} errors ({:.1} s)",
            r.turns_per_second(),
            r.error_count(),
            started.elapsed().as_secs_f64()
        ));
        if r.error_count() > 0
            && let Some(s) = spawned
        {
            progress(format_args!("server log tail:\n{}", s.log_tail()));
        }
        levels.push(r);
    }
    levels
}

/// The checked-out revision, marked when the tree has uncommitted changes.
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

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn opt_str<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into())
}
