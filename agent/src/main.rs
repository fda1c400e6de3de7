//! `coreplay`: the command-line entry point. Parses arguments, then hands over to the library.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use coreplay_agent::{
    DEFAULT_LISTEN,
    server::{self, ServerConfig, ServerError},
    topology::{self, Source},
};

/// See what your cores really do: coreplay probes this machine's CPU topology, runs real
/// parallel and concurrent workloads on it and animates them in the browser.
#[derive(Debug, Parser)]
#[command(name = "coreplay", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of `serve`, which is what runs when no subcommand is given.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the page and the WebSocket (the default).
    Serve(ServeArgs),
    /// Print the CPU topology as a tree (or JSON).
    Topology(TopologyArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Debug, Args)]
struct TopologyArgs {
    /// Print the topology as JSON (coreplay's protocol type) instead of a tree.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    source: SourceArgs,
}

/// Where the topology comes from; the live machine unless one of these is given.
#[derive(Debug, Args)]
#[group(multiple = false)]
struct SourceArgs {
    /// Load the topology from an hwloc XML file (written by `lstopo file.xml`).
    #[arg(long = "xml", visible_alias = "topology-xml", value_name = "FILE")]
    xml: Option<PathBuf>,
    /// Build the topology from an hwloc synthetic description, e.g. "package:2 core:16 pu:2".
    #[arg(long, value_name = "DESC")]
    synthetic: Option<String>,
}

impl SourceArgs {
    fn source(&self) -> Source {
        match (&self.xml, &self.synthetic) {
            (Some(path), _) => Source::Xml(path.clone()),
            (None, Some(desc)) => Source::Synthetic(desc.clone()),
            (None, None) => Source::Live,
        }
    }
}

/// Exit code for bad input (the same code clap uses for bad arguments).
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Topology(args)) => print_topology(&args),
        Some(Command::Serve(args)) => serve(&args),
        None => serve(&cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BadInput(msg)) => {
            eprintln!("coreplay: {msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(Failure::Other(err)) => {
            eprintln!("coreplay: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// How a command failed: bad input from the user (exit 2) or anything else (exit 1).
enum Failure {
    BadInput(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Other(err)
    }
}

fn load_topology(source: &SourceArgs) -> Result<coreplay_shared::Topology, Failure> {
    topology::load(&source.source()).map_err(|e| match e {
        topology::ProbeError::Probe(_) => Failure::Other(e.into()),
        _ => Failure::BadInput(e.to_string()),
    })
}

fn print_topology(args: &TopologyArgs) -> Result<(), Failure> {
    let topology = load_topology(&args.source)?;
    if args.json {
        let json = serde_json::to_string_pretty(&topology).context("encoding the topology")?;
        println!("{json}");
    } else {
        print!("{}", topology::render_tree(&topology));
    }
    Ok(())
}

fn serve(args: &ServeArgs) -> Result<(), Failure> {
    init_tracing();
    let topology = load_topology(&args.source)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let bound = server::bind(ServerConfig {
            listen: args.listen,
            topology,
        })
        .await
        .map_err(|e| match e {
            ServerError::AddrInUse { .. } => Failure::BadInput(e.to_string()),
            other => Failure::Other(other.into()),
        })?;
        let addr = bound.local_addr().context("reading the bound address")?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "listening on {addr}, which is reachable from other machines; anyone who can \
                 reach it can see this machine's topology"
            );
        }
        if !server::page_is_built() {
            tracing::warn!("{}", server::BUILD_HINT);
        }
        // Printed on stdout, alone on its line, so scripts and tests can read the URL.
        println!("coreplay is serving on http://{addr}/");
        bound
            .serve(shutdown_signal())
            .await
            .map_err(|e| Failure::Other(e.into()))
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
