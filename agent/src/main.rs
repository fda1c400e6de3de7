//! `coreplay`: the command-line entry point. Parses arguments, then hands over to the library.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use coreplay_agent::{
    DEFAULT_LISTEN, export, record, render, report,
    run::{self, RunSpec},
    server::{self, ServerConfig, ServerError},
    topology::{self, Source},
    workloads,
};
use coreplay_shared::{
    event::Fidelity,
    scenario::{self, Params, ScenarioId},
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
    /// Run a scenario headless, print its summary and optionally write its events.
    Run(RunArgs),
    /// List the scenarios with their parameters, ranges and defaults.
    Scenarios,
    /// Convert a trace file (from `run --out`) for other tools.
    Export(ExportArgs),
    /// Draw one instant of a recorded run as an SVG still, for slides and documents.
    Render(RenderArgs),
    /// Check a trace file for sense (CPUs of its machine, threads started and ended, locks
    /// held by who releases them, intervals in order): prints each problem found. Exit code 0:
    /// consistent; 1: inconsistent events; 2: not a readable trace.
    Check(CheckArgs),
    /// Start a program (or follow a running one, --pid) and watch its threads and processes
    /// on the cores until it exits.
    Watch(WatchArgs),
    /// (internal) A process-pool worker.
    #[command(name = "__worker", hide = true)]
    Worker(WorkerCli),
    /// (internal) The loopback server of the I/O scenarios.
    #[command(name = "__loopback-db", hide = true)]
    LoopbackDb {
        /// Answer latency, ms.
        #[arg(long, default_value_t = 50)]
        latency_ms: u32,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The scenario (see `coreplay scenarios`).
    scenario: String,
    /// Threads (T).
    #[arg(long)]
    threads: Option<u32>,
    /// Worker processes (P).
    #[arg(long)]
    processes: Option<u32>,
    /// Requests (K).
    #[arg(long)]
    requests: Option<u32>,
    /// Loopback server latency, ms.
    #[arg(long)]
    latency_ms: Option<u32>,
    /// Lock switch interval, ms.
    #[arg(long)]
    switch_interval_ms: Option<u32>,
    /// Work units (about 50 µs of one core each).
    #[arg(long)]
    work: Option<u32>,
    /// How long the blocking task computes without awaiting, ms (event-loop-blocked).
    #[arg(long)]
    block_ms: Option<u32>,
    /// Write the run to FILE as a trace (gzip-compressed JSON Lines; see docs/trace-format.md),
    /// e.g. run.coreplay.gz.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// How events are recorded.
    #[arg(long, value_enum, default_value_t = FidelityArg::Auto)]
    fidelity: FidelityArg,
    /// Hard cap on the run's duration, seconds.
    #[arg(long, default_value_t = coreplay_agent::run::DEFAULT_CAP_SECS, value_parser = clap::value_parser!(u32).range(1..=3600))]
    max_secs: u32,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The trace file (as written by `coreplay run … --out FILE`).
    file: PathBuf,
    /// What to convert it to.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Write to OUT instead of standard output.
    #[arg(long, value_name = "OUT")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The trace file (as written by `coreplay run … --out FILE` or the page's download).
    file: PathBuf,
    /// Print at most this many problems (all are counted).
    #[arg(long, default_value_t = 20)]
    max_problems: usize,
}

#[derive(Debug, Args)]
struct RenderArgs {
    /// The trace file (as written by `coreplay run … --out FILE`).
    file: PathBuf,
    /// The instant to draw: a time since the run started, e.g. 12.5ms, 40us, 1s (a bare number is ms).
    #[arg(long, value_parser = parse_instant)]
    at: u64,
    /// What to draw.
    #[arg(long, value_enum, default_value_t = RenderView::All)]
    view: RenderView,
    /// The SVG file to write.
    #[arg(long, value_name = "OUT.svg")]
    out: PathBuf,
}

fn parse_instant(s: &str) -> Result<u64, String> {
    coreplay_shared::frame::parse_duration(s)
}

/// Views `render` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RenderView {
    /// Hardware threads, queues, the lock, waiting threads, the event loop.
    Cores,
    /// One lane per hardware thread over the run, with a cursor.
    Timeline,
    /// Both.
    All,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// Chrome Trace Event JSON, for Perfetto UI (ui.perfetto.dev) and chrome://tracing.
    ChromeTrace,
}

