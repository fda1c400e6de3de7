//! The command line: every clap type of `coreplay` (subcommands, their arguments and value
//! types), with the conversions from arguments to what the library takes. What each command
//! does is in `main.rs`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};
use coreplay_agent::{
    DEFAULT_LISTEN, render, run, server::guard::Origin, topology::Source, watch::FidelityChoice,
};
use coreplay_shared::scenario::Params;

/// See what your cores really do: coreplay probes this machine's CPU topology, runs real
/// parallel and concurrent workloads on it and animates them in the browser.
#[derive(Debug, Parser)]
#[command(name = "coreplay", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Options of `serve`, which is what runs when no subcommand is given.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        /// Connections it must be ready to queue at once.
        #[arg(long, default_value_t = 1_000)]
        connections: u32,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The scenario (see `coreplay scenarios`).
    pub(crate) scenario: String,
    /// Threads (T).
    #[arg(long)]
    pub(crate) threads: Option<u32>,
    /// Worker processes (P).
    #[arg(long)]
    pub(crate) processes: Option<u32>,
    /// Requests (K).
    #[arg(long)]
    pub(crate) requests: Option<u32>,
    /// Loopback server latency, ms.
    #[arg(long)]
    pub(crate) latency_ms: Option<u32>,
    /// Lock switch interval, ms.
    #[arg(long)]
    pub(crate) switch_interval_ms: Option<u32>,
    /// Work units (about 50 µs of one core each).
    #[arg(long)]
    pub(crate) work: Option<u32>,
    /// How long the blocking task computes without awaiting, ms (event-loop-blocked).
    #[arg(long)]
    pub(crate) block_ms: Option<u32>,
    /// Write the run to FILE as a trace (gzip-compressed JSON Lines; see docs/trace-format.md),
    /// e.g. run.coreplay.gz.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// How events are recorded.
    #[arg(long, value_enum, default_value_t = FidelityArg::Auto)]
    pub(crate) fidelity: FidelityArg,
    /// Hard cap on the run's duration, seconds.
    #[arg(long, default_value_t = run::DEFAULT_CAP_SECS, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) max_secs: u32,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The trace file (as written by `coreplay run … --out FILE`); for `--format site`, one or
    /// more.
    #[arg(required = true, num_args = 1..)]
    pub(crate) files: Vec<PathBuf>,
    /// What to convert it to.
    #[arg(long, value_enum)]
    pub(crate) format: ExportFormat,
    /// Write to OUT instead of standard output (for `site`, the new folder to write; for
    /// `html`, the file).
    #[arg(long, value_name = "OUT")]
    pub(crate) out: Option<PathBuf>,
    /// `html`: the views shown, comma-separated (cores, loop, timeline, summary).
    #[arg(long, value_delimiter = ',', value_name = "VIEWS")]
    pub(crate) view: Vec<String>,
    /// `html`: the instant shown first, e.g. 12.5ms (a bare number is ms).
    #[arg(long, value_parser = parse_instant)]
    pub(crate) at: Option<u64>,
    /// `html`: how much run time plays per second, e.g. 10us.
    #[arg(long, value_parser = parse_instant)]
    pub(crate) speed: Option<u64>,
    /// `html`: the compact layout made for iframes and slides.
    #[arg(long)]
    pub(crate) embed: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The trace file (as written by `coreplay run … --out FILE` or the page's download).
    pub(crate) file: PathBuf,
    /// Print at most this many problems (all are counted).
    #[arg(long, default_value_t = 20)]
    pub(crate) max_problems: usize,
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The trace file (as written by `coreplay run … --out FILE`).
    pub(crate) file: PathBuf,
    /// A still's instant: a time since the run started, e.g. 12.5ms, 40us, 1s (a bare number
    /// is ms). For .svg and .png.
    #[arg(long, value_parser = parse_instant)]
    pub(crate) at: Option<u64>,
    /// A GIF's first instant (default: the run's start).
    #[arg(long, value_parser = parse_instant)]
    pub(crate) from: Option<u64>,
    /// A GIF's last instant (default: the run's end).
    #[arg(long, value_parser = parse_instant)]
    pub(crate) to: Option<u64>,
    /// A GIF's speed, as in the page: how much of the run one second of animation shows, e.g.
    /// 10ms (default: the window in 6 seconds).
    #[arg(long, value_parser = parse_instant)]
    pub(crate) speed: Option<u64>,
    /// A GIF's frames per second (1 to 50; default 10).
    #[arg(long)]
    pub(crate) fps: Option<u32>,
    /// The picture's size in pixels, WIDTHxHEIGHT (e.g. 1920x1080); the drawing is scaled to
    /// fit and centred. Default: its own size, 1000 pixels wide.
    #[arg(long, value_parser = parse_size)]
    pub(crate) size: Option<(u32, u32)>,
    /// What to draw.
    #[arg(long, value_enum, default_value_t = RenderView::All)]
    pub(crate) view: RenderView,
    /// The file to write: .svg or .png (one instant) or .gif (an animation).
    #[arg(long, value_name = "OUT.svg|OUT.png|OUT.gif")]
    pub(crate) out: PathBuf,
}

