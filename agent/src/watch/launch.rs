//! Starting a watch and ending it: start the program (or find the running process), choose
//! the fidelity, hand it to the sampler until it ends, and turn what was recorded into the
//! run's summary; the tail of a captured program's output; exit statuses.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read},
    os::unix::process::{CommandExt, ExitStatusExt},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, atomic::AtomicBool},
    thread::JoinHandle,
    time::Duration,
};

use coreplay_shared::{
    event::{Event, Fidelity, ProcessEnd},
    scenario::{Params, ScenarioId},
    watch::{self, WatchTarget},
};

use super::{
    FidelityChoice, ProgramOutput, SamplerStats, Target, WatchError, WatchFinished, WatchSpec,
    procfs::{self, ProcError, TaskFiles},
    python::{Probe, ProbeFeed},
    sampler::Sampler,
};
use crate::{
    run::{self, Ending},
    trace::{clock::monotonic_ns, perf::PerfSwitches},
    workloads::Output,
};

/// Lines of a page-started program's output kept for the summary.
const OUTPUT_LINES: usize = 12;

/// A watch whose program is started (or whose process is found), ready to be followed.
#[derive(Debug)]
pub struct Watched {
    child: Option<Child>,
    own_group: bool,
    root: u32,
    target: WatchTarget,
    exact: bool,
    note: Option<String>,
    hz: u32,
    cap: Duration,
    output: Option<OutputTail>,
    /// The Python probe's directory (removed when the watch ends) and pipe.
    probe: Option<Probe>,
    probe_feed: Option<ProbeFeed>,
    probe_note: Option<String>,
    /// `--fidelity exact`: refuse to record any thread otherwise.
    strict: bool,
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Never followed (the run could not start): do not leave the program behind.
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the command (or finds the process) and decides how to record it.
pub fn start(spec: &WatchSpec) -> Result<Watched, WatchError> {
    let hz = watch::check_hz(spec.hz)?;
    raise_fd_limit();
    let (mut probe, mut probe_feed, mut probe_note) = (None::<Probe>, None, None::<String>);
    let (child, root, command, own_group, output) = match &spec.target {
        Target::Pid(pid) => {
            if !procfs::process_exists(*pid) {
                return Err(WatchError::NoSuchProcess(*pid));
            }
            TaskFiles::open(*pid, *pid).map_err(|source| match source {
                ProcError::Gone(_) => WatchError::NoSuchProcess(*pid),
                source => WatchError::Access { pid: *pid, source },
            })?;
            let python = std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .is_some_and(|n| n.starts_with("python"));
            if spec.python_probe && python {
                probe_note = Some(
                    "the Python probe is given only to a program coreplay starts; this one was \
                     already running, so its asyncio tasks and GIL waits are not seen (start it \
                     with coreplay watch -- python3 … to see them)"
                        .into(),
                );
            }
            (None, *pid, Vec::new(), false, None)
        }
        Target::Command(command) => {
            let Some((program, args)) = command.split_first() else {
                return Err(WatchError::EmptyCommand);
            };
            let mut cmd = Command::new(program);
            cmd.args(args);
            let capture = spec.output == ProgramOutput::Capture;
            if spec.python_probe {
                match Probe::new() {
                    Ok(p) => {
                        p.prepare(&mut cmd);
                        probe = Some(p);
                    }
                    Err(e) => probe_note = Some(format!("python probe not used: {e}")),
                }
            }
            if capture {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0);
            }
            let mut child = cmd.spawn().map_err(|source| WatchError::Spawn {
                command: command.join(" "),
                source,
            })?;
            let output = capture.then(|| OutputTail::start(&mut child));
            probe_feed = probe.as_mut().and_then(Probe::started);
            let pid = child.id();
            (Some(child), pid, command.clone(), capture, output)
        }
    };
    let mut watched = Watched {
        child,
        own_group,
        root,
        target: WatchTarget {
            program: spec.program.clone(),
            command,
            pid: root,
        },
        exact: false,
        note: None,
        hz,
        cap: spec.cap,
        output,
        probe,
        probe_feed,
        probe_note,
        strict: spec.fidelity == FidelityChoice::Exact,
    };
    match spec.fidelity {
        FidelityChoice::Sampled => {
            watched.note = Some("sampled from /proc by request (--fidelity sampled)".into());
        }
        FidelityChoice::Auto | FidelityChoice::Exact => match PerfSwitches::open_thread(root) {
            Ok(_) => watched.exact = true,
            Err(e) => {
                let why = exact_refused(&e);
                if spec.fidelity == FidelityChoice::Exact {
                    // `watched` drops here and kills what it started.
                    return Err(WatchError::ExactUnavailable(why));
                }
                watched.note = Some(why);
            }
        },
    }
    Ok(watched)
}