#[derive(Debug, Args)]
struct WorkerCli {
    #[arg(long)]
    origin_ns: u64,
    #[arg(long)]
    first: u32,
    #[arg(long)]
    count: u32,
    #[arg(long)]
    interval_ms: u32,
    #[arg(long)]
    index: u32,
    #[arg(long)]
    trace: u8,
    #[arg(long, default_value_t = 0)]
    exact: u8,
}

/// How run events are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FidelityArg {
    /// Exact where the kernel permits, self-timed otherwise.
    Auto,
    /// The kernel's switch records (perf_event_open); refuse to run without them.
    Exact,
    /// Threads time themselves around chunks of work.
    SelfTimed,
}

impl FidelityArg {
    fn resolve(self) -> Result<(Fidelity, Option<String>), Failure> {
        let (best, why) = run::detect_fidelity();
        match self {
            FidelityArg::Auto => Ok((best, why)),
            FidelityArg::SelfTimed => Ok((
                Fidelity::SelfTimed,
                Some("self-timed by request (--fidelity self-timed)".into()),
            )),
            FidelityArg::Exact if best == Fidelity::Exact => Ok((Fidelity::Exact, None)),
            FidelityArg::Exact => Err(Failure::BadInput(format!(
                "--fidelity exact is not available here: {}",
                why.unwrap_or_default()
            ))),
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// How run events are recorded.
    #[arg(long, value_enum, default_value_t = FidelityArg::Auto)]
    fidelity: FidelityArg,
    /// Allow listening on a non-loopback address; an access token is then required and printed.
    #[arg(long)]
    allow_remote: bool,
    /// Also accept WebSocket connections from pages of this origin (e.g. http://127.0.0.1:8080
    /// for `trunk serve`); repeatable.
    #[arg(long, value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Offer this program to the page's watch list, as NAME=COMMAND (split at spaces, no
    /// shell); repeatable. The Python examples are offered by default when python3 is found.
    #[arg(long, value_name = "NAME=CMD")]
    watch_program: Vec<String>,
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
        Some(Command::Run(args)) => run_scenario(&args),
        Some(Command::Scenarios) => list_scenarios(),
        Some(Command::Export(args)) => export_trace(&args),
        Some(Command::Render(args)) => render_frame(&args),
        Some(Command::Check(args)) => return check_trace(&args),
        Some(Command::Watch(args)) => watch_program(&args),
        Some(Command::Worker(w)) => {
            return exit_code(workloads::worker::main(&workloads::worker::WorkerArgs {
                origin_ns: w.origin_ns,
                first: w.first,
                count: w.count,
                interval_ms: w.interval_ms.max(1),
                index: w.index,
                trace: w.trace != 0,
                exact: w.exact != 0,
            }));
        }
        Some(Command::LoopbackDb { latency_ms }) => {
            return exit_code(workloads::loopback_db::main(latency_ms));
        }
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

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn list_scenarios() -> Result<(), Failure> {
    let pus = live_pus()?;
    print!("{}", report::catalog_text(&scenario::catalog(pus)));
    Ok(())
}

fn live_pus() -> Result<u32, Failure> {
    let topology = topology::load(&Source::Live).map_err(|e| Failure::Other(e.into()))?;
    Ok(u32::try_from(topology.pu_count()).unwrap_or(u32::MAX))
}

fn run_scenario(args: &RunArgs) -> Result<(), Failure> {
    let Some(id) = ScenarioId::from_name(&args.scenario) else {
        let names: Vec<&str> = ScenarioId::ALL.iter().map(|s| s.name()).collect();
        return Err(Failure::BadInput(format!(
            "unknown scenario {:?}; choose one of: {}",
            args.scenario,
            names.join(", ")
        )));
    };
    let topology = topology::load(&Source::Live).map_err(|e| Failure::Other(e.into()))?;
    let pus = u32::try_from(topology.pu_count()).unwrap_or(u32::MAX);
    let given = Params {
        threads: args.threads,
        processes: args.processes,
        requests: args.requests,
        latency_ms: args.latency_ms,
        switch_interval_ms: args.switch_interval_ms,
        work: args.work,
        block_ms: args.block_ms,
    };
    let params = scenario::resolve(id, &given, pus)
        .map_err(|e| Failure::BadInput(format!("--{}: {e}", e.field().replace('_', "-"))))?;
    let spec = RunSpec {
        scenario: id,
        params,
        pus,
        exe: std::env::current_exe().context("finding the coreplay executable")?,
        cap: Duration::from_secs(u64::from(args.max_secs)),
        fidelity: args.fidelity.resolve()?.0,
    };
    eprintln!(
        "coreplay: running {id} with {} on {pus} hardware threads, {} (Ctrl-C stops it)",
        serde_json::to_string(&spec.params).unwrap_or_default(),
        spec.fidelity
    );
    let cancel = Arc::new(AtomicBool::new(false));
    stop_on_ctrl_c(Arc::clone(&cancel));
    let seen = Arc::new(AtomicU64::new(0));
    let progress = Arc::clone(&seen);
    let started = std::time::Instant::now();
    let mut last_print = started;
    let finished = run::execute(&spec, cancel, move |batch| {
        let total = progress.fetch_add(batch.len() as u64, Ordering::Relaxed) + batch.len() as u64;
        if last_print.elapsed() >= Duration::from_millis(500) {
            last_print = std::time::Instant::now();
            eprint!(
                "\r  {:>6.1} s  {total:>10} events",
                started.elapsed().as_secs_f64()
            );
        }
    });
    eprintln!(
        "\r  {:>6.1} s  {:>10} events, done",
        started.elapsed().as_secs_f64(),
        finished.summary.events
    );
    report_finished(&topology, &finished, args.out.as_deref(), args.json)?;
    Ok(())
}

/// Writes a finished run's trace file (when asked) and prints its summary, as a table or one
/// JSON object; says whether it printed the table.
fn report_finished(
    topology: &coreplay_shared::Topology,
    finished: &run::Finished,
    out: Option<&std::path::Path>,
    json: bool,
) -> Result<bool, Failure> {
    if let Some(path) = out {
        let header = record::header_for(topology, &finished.summary);
        record::write_file(path, &header, &finished.events, &finished.summary)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "coreplay: wrote {} events to {}",
            finished.events.len(),
            path.display()
        );
    }
    if json {
        println!(
            "{}",
            serde_json::to_string(&finished.summary).context("encoding the summary")?
        );
        Ok(false)
    } else {
        print!("{}", report::summary_table(&finished.summary));
        Ok(true)
    }
}

/// Reads a trace file: I/O failures are errors (exit 1), a file that is not a readable trace
/// is bad input (exit 2).
fn read_trace(path: &std::path::Path) -> Result<coreplay_shared::trace_file::TraceFile, Failure> {
    record::read_file(path).map_err(|e| match e {
        record::ReadError::Io { .. } => Failure::Other(e.into()),
        _ => Failure::BadInput(e.to_string()),
    })
}

/// Says on stderr when a trace's events are inconsistent (the output is still written, from
/// every event: `coreplay check` lists the problems).
fn warn_if_inconsistent(trace: &coreplay_shared::trace_file::TraceFile, path: &std::path::Path) {
    if let Some(line) = trace.check().headline() {
        eprintln!(
            "coreplay: warning: {}: {line}; `coreplay check {}` lists them",
            path.display(),
            path.display()
        );
    }
}

/// `coreplay check FILE`: 0 consistent, 1 inconsistent events, 2 not a readable trace.
fn check_trace(args: &CheckArgs) -> ExitCode {
    let trace = match record::read_file(&args.file) {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("coreplay: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let report = trace.check();
    match report.headline() {
        None => {
            println!(
                "{}: consistent ({} events, {} threads)",
                args.file.display(),
                report.events,
                trace.summary.threads.len()
            );
            ExitCode::SUCCESS
        }
        Some(line) => {
            println!("{}: {line}", args.file.display());
            for problem in report.problems.iter().take(args.max_problems) {
                println!("  {problem}");
            }
            let more = report.problems.len().saturating_sub(args.max_problems);
            if more > 0 {
                println!("  … and {more} more problems (--max-problems N shows more)");
            }
            ExitCode::FAILURE
        }
    }
}

fn render_frame(args: &RenderArgs) -> Result<(), Failure> {
    let trace = read_trace(&args.file)?;
    warn_if_inconsistent(&trace, &args.file);
    let view = match args.view {
        RenderView::Cores => render::View::Cores,
        RenderView::Timeline => render::View::Timeline,
        RenderView::All => render::View::All,
    };
    let svg = render::svg(&trace, args.at, view).map_err(|e| Failure::BadInput(e.to_string()))?;
    std::fs::write(&args.out, svg).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("coreplay: wrote {}", args.out.display());
    Ok(())
}

fn export_trace(args: &ExportArgs) -> Result<(), Failure> {
    let trace = read_trace(&args.file)?;
    warn_if_inconsistent(&trace, &args.file);
    // `coreplay export … | head` is not an error.
    let quiet_pipe = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    };
    let ExportFormat::ChromeTrace = args.format;
    match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            export::chrome_trace(&trace, &mut out)
                .and_then(|()| std::io::Write::flush(&mut out))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "coreplay: wrote {} ({} events; open it in https://ui.perfetto.dev or chrome://tracing)",
                path.display(),
                trace.events.len()
            );
        }
        None => {
            let stdout = std::io::stdout().lock();
            let mut out = std::io::BufWriter::new(stdout);
            quiet_pipe(
                export::chrome_trace(&trace, &mut out)
                    .and_then(|()| std::io::Write::flush(&mut out)),
            )
            .context("writing to standard output")?;
        }
    }
    Ok(())
}

