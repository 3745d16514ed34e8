//! The `support` binary: `cargo run --release` starts the OpenSkies ChatKit backend on 127.0.0.1:8000.
//!
//! Order: load `.env` (a missing file is fine), parse and validate the configuration (bad setting → one
//! line on stderr, exit 2), run `support token` if asked (print a dev token, exit), start the runtime, install logging (and the
//! trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set), open the database, build the model provider (none → one
//! warning), bind (port in use → one line, exit 1), print the banner, serve until SIGINT/SIGTERM, drain
//! (`SHUTDOWN_GRACE_SECS`), close the database, exit 0. A second signal exits at once.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use support::config::{Command, Config, Parsed};
use support::startup::{self, NO_KEY_WARNING, OPEN_ACCESS_WARNING, StartError};
use support::telemetry::otel::Traces;

/// mimalloc instead of glibc's allocator: a chat turn makes thousands of small, short-lived
/// allocations (JSON values, SSE frames, strings) across the worker threads; measured 12% fewer
/// instructions per turn (docs/benchmarks.md). Version 2 without transparent huge pages: version 3
/// and huge pages kept noticeably more memory resident (idle RSS, slow-reader test).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let started = Instant::now();
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("error: cannot read .env: {e}");
        return ExitCode::from(2);
    }
    let config = match Config::load() {
        Ok(Parsed::Run(config)) => *config,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Token(args)) = &config.command {
        return match support::auth::token::mint(&config.auth, args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let (traces, tracer) = match config.otel_exporter_otlp_endpoint.as_deref() {
        Some(endpoint) => match Traces::new(endpoint, runtime.handle().clone()) {
            Ok((traces, tracer)) => (Some(traces), Some(tracer)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => (None, None),
    };
    if let Err(e) = support::telemetry::init(&config.rust_log, config.log_format, tracer) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let result = runtime.block_on(run(config, started));
    if let Some(traces) = traces {
        // The last spans go out over the runtime, from a thread that may block.
        let _ = runtime.block_on(async move { tokio::task::spawn_blocking(move || traces.shutdown()).await });
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<StartError>() {
            Some(start) => {
                eprintln!("error: {start}");
                ExitCode::from(start.exit_code())
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

async fn run(config: Config, started: Instant) -> anyhow::Result<()> {
    tracing::debug!(config = ?config, "configuration");
    let built = startup::build(&config).await?;
    if built.model.is_none() {
        tracing::warn!("{NO_KEY_WARNING}");
    }
    let listener = startup::bind(&config).await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    if let (Some(metrics_addr), Some(endpoint)) = (config.metrics.metrics_addr, built.metrics.clone()) {
        let bound = support::metrics::serve_separately(metrics_addr, endpoint).await.map_err(StartError::Bind)?;
        tracing::info!(address = %bound, "serving metrics on their own address");
    }
    print!("{}", startup::banner(&built, addr, started));
    tracing::info!(
        address = %addr,
        auth = built.auth_mode,
        database = %built.database,
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    if built.auth_mode == "none" && !addr.ip().is_loopback() {
        tracing::warn!("{OPEN_ACCESS_WARNING}");
    }
    startup::serve(listener, built, startup::shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}