/// Parses `WIDTHxHEIGHT` within the sizes a picture may have.
pub(crate) fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?}: expected WIDTHxHEIGHT in pixels, e.g. 1280x720");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h) = (
        w.trim().parse::<u32>().map_err(|_| bad())?,
        h.trim().parse::<u32>().map_err(|_| bad())?,
    );
    let side = render::raster::SIDE;
    if !side.contains(&w) || !side.contains(&h) {
        return Err(format!(
            "{s:?}: each side must be {} to {} pixels",
            side.start(),
            side.end()
        ));
    }
    Ok((w, h))
}

pub(crate) fn parse_instant(s: &str) -> Result<u64, String> {
    coreplay_shared::frame::parse_duration(s)
}

/// Views `render` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RenderView {
    /// Hardware threads, queues, the lock, waiting threads, the event loop.
    Cores,
    /// One lane per hardware thread over the run, with a cursor.
    Timeline,
    /// Both.
    All,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// Chrome Trace Event JSON, for Perfetto UI (ui.perfetto.dev) and chrome://tracing.
    ChromeTrace,
    /// A folder for any static web host: the page, and the runs in its gallery.
    Site,
    /// One HTML file holding the page and the run: plays from file://, an LMS or an e-mail
    /// attachment, with no server and no network.
    Html,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerCli {
    #[arg(long)]
    pub(crate) origin_ns: u64,
    #[arg(long)]
    pub(crate) first: u32,
    #[arg(long)]
    pub(crate) count: u32,
    #[arg(long)]
    pub(crate) interval_ms: u32,
    #[arg(long)]
    pub(crate) index: u32,
    #[arg(long)]
    pub(crate) trace: u8,
    #[arg(long, default_value_t = 0)]
    pub(crate) exact: u8,
}

/// How run events are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FidelityArg {
    /// Exact where the kernel permits, self-timed otherwise.
    Auto,
    /// The kernel's switch records (perf_event_open); refuse to run without them.
    Exact,
    /// Threads time themselves around chunks of work.
    SelfTimed,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub(crate) listen: SocketAddr,
    /// How run events are recorded.
    #[arg(long, value_enum, default_value_t = FidelityArg::Auto)]
    pub(crate) fidelity: FidelityArg,
    /// Allow listening on a non-loopback address; an access token is then required and printed.
    #[arg(long)]
    pub(crate) allow_remote: bool,
    /// Also accept WebSocket connections from pages of this origin (e.g. http://127.0.0.1:8080
    /// for `trunk serve`); repeatable.
    #[arg(long, value_name = "ORIGIN")]
    pub(crate) allow_origin: Vec<Origin>,
    /// Offer this program to the page's watch list, as NAME=COMMAND (split at spaces, no
    /// shell); repeatable. The Python examples are offered by default when python3 is found.
    #[arg(long, value_name = "NAME=CMD")]
    pub(crate) watch_program: Vec<String>,
    /// Serve the trace files in DIR (read-only) at /traces/NAME, so that the page plays them
    /// with ?trace=traces/NAME (one's own recordings, in slides and notebooks too); every live
    /// run that ends is kept there as a trace file, so the page can embed it. Default: the
    /// agent's own folder, $XDG_DATA_HOME/coreplay/runs (~/.local/share/coreplay/runs), which
    /// keeps the newest 100 runs.
    #[arg(long, value_name = "DIR")]
    pub(crate) traces: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TopologyArgs {
    /// Print the topology as JSON (coreplay's protocol type) instead of a tree.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// Where the topology comes from; the live machine unless one of these is given.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub(crate) struct SourceArgs {
    /// Load the topology from an hwloc XML file (written by `lstopo file.xml`).
    #[arg(long = "xml", visible_alias = "topology-xml", value_name = "FILE")]
    pub(crate) xml: Option<PathBuf>,
    /// Build the topology from an hwloc synthetic description, e.g. "package:2 core:16 pu:2".
    #[arg(long, value_name = "DESC")]
    pub(crate) synthetic: Option<String>,
}