/// Sets `cancel` on Ctrl-C or SIGTERM, from a small thread of its own.
fn stop_on_ctrl_c(cancel: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(shutdown_signal());
                cancel.store(true, Ordering::Relaxed);
            }
        });
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
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(Failure::BadInput(format!(
            "{} is reachable from other machines; add --allow-remote to listen there (an access \
             token is then required and printed), or listen on 127.0.0.1",
            args.listen
        )));
    }
    for origin in &args.allow_origin {
        if !(origin.starts_with("http://") || origin.starts_with("https://"))
            || origin.ends_with('/')
        {
            return Err(Failure::BadInput(format!(
                "--allow-origin {origin:?}: expected an origin like http://127.0.0.1:8080 (scheme, host, port; no path)"
            )));
        }
    }
    let token = if args.listen.ip().is_loopback() {
        None
    } else {
        Some(server::guard::new_token().context("making an access token")?)
    };
    let topology = load_topology(&args.source)?;
    let (fidelity, fidelity_note) = args.fidelity.resolve()?;
    if let Some(note) = &fidelity_note {
        tracing::info!("runs are self-timed: {note}");
    }
    let watch_programs = watch_programs(&args.watch_program)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let bound = server::bind(ServerConfig {
            watch_programs,
            listen: args.listen,
            topology,
            exe: std::env::current_exe().context("finding the coreplay executable")?,
            run_cap: Duration::from_secs(u64::from(run::DEFAULT_CAP_SECS)),
            fidelity,
            fidelity_note,
            access: server::guard::Access {
                token: token.clone(),
                allowed_origins: args.allow_origin.clone(),
            },
        })
        .await
        .map_err(|e| match e {
            ServerError::AddrInUse { .. } => Failure::BadInput(e.to_string()),
            other => Failure::Other(other.into()),
        })?;
        let addr = bound.local_addr().context("reading the bound address")?;
        if let Some(token) = &token {
            tracing::warn!(
                "listening on {addr}, reachable from other machines; only holders of the token \
                 in the URL below can connect"
            );
            println!("coreplay is serving on http://{addr}/?token={token}");
        }
        if !server::page_is_built() {
            tracing::warn!("{}", server::BUILD_HINT);
        }
        // Printed on stdout, alone on its line, so scripts and tests can read the URL.
        if token.is_none() {
            println!("coreplay is serving on http://{addr}/");
        }
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