fn exact_refused(e: &std::io::Error) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "sampled from /proc because perf_event_open on the watched threads was refused ({e}; \
         perf_event_paranoid is {paranoid}). For exact switch times run coreplay as root, grant \
         CAP_PERFMON (setcap cap_perfmon+ep coreplay), or lower \
         /proc/sys/kernel/perf_event_paranoid to 1 (`sysctl kernel.perf_event_paranoid=1`)"
    )
}

/// Each followed thread holds three or four files open: lift the soft limit to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; RLIMIT_NOFILE is a valid resource.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above; raising the soft limit up to the hard one is always allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// How a process ended, from its exit status.
pub(super) fn process_end(status: ExitStatus) -> ProcessEnd {
    match (status.code(), status.signal()) {
        (Some(code), _) => ProcessEnd::Exited { code },
        (None, Some(signal)) => ProcessEnd::Signaled { signal },
        (None, None) => ProcessEnd::Unknown,
    }
}

/// How a process ended, from an exit status in `waitpid` form (as `/proc/…/stat` gives it).
pub(super) fn decode_wait_status(status: i32) -> ProcessEnd {
    process_end(ExitStatus::from_raw(status))
}

impl Watched {
    /// What is followed.
    pub fn target(&self) -> WatchTarget {
        self.target.clone()
    }

    /// How it will be recorded (the achieved rate replaces the asked one in the summary).
    pub fn fidelity(&self) -> Fidelity {
        if self.exact {
            Fidelity::Exact
        } else {
            Fidelity::Sampled { hz: self.hz }
        }
    }

    /// Why it is not exact, when it is not.
    pub fn fidelity_note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Follows the program until it and everything it started has exited, `cancel` is set or
    /// the cap passes; `on_batch` sees the events as they come.
    pub fn run(
        mut self,
        cancel: Arc<AtomicBool>,
        on_batch: impl FnMut(&[Event]) + Send + 'static,
    ) -> WatchFinished {
        let mut stats = SamplerStats {
            hz_asked: self.hz,
            ..SamplerStats::default()
        };
        let mut fallbacks = 0u32;
        let child = self.child.take();
        let (root, hz, exact, own_group) = (self.root, self.hz, self.exact, self.own_group);
        let feed = self.probe_feed.take();
        let strict = self.strict;
        let mut python_notes = Vec::new();
        let mut refusals = Vec::new();
        let mut recorded = run::record(self.cap, exact, cancel, on_batch, |rec| {
            let mut sampler = Sampler::new(rec, hz, exact, child, own_group);
            sampler.strict_exact = strict;
            if let Some(feed) = feed {
                sampler.with_python(feed);
            }
            let output = sampler.follow(root);
            stats = sampler.stats;
            fallbacks = sampler.exact_fallbacks;
            python_notes = sampler.python_notes();
            refusals = std::mem::take(&mut sampler.exact_refusals);
            Ok::<Output, WatchError>(output)
        });
        // The probe's directory goes once the program has.
        self.probe = None;
        let sampled = Fidelity::Sampled {
            hz: stats.achieved_hz().round() as u32,
        };
        let mut notes: Vec<String> = self.note.iter().cloned().collect();
        notes.extend(self.probe_note.take());
        if !refusals.is_empty() {
            notes.push(format!(
                "{} could not be recorded exactly ({}){}",
                if fallbacks == 1 {
                    "one thread"
                } else {
                    "threads"
                },
                refusals.join("; "),
                if strict {
                    ": --fidelity exact stopped the watch there"
                } else {
                    ""
                }
            ));
        }
        notes.extend(python_notes);
        notes.push(format!(
            "sampler: {} Hz asked, {:.0} Hz achieved, {:.1} % of one core, up to {} threads \
             followed",
            stats.hz_asked,
            stats.achieved_hz(),
            stats.cpu_percent(),
            stats.max_threads
        ));
        if let Some(tail) = self.output.take() {
            recorded
                .output
                .notes
                .extend(tail.finish().into_iter().map(|l| format!("output: {l}")));
        }
        let finished = run::finish(
            recorded,
            Ending {
                scenario: ScenarioId::Watch,
                params: Params::default(),
                pus: 0,
                fidelity: if exact { Fidelity::Exact } else { sampled },
                fallback: (
                    sampled,
                    "could not get exact switch recording and were sampled, so the run as a \
                     whole is labelled sampled",
                ),
                overlap_why: "slices overlapped on one CPU (sampled times are known to a sampling \
                              period, and a thread's state where it is first seen is a guess)",
                notes,
                watch: Some(self.target.clone()),
            },
        );
        WatchFinished { finished, stats }
    }
}

