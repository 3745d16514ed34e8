//! The `mock-llm` binary: serves a script (JSON file) on loopback for benchmarks and
//! offline demos.

use std::net::SocketAddr;

use clap::Parser;
use mock_llm::{MockServer, Script};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "mock-llm", about = "Scripted mock model server (OpenAI Responses, Gemini, transcription)")]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to bind (0 = any free port).
    #[arg(long, default_value_t = 9100)]
    port: u16,
    /// Script JSON file (default: replies derived from the user text).
    #[arg(long)]
    script: Option<std::path::PathBuf>,
    /// Delay before each text delta after the first, in milliseconds (overrides the script).
    #[arg(long)]
    delay_ms: Option<u64>,
    /// How many requests to keep for `GET /_mock/requests` (0 = none, fastest).
    #[arg(long, default_value_t = 100)]
    record: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let mut script = match &args.script {
        Some(path) => Script::from_file(path)?,
        None => Script::default(),
    };
    if let Some(ms) = args.delay_ms {
        script.delta_delay_ms = ms;
    }
    let server = MockServer::start_on(SocketAddr::new(args.host, args.port), script, args.record).await?;
    let base = server.base_url();
    println!("mock-llm listening on {base} (OpenAI base: {base}/v1, Gemini base: {base})");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