#[derive(Debug, Args)]
struct WatchArgs {
    /// Follow this running process (and the processes it starts from now on) instead of
    /// starting a command; it is left running when the watch stops.
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Samples of /proc per second (10..=10000).
    #[arg(long, value_name = "N", default_value_t = coreplay_shared::watch::DEFAULT_HZ)]
    hz: u32,
    /// How events are recorded.
    #[arg(long, value_enum, default_value_t = WatchFidelityArg::Auto)]
    fidelity: WatchFidelityArg,
    /// Write the watch to FILE as a trace, like `run --out`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the summary as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Hard cap on the watch's duration, seconds (a started program is killed then).
    #[arg(long, default_value_t = run::DEFAULT_CAP_SECS, value_parser = clap::value_parser!(u32).range(1..=3600))]
    max_secs: u32,
    /// The program to start and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// How a watch is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WatchFidelityArg {
    /// The kernel's switch records where permitted, /proc samples otherwise.
    Auto,
    /// The kernel's switch records (perf_event_open); refuse without them.
    Exact,
    /// /proc samples.
    Sampled,
}

fn watch_programs(given: &[String]) -> Result<Vec<coreplay_shared::watch::WatchProgram>, Failure> {
    let mut programs = coreplay_agent::watch::default_programs();
    for spec in given {
        let p = coreplay_agent::watch::parse_program(spec)
            .map_err(|e| Failure::BadInput(format!("--watch-program {e}")))?;
        programs.retain(|q| q.name != p.name);
        programs.push(p);
    }
    Ok(programs)
}