impl SourceArgs {
    pub(crate) fn source(&self) -> Source {
        match (&self.xml, &self.synthetic) {
            (Some(path), _) => Source::Xml(path.clone()),
            (None, Some(desc)) => Source::Synthetic(desc.clone()),
            (None, None) => Source::Live,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Follow this running process (and the processes it starts from now on) instead of
    /// starting a command; it is left running when the watch stops.
    #[arg(long, value_name = "PID")]
    pub(crate) pid: Option<u32>,
    /// Samples of /proc per second (10..=10000).
    #[arg(long, value_name = "N", default_value_t = coreplay_shared::watch::DEFAULT_HZ)]
    pub(crate) hz: u32,
    /// How events are recorded.
    #[arg(long, value_enum, default_value_t = WatchFidelityArg::Auto)]
    pub(crate) fidelity: WatchFidelityArg,
    /// Write the watch to FILE as a trace, like `run --out`.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Print the summary as one JSON object instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// Hard cap on the watch's duration, seconds (a started program is killed then).
    #[arg(long, default_value_t = run::DEFAULT_CAP_SECS, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) max_secs: u32,
    /// Do not give a started Python program coreplay's probe (by default every CPython
    /// process of the command loads it from PYTHONPATH and reports its asyncio tasks, selector
    /// waits, thread names and where its GIL can be seen waited for; other programs never
    /// load it).
    #[arg(long)]
    pub(crate) no_python_probe: bool,
    /// The program to start and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

/// How a watch is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WatchFidelityArg {
    /// The kernel's switch records where permitted, /proc samples otherwise.
    Auto,
    /// The kernel's switch records (perf_event_open); refuse without them.
    Exact,
    /// /proc samples.
    Sampled,
}

impl RunArgs {
    /// The scenario parameters given (the rest take the scenario's defaults).
    pub(crate) fn params(&self) -> Params {
        Params {
            threads: self.threads,
            processes: self.processes,
            requests: self.requests,
            latency_ms: self.latency_ms,
            switch_interval_ms: self.switch_interval_ms,
            work: self.work,
            block_ms: self.block_ms,
        }
    }
}

impl From<RenderView> for render::View {
    fn from(v: RenderView) -> render::View {
        match v {
            RenderView::Cores => render::View::Cores,
            RenderView::Timeline => render::View::Timeline,
            RenderView::All => render::View::All,
        }
    }
}

impl From<WatchFidelityArg> for FidelityChoice {
    fn from(f: WatchFidelityArg) -> FidelityChoice {
        match f {
            WatchFidelityArg::Auto => FidelityChoice::Auto,
            WatchFidelityArg::Exact => FidelityChoice::Exact,
            WatchFidelityArg::Sampled => FidelityChoice::Sampled,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_bad_origin_is_refused_by_the_parser() {
        let err = Cli::try_parse_from(["coreplay", "serve", "--allow-origin", "http://x/path"])
            .expect_err("refused");
        assert!(err.to_string().contains("expected an origin like"), "{err}");
        let ok = Cli::try_parse_from(["coreplay", "serve", "--allow-origin", "http://x:8080"])
            .expect("accepted");
        let Some(Command::Serve(serve)) = ok.command else {
            panic!("serve")
        };
        assert_eq!(serve.allow_origin[0].as_str(), "http://x:8080");
    }
}
