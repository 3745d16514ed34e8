//! `bench`: a bounded load benchmark of a ChatKit server with full chat turns.
//!
//! Without `--url` it starts the project's mock model in-process (on its own `bench-mock` runtime
//! thread, so its CPU is measured apart from the load generator's) and the server binary as a child
//! with a fresh SQLite database, then measures start-up, idle RSS, RSS after filling N threads, and for
//! each concurrency level turns/s, time to first/last SSE event, errors, CPU per turn and peak RSS.
//! With `--url` it loads any running ChatKit server (process metrics need `--pid`). See
//! `docs/benchmarks.md` for how to run it and past results.

mod child;
mod cli;
mod load;
mod procfs;
mod report;
mod run;
mod turn;

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use clap::Parser;
use mock_llm::{MockServer, Script};

use crate::cli::Args;
use crate::report::RunReport;

/// Name prefix of the mock model's runtime threads (CPU accounting).
const MOCK_THREAD: &str = "bench-mock";
/// Name of the load generator's runtime threads.
const LOAD_THREAD: &str = "bench-load";

/// Writes a progress line to stderr (stdout carries the report).
fn progress(msg: impl std::fmt::Display) {
    eprintln!("[bench] {msg}");
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive levels, e.g. 1,16,64");
    }
    // The mock runs on its own runtime thread so its CPU time can be told apart from ours.
    let mock_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name(MOCK_THREAD).enable_all().build()?;
    let mock = if args.url.is_none() || args.mock_port.is_some() { Some(start_mock(&args, &mock_rt)?) } else { None };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .thread_name(LOAD_THREAD)
        .enable_all()
        .build()?;
    let result = rt.block_on(run::run(&args, mock.as_ref()));
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
    let failed = failed_turns(&report);
    if failed > 0 {
        progress(format_args!("{failed} turns failed"));
        if args.fail_on_errors {
            std::process::exit(2);
        }
    }
    Ok(())
}

/// Starts the mock model on `rt` with the default script, recording nothing.
fn start_mock(args: &Args, rt: &tokio::runtime::Runtime) -> anyhow::Result<MockServer> {
    let script = Script { delta_delay_ms: args.mock_delay_ms, ..Script::default() };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.mock_port.unwrap_or(0)));
    let server = rt.block_on(MockServer::start_on(addr, script, 0)).context("cannot start the mock model")?;
    progress(format_args!("mock model at {} (OpenAI base {}/v1)", server.base_url(), server.base_url()));
    Ok(server)
}

/// Turns that failed in any phase.
fn failed_turns(report: &RunReport) -> u64 {
    report.levels.iter().chain(report.fill.iter().map(|(f, _)| f)).map(|r| r.error_count()).sum()
}

fn append_report(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "\n{text}")?;
    Ok(())
}
