//! `coreplay`: the command-line entry point. Parses arguments ([`cli`]), then hands each
//! command to the library and turns its outcome into an exit code.

mod cli;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use cli::{
    CheckArgs, Cli, Command, ExportArgs, ExportFormat, FidelityArg, RenderArgs, RunArgs, ServeArgs,
    SourceArgs, TopologyArgs, WatchArgs,
};
use coreplay_agent::{
    export, record, render, report,
    run::{self, Job, RunSpec},
    server::{self, ServerConfig, ServerError},
    topology::{self, Source},
    workloads,
};
use coreplay_shared::{
    event::Fidelity,
    scenario::{self, ScenarioId},
};

/// The fidelity a run gets for `--fidelity`, with why it is not exact when it is not.
fn resolve_fidelity(arg: FidelityArg) -> Result<(Fidelity, Option<String>), Failure> {
    let (best, why) = run::detect_fidelity();
    match arg {
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
        Some(Command::LoopbackDb {
            latency_ms,
            connections,
        }) => {
            return exit_code(workloads::loopback_db::main(latency_ms, connections));
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
    let params = scenario::resolve(id, &args.params(), pus)
        .map_err(|e| Failure::BadInput(format!("--{}: {e}", e.field().replace('_', "-"))))?;
    let spec = RunSpec {
        scenario: id,
        params,
        pus,
        exe: std::env::current_exe().context("finding the coreplay executable")?,
        cap: Duration::from_secs(u64::from(args.max_secs)),
        fidelity: resolve_fidelity(args.fidelity)?.0,
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
    let finished = Job::Scenario(spec).run(cancel, move |batch| {
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
    // The format follows the file name; an unknown extension is refused before any reading.
    let format = render::Format::of(&args.out).map_err(|e| Failure::BadInput(e.to_string()))?;
    let trace = read_trace(&args.file)?;
    warn_if_inconsistent(&trace, &args.file);
    let request = render::Request {
        at: args.at,
        from: args.from,
        to: args.to,
        speed: args.speed,
        fps: args.fps,
        size: args.size,
    };
    let picture = render::picture(&trace, args.view.into(), format, &request)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    std::fs::write(&args.out, &picture.bytes)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let (w, h) = picture.size;
    let kb = picture.bytes.len().div_ceil(1024);
    match picture.window {
        Some((from, to, speed, fps)) => eprintln!(
            "coreplay: wrote {} ({w}x{h}, {} frames at {} fps: {} to {} of the run, {} per second; {kb} KB)",
            args.out.display(),
            picture.frames,
            fps,
            render::svg::duration(from),
            render::svg::duration(to),
            render::svg::duration(speed),
        ),
        None => eprintln!("coreplay: wrote {} ({w}x{h}, {kb} KB)", args.out.display()),
    }
    Ok(())
}

fn export_trace(args: &ExportArgs) -> Result<(), Failure> {
    if args.format == ExportFormat::Site {
        return export_site(args);
    }
    if args.format == ExportFormat::Html {
        return export_html(args);
    }
    if !args.view.is_empty() || args.at.is_some() || args.speed.is_some() || args.embed {
        return Err(Failure::BadInput(
            "--view, --at, --speed and --embed choose how --format html shows the run".into(),
        ));
    }
    let [file] = &args.files[..] else {
        return Err(Failure::BadInput(format!(
            "--format chrome-trace converts one trace file ({} given)",
            args.files.len()
        )));
    };
    let trace = read_trace(file)?;
    warn_if_inconsistent(&trace, file);
    // `coreplay export … | head` is not an error.
    let quiet_pipe = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    };
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

/// `coreplay export RUN… --format site --out DIR`.
fn export_site(args: &ExportArgs) -> Result<(), Failure> {
    let Some(out) = &args.out else {
        return Err(Failure::BadInput(
            "--format site needs --out DIR, the new folder to write".into(),
        ));
    };
    let mut runs = Vec::new();
    for file in &args.files {
        let trace = read_trace(file)?;
        warn_if_inconsistent(&trace, file);
        runs.push((file.clone(), trace));
    }
    let site = export::site::write(&runs, out).map_err(|e| match e {
        export::site::SiteError::Write { .. } => Failure::Other(e.into()),
        other => Failure::BadInput(other.to_string()),
    })?;
    eprintln!(
        "coreplay: wrote {}: the page ({} files, {} KB) and {} run{} in its gallery; put it on \
         any static web host, or try it with `python3 -m http.server --directory {}`",
        out.display(),
        site.page_files,
        site.page_bytes / 1024,
        site.runs,
        if site.runs == 1 { "" } else { "s" },
        out.display()
    );
    Ok(())
}

/// `coreplay export RUN --format html --out FILE.html`.
fn export_html(args: &ExportArgs) -> Result<(), Failure> {
    let Some(out) = &args.out else {
        return Err(Failure::BadInput(
            "--format html needs --out FILE.html, the file to write".into(),
        ));
    };
    let [file] = &args.files[..] else {
        return Err(Failure::BadInput(format!(
            "--format html holds one run ({} given); --format site publishes several",
            args.files.len()
        )));
    };
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("html" | "htm")) {
        return Err(Failure::BadInput(format!(
            "--out {}: --format html writes an HTML file, so the name must end in .html",
            out.display()
        )));
    }
    // The file's own bytes go in (read and checked first), so that what plays is what was given.
    let trace = read_trace(file)?;
    warn_if_inconsistent(&trace, file);
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let gz = if bytes.starts_with(&[0x1f, 0x8b]) {
        bytes
    } else {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &bytes).context("compressing the run")?;
        enc.finish().context("compressing the run")?
    };
    let show = export::html::Show {
        views: args.view.iter().map(|v| v.trim().to_string()).collect(),
        at: args.at,
        speed: args.speed,
        embed: args.embed,
    };
    let html = export::html::assemble(&export::html::run_name(file), &gz, &show)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    std::fs::write(out, &html).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "coreplay: wrote {} ({} KB: the page and the run, {} events); open it in any browser, \
         no server needed",
        out.display(),
        html.len() / 1024,
        trace.events.len()
    );
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
    let token = if args.listen.ip().is_loopback() {
        None
    } else {
        Some(server::guard::new_token().context("making an access token")?)
    };
    let topology = load_topology(&args.source)?;
    let (fidelity, fidelity_note) = resolve_fidelity(args.fidelity)?;
    if let Some(note) = &fidelity_note {
        tracing::info!("runs are self-timed: {note}");
    }
    let watch_programs = watch_programs(&args.watch_program)?;
    let (traces, traces_own) = match &args.traces {
        Some(dir) => (
            Some(
                dir.canonicalize()
                    .ok()
                    .filter(|d| d.is_dir())
                    .ok_or_else(|| {
                        Failure::BadInput(format!("--traces {}: not a folder", dir.display()))
                    })?,
            ),
            false,
        ),
        // The agent's own folder, made on first use; without one, runs are not kept.
        None => {
            let own = server::kept::default_dir().and_then(|d| {
                std::fs::create_dir_all(&d)
                    .and_then(|()| d.canonicalize())
                    .map_err(|e| tracing::warn!("runs are not kept: {}: {e}", d.display()))
                    .ok()
            });
            (own, true)
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let bound = server::bind(ServerConfig {
            watch_programs,
            traces,
            traces_own,
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
    use coreplay_agent::watch::{self, ProgramOutput, Target, WatchSpec};
    let target = match (args.pid, args.command.is_empty()) {
        (Some(pid), true) => Target::Pid(pid),
        (None, false) => {
            let mut command = args.command.clone();
            // As the page does for its examples: a Python wrapper script (a pyenv shim) is
            // replaced by the interpreter it starts, so its helper processes stay out.
            if let Some(real) = watch::python_behind_wrapper(&command[0]) {
                eprintln!(
                    "coreplay: {} is a wrapper script; watching the interpreter it starts, {real}",
                    command[0]
                );
                command[0] = real;
            }
            Target::Command(command)
        }
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
        fidelity: args.fidelity.into(),
        cap: Duration::from_secs(u64::from(args.max_secs)),
        output: ProgramOutput::Inherit,
        python_probe: !args.no_python_probe,
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
    let finished = Job::Watch(Box::new(watched)).run(cancel, |_| {});
    // --fidelity exact refuses a run that could not be recorded exactly, whichever thread
    // it was (the note names it); nothing is written.
    if args.fidelity == cli::WatchFidelityArg::Exact
        && finished.summary.fidelity != coreplay_shared::event::Fidelity::Exact
    {
        let why = finished
            .summary
            .notes
            .iter()
            .find(|n| n.contains("could not be recorded exactly"))
            .cloned()
            .unwrap_or_else(|| "a thread could not be recorded exactly".into());
        return Err(Failure::BadInput(format!(
            "--fidelity exact: {why}; run with --fidelity auto to record such threads sampled"
        )));
    }
    if report_finished(&topology, &finished, args.out.as_deref(), args.json)? {
        println!();
        print!("{}", watch::thread_table(&finished.summary));
    }
    Ok(())
}