fn watch_program(args: &WatchArgs) -> Result<(), Failure> {
    use coreplay_agent::watch::{self, FidelityChoice, ProgramOutput, Target, WatchSpec};
    let target = match (args.pid, args.command.is_empty()) {
        (Some(pid), true) => Target::Pid(pid),
        (None, false) => Target::Command(args.command.clone()),
        (Some(_), false) => {
            return Err(Failure::BadInput(
                "give either --pid PID or a command after `--`, not both".into(),
            ));
        }
        (None, true) => {
            return Err(Failure::BadInput(
                "nothing to watch: give a command after `--` (coreplay watch -- python3 app.py) \
                 or --pid PID"
                    .into(),
            ));
        }
    };
    let topology = topology::load(&Source::Live).map_err(|e| Failure::Other(e.into()))?;
    let spec = WatchSpec {
        target,
        program: None,
        hz: args.hz,
        fidelity: match args.fidelity {
            WatchFidelityArg::Auto => FidelityChoice::Auto,
            WatchFidelityArg::Exact => FidelityChoice::Exact,
            WatchFidelityArg::Sampled => FidelityChoice::Sampled,
        },
        cap: Duration::from_secs(u64::from(args.max_secs)),
        output: ProgramOutput::Inherit,
    };
    let watched = watch::start(&spec).map_err(|e| Failure::BadInput(e.to_string()))?;
    let target = watched.target();
    eprintln!(
        "coreplay: watching {} (pid {}), {} (Ctrl-C stops it)",
        if target.command.is_empty() {
            format!("process {}", target.pid)
        } else {
            target.command.join(" ")
        },
        target.pid,
        watched.fidelity()
    );
    if let Some(note) = watched.fidelity_note() {
        eprintln!("coreplay: {note}");
    }
    let cancel = Arc::new(AtomicBool::new(false));
    stop_on_ctrl_c(Arc::clone(&cancel));
    let done = watched.run(cancel, |_| {});
    let finished = done.finished;
    if report_finished(&topology, &finished, args.out.as_deref(), args.json)? {
        println!();
        print!("{}", watch::thread_table(&finished.summary));
    }
    Ok(())
}