/// The last lines a captured program printed.
#[derive(Debug)]
struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl OutputTail {
    fn start(child: &mut Child) -> OutputTail {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let mut readers = Vec::new();
        let streams: Vec<Box<dyn Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for stream in streams {
            let lines = Arc::clone(&lines);
            if let Ok(h) = std::thread::Builder::new()
                .name("watch-output".into())
                .spawn(move || {
                    // Bounded lines, so a program that prints without newlines costs little.
                    let mut reader = BufReader::new(stream.take(64 << 20));
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match reader.by_ref().take(4096).read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                let text: String = String::from_utf8_lossy(&line)
                                    .trim_end()
                                    .chars()
                                    .take(200)
                                    .collect();
                                if text.is_empty() {
                                    continue;
                                }
                                let mut q = lines.lock().unwrap_or_else(|e| e.into_inner());
                                if q.len() >= OUTPUT_LINES {
                                    q.pop_front();
                                }
                                q.push_back(text);
                            }
                        }
                    }
                })
            {
                readers.push(h);
            }
        }
        OutputTail { lines, readers }
    }

    /// The lines, once the readers are done (or after a short wait: a daemon the program
    /// left behind may hold its pipes open).
    fn finish(self) -> Vec<String> {
        let deadline = monotonic_ns() + 300_000_000;
        while self.readers.iter().any(|h| !h.is_finished()) && monotonic_ns() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let q = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses() {
        assert_eq!(decode_wait_status(3 << 8), ProcessEnd::Exited { code: 3 });
        assert_eq!(decode_wait_status(9), ProcessEnd::Signaled { signal: 9 });
        assert_eq!(decode_wait_status(0), ProcessEnd::Exited { code: 0 });
    }

    #[test]
    fn a_missing_pid_is_a_clear_error() {
        let spec = WatchSpec {
            target: Target::Pid(u32::MAX - 7),
            program: None,
            hz: 1_000,
            fidelity: FidelityChoice::Sampled,
            cap: Duration::from_secs(5),
            output: ProgramOutput::Inherit,
            python_probe: false,
        };
        let err = start(&spec).expect_err("no such process");
        assert!(err.to_string().contains("no process with id"), "{err}");
        let bad_hz = WatchSpec {
            hz: 5,
            ..spec.clone()
        };
        assert!(matches!(start(&bad_hz), Err(WatchError::Hz(_))));
        let empty = WatchSpec {
            target: Target::Command(vec![]),
            ..spec
        };
        assert!(matches!(start(&empty), Err(WatchError::EmptyCommand)));
    }
}
