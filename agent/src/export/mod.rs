//! Export of a trace file to the Chrome Trace Event format (the JSON object form), so that a
//! run opens in Perfetto UI (ui.perfetto.dev) and chrome://tracing.
//!
//! What goes where:
//!
//! - one process per OS process of the run (named after it; the agent is `coreplay agent`),
//!   one thread track per traced thread with its on-CPU slices (`X`, cat `on_cpu`), its
//!   off-CPU intervals named by reason (`X`, cat `off_cpu`), and its context switches,
//!   migrations and lock steps (instants, `i`); beside it, tracks `NAME · compute`,
//!   `NAME · lock` (waiting for and holding the lock), `NAME · event loop` (every poll, named
//!   by task, and every selector wait) and `NAME · requests` (one slice per request);
//! - a process `CPUs` with one track `CPU n` per hardware thread, carrying the on-CPU slices
//!   labelled by thread name;
//! - a process `tasks` (event-loop scenarios) with one track per task: its polls, the time it
//!   was queued (woken, waiting for a poll) and parked (waiting for I/O or a timer), spawn,
//!   wake and cancellation instants, and the loop's queue depths as a counter (`C`);
//! - process start-up and exit as process-scoped instants.
//!
//! Complete (`X`) events on one track must not overlap unless nested, or the viewers drop
//! them; where they would (e.g. concurrent requests), the track is split into lanes
//! `NAME (2)`, `NAME (3)`… Times are microseconds (floats, nanosecond precision) from the
//! run's start; `displayTimeUnit` is `ns`.

mod builder;
pub mod html;
pub mod site;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{self, Write},
};

use builder::{Builder, CPU_TID_BASE, LANE_TID_BASE, Sub, TASK_TID_BASE, ThreadInfo, TrackKey, us};
pub use builder::{CPUS_PID, TASKS_PID};

use coreplay_shared::{
    event::{Event, LockOp, ProcessEnd, Role, WakeBy},
    replay::{LockSpanKind, Replay, TaskState, off_label},
    trace_file::TraceFile,
};
use serde_json::{Value, json};

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Agent => "agent",
        Role::Worker => "worker",
        Role::Client => "client",
        Role::EventLoop => "event loop",
        Role::Server => "server",
    }
}

/// Writes `trace` as Chrome Trace Event JSON (`{"traceEvents":[…],"displayTimeUnit":"ns",
/// "metadata":{…}}`).
pub fn chrome_trace<W: Write>(trace: &TraceFile, out: &mut W) -> io::Result<()> {
    let events = &trace.events;
    // The facts (latest names, lock waits and holds, task states) come from the replay model.
    let mut replay = Replay::new();
    replay.extend(events);
    replay.prepare();
    // Processes and threads first: every later event refers to them.
    let mut process_names: BTreeMap<u64, String> = BTreeMap::new();
    let mut threads: HashMap<u32, ThreadInfo> = HashMap::new();
    let mut used_tids: HashSet<u64> = HashSet::new();
    let mut b = Builder::new();
    for e in events {
        match e {
            Event::ProcessStart { pid, name, .. } => {
                process_names.insert(u64::from(*pid), name.clone());
            }
            Event::ThreadStart {
                tid, pid, os_tid, ..
            } => {
                // OS thread ids can be reused within a run; a reused one gets a lane id.
                let os = u64::from(*os_tid);
                let chrome_tid = if used_tids.insert(os) {
                    os
                } else {
                    b.fresh_tid()
                };
                // A track has one name: the latest the thread gave itself.
                let name = replay
                    .thread(*tid)
                    .map_or_else(String::new, |t| t.name.to_string());
                threads.entry(*tid).or_insert(ThreadInfo {
                    pid: u64::from(*pid),
                    tid: chrome_tid,
                    name,
                });
            }
            _ => {}
        }
    }
    for info in threads.values() {
        process_names
            .entry(info.pid)
            .or_insert_with(|| "coreplay agent".to_string());
    }
    let unknown = |tid: u32| ThreadInfo {
        pid: 0,
        tid: LANE_TID_BASE - 1 - u64::from(tid),
        name: format!("thread {tid}"),
    };
    let thread = |tid: u32| threads.get(&tid).cloned().unwrap_or_else(|| unknown(tid));
    let thread_track = |b: &mut Builder, tid: u32| {
        let info = thread(tid);
        b.track(TrackKey::Thread(tid), || {
            (info.pid, info.name, Some(info.tid), u64::from(tid) * 8)
        })
    };
    let sub_track = |b: &mut Builder, tid: u32, sub: Sub| {
        let info = thread(tid);
        b.track(TrackKey::Sub(tid, sub), || {
            (
                info.pid,
                format!("{} · {}", info.name, sub.label()),
                None,
                u64::from(tid) * 8 + 1 + sub as u64,
            )
        })
    };
    let cpu_track = |b: &mut Builder, cpu: u32| {
        b.track(TrackKey::Cpu(cpu), || {
            (
                CPUS_PID,
                format!("CPU {cpu}"),
                Some(CPU_TID_BASE + u64::from(cpu)),
                u64::from(cpu),
            )
        })
    };
    let task_track = |b: &mut Builder, task: u32| {
        let label = replay
            .task(task)
            .map_or_else(|| "task".into(), |t| t.label.clone());
        b.track(TrackKey::Task(task), || {
            (
                TASKS_PID,
                format!("{label} (task {task})"),
                Some(TASK_TID_BASE + u64::from(task)),
                u64::from(task),
            )
        })
    };
    let task_name = |task: u32| {
        replay
            .task(task)
            .map_or_else(|| format!("task {task}"), |t| t.label.clone())
    };

    let mut has_tasks = false;
    for e in events {
        match e {
            Event::ProcessStart {
                pid,
                at,
                name,
                role,
            } => {
                b.push_other(&process_instant(
                    *pid,
                    *at,
                    format!("{name} spawned"),
                    json!({"role": role_label(*role)}),
                ));
            }
            Event::ProcessReady {
                pid,
                at,
                startup_ns,
            } => {
                b.push_other(&process_instant(
                    *pid,
                    *at,
                    "ready".into(),
                    json!({"startup_ms": *startup_ns as f64 / 1e6}),
                ));
            }
            Event::ProcessExit {
                pid,
                at,
                peak_rss_bytes,
                end,
            } => {
                let how = match end {
                    ProcessEnd::Exited { code } => format!("exited with {code}"),
                    ProcessEnd::Signaled { signal } => format!("killed by signal {signal}"),
                    ProcessEnd::Unknown => "exited".to_string(),
                };
                b.push_other(&process_instant(
                    *pid,
                    *at,
                    how,
                    json!({"peak_rss_bytes": peak_rss_bytes}),
                ));
            }
            Event::ThreadStart {
                tid,
                role,
                at,
                os_tid,
                ..
            } => {
                let t = thread_track(&mut b, *tid);
                b.instant(
                    t,
                    *at,
                    "thread start".into(),
                    "thread",
                    json!({"role": role_label(*role), "os_tid": os_tid}),
                );
            }
            Event::ThreadRename { tid, at, name } => {
                let t = thread_track(&mut b, *tid);
                b.instant(t, *at, "renamed".into(), "thread", json!({"name": name}));
            }
            Event::ThreadEnd {
                tid,
                at,
                cpu_ns,
                kernel_voluntary,
                kernel_involuntary,
            } => {
                let t = thread_track(&mut b, *tid);
                b.instant(
                    t,
                    *at,
                    "thread end".into(),
                    "thread",
                    json!({
                        "cpu_ms": *cpu_ns as f64 / 1e6,
                        "kernel_voluntary_switches": kernel_voluntary,
                        "kernel_involuntary_switches": kernel_involuntary,
                    }),
                );
            }
            Event::OnCpu {
                tid,
                cpu,
                start,
                end,
            } => {
                let info = thread(*tid);
                let t = thread_track(&mut b, *tid);
                b.span(
                    t,
                    *start,
                    *end,
                    format!("on CPU {cpu}"),
                    "on_cpu",
                    json!({"cpu": cpu}),
                );
                let c = cpu_track(&mut b, *cpu);
                b.span(
                    c,
                    *start,
                    *end,
                    info.name,
                    "on_cpu",
                    json!({"thread": tid, "os_tid": info.tid, "pid": info.pid}),
                );
            }
            Event::OffCpu {
                tid,
                start,
                end,
                reason,
            } => {
                let t = thread_track(&mut b, *tid);
                b.span(
                    t,
                    *start,
                    *end,
                    off_label(*reason).into(),
                    "off_cpu",
                    json!({"reason": reason}),
                );
            }
            Event::Switch {
                tid,
                at,
                voluntary,
                involuntary,
            } => {
                let t = thread_track(&mut b, *tid);
                let name = if *involuntary > 0 {
                    "switch (preempted)"
                } else {
                    "switch (blocked)"
                };
                b.instant(
                    t,
                    *at,
                    name.into(),
                    "switch",
                    json!({"voluntary": voluntary, "involuntary": involuntary}),
                );
            }
            Event::Migrate { tid, at, from, to } => {
                let t = thread_track(&mut b, *tid);
                b.instant(
                    t,
                    *at,
                    format!("migrate CPU {from} → {to}"),
                    "migration",
                    json!({"from": from, "to": to}),
                );
            }
            Event::Lock { tid, at, op } => {
                let t = thread_track(&mut b, *tid);
                let name = match op {
                    LockOp::Request => "lock request",
                    LockOp::DropRequest => "lock drop request",
                    LockOp::Acquire => "lock acquire",
                    LockOp::Release => "lock release",
                };
                b.instant(t, *at, name.into(), "lock", json!({"op": op}));
            }
            Event::Compute { tid, start, end } => {
                let t = sub_track(&mut b, *tid, Sub::Compute);
                b.span(t, *start, *end, "compute".into(), "compute", json!({}));
            }
            Event::TaskSpawn {
                task,
                at,
                label,
                waits_on,
            } => {
                has_tasks = true;
                let t = task_track(&mut b, *task);
                b.instant(
                    t,
                    *at,
                    "spawn".into(),
                    "task",
                    json!({"label": label, "waits_on": waits_on}),
                );
            }
            Event::Poll {
                task,
                tid,
                cpu,
                start,
                end,
                ready,
            } => {
                has_tasks = true;
                let name = task_name(*task);
                let args = json!({"task": task, "cpu": cpu, "ready": ready});
                let l = sub_track(&mut b, *tid, Sub::Loop);
                b.span(
                    l,
                    *start,
                    *end,
                    format!("poll {name}"),
                    "poll",
                    args.clone(),
                );
                let t = task_track(&mut b, *task);
                b.span(t, *start, *end, "poll".into(), "poll", args);
            }
            Event::Wake { task, at, by } => {
                has_tasks = true;
                let t = task_track(&mut b, *task);
                b.instant(t, *at, wake_label(*by), "wake", json!({"by": by}));
            }
            Event::TaskCancelled { task, at } => {
                has_tasks = true;
                let t = task_track(&mut b, *task);
                b.instant(t, *at, "cancelled".into(), "task", json!({}));
            }
            Event::LoopWait {
                tid,
                start,
                end,
                woken,
            } => {
                let l = sub_track(&mut b, *tid, Sub::Loop);
                b.span(
                    l,
                    *start,
                    *end,
                    "selector wait".into(),
                    "loop",
                    json!({"woken": woken}),
                );
            }
            Event::QueueDepth {
                at,
                ready,
                io,
                timers,
            } => {
                has_tasks = true;
                b.push_other(&json!({
                    "name": "queue depth", "cat": "loop", "ph": "C", "ts": us(*at),
                    "pid": TASKS_PID, "tid": TASK_TID_BASE,
                    "args": {"ready": ready, "parked on I/O": io, "parked on timers": timers},
                }));
            }
            Event::Request {
                tid,
                id,
                start,
                end,
            } => {
                let t = sub_track(&mut b, *tid, Sub::Requests);
                b.span(
                    t,
                    *start,
                    *end,
                    format!("request {id}"),
                    "request",
                    json!({"id": id, "latency_ms": end.saturating_sub(*start) as f64 / 1e6}),
                );
            }
        }
    }
    // Each thread's waits for and holds of its process's lock.
    for th in replay.threads() {
        for span in replay.lock_spans(th.tid) {
            let l = sub_track(&mut b, th.tid, Sub::Lock);
            let name = match span.kind {
                LockSpanKind::Waiting => "waiting for the lock",
                LockSpanKind::Holding => "holds the lock",
            };
            b.span(l, span.start, span.end, name.into(), "lock", json!({}));
        }
    }
    // Each task's time queued (ready, waiting for a poll) and parked.
    for task in replay.tasks() {
        for span in task.spans() {
            let (name, cat) = match span.state {
                TaskState::Ready => ("queued".to_string(), "task_queued"),
                TaskState::ParkedIo | TaskState::ParkedTimer | TaskState::Awaiting => {
                    (parked_label(span.state, span.woken_by), "task_parked")
                }
                TaskState::Running | TaskState::Done | TaskState::Cancelled => continue,
            };
            let t = task_track(&mut b, task.task);
            b.span(t, span.start, span.end, name, cat, json!({}));
        }
    }

    // Metadata: names and order of processes and tracks.
    let mut meta: Vec<Value> = Vec::new();
    let mut name_process = |pid: u64, name: &str, sort: i64| {
        meta.push(json!({"name": "process_name", "ph": "M", "ts": 0, "pid": pid, "tid": pid, "args": {"name": name}}));
        meta.push(json!({"name": "process_sort_index", "ph": "M", "ts": 0, "pid": pid, "tid": pid, "args": {"sort_index": sort}}));
    };
    if b.by_key.keys().any(|k| matches!(k, TrackKey::Cpu(_))) {
        name_process(CPUS_PID, "CPUs", -2);
    }
    if has_tasks {
        name_process(TASKS_PID, "tasks (event loop)", -1);
    }
    for (i, (pid, name)) in process_names.iter().enumerate() {
        name_process(*pid, &format!("{name} (pid {pid})"), i as i64);
    }

    let h = &trace.header;
    let s = &trace.summary;
    let metadata = json!({
        "source": format!("coreplay {} export of a trace-format {} file", env!("CARGO_PKG_VERSION"), h.format_version),
        "scenario": h.scenario,
        "params": h.params,
        "fidelity": h.fidelity.to_string(),
        "recorded_at": h.recorded_at,
        "recorded_by": format!("coreplay {}", h.agent_version),
        "machine": h.machine_line(),
        "outcome": s.outcome.to_string(),
        "wall_ms": s.wall_ns as f64 / 1e6,
        "events": events.len(),
        "clock": "CLOCK_MONOTONIC, microseconds from the run's start",
    });

    b.write(out, meta, &metadata)
}

fn process_instant(pid: u32, at: u64, name: String, args: Value) -> Value {
    json!({
        "name": name, "cat": "process", "ph": "i", "s": "p", "ts": us(at),
        "pid": pid, "tid": pid, "args": args,
    })
}

fn wake_label(by: WakeBy) -> String {
    match by {
        WakeBy::Io => "woken by I/O".into(),
        WakeBy::Timer => "woken by a timer".into(),
        WakeBy::Task { task } => format!("woken by task {task}"),
        WakeBy::Other => "woken by another thread".into(),
    }
}

/// What a parked span is called: by what woke the task, else by what it waits for.
fn parked_label(state: TaskState, woken_by: Option<WakeBy>) -> String {
    match (woken_by, state) {
        (Some(WakeBy::Io), _) | (None, TaskState::ParkedIo) => "parked on I/O".into(),
        (Some(WakeBy::Timer), _) | (None, TaskState::ParkedTimer) => "parked on a timer".into(),
        (Some(WakeBy::Task { task }), _) => format!("parked until task {task} woke it"),
        (None, TaskState::Awaiting) => "awaiting another task or a future".into(),
        (Some(WakeBy::Other), _) | (None, _) => "parked".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task's queued and parked spans on its track, named by what woke it.
    #[test]
    fn a_task_track_shows_its_queued_and_parked_time() {
        use coreplay_shared::{event::WaitKind, trace_file};
        let text = include_str!("../../../shared/tests/fixtures/trace-v2.jsonl");
        let mut t = trace_file::read(text).expect("fixture reads");
        let tid = t.events.iter().find_map(Event::tid).expect("a thread");
        let poll = |start, end, ready| Event::Poll {
            task: 7,
            tid,
            cpu: 0,
            start,
            end,
            ready,
        };
        t.events.extend([
            Event::TaskSpawn {
                task: 7,
                at: 0,
                label: "fetch".into(),
                waits_on: WaitKind::Io,
            },
            poll(10_000, 20_000, false),
            Event::Wake {
                task: 7,
                at: 50_000,
                by: WakeBy::Task { task: 3 },
            },
            poll(60_000, 70_000, false),
            // Woken during its own poll: queued from the poll's end.
            Event::Wake {
                task: 7,
                at: 65_000,
                by: WakeBy::Io,
            },
            poll(80_000, 90_000, true),
        ]);
        let mut out = Vec::new();
        chrome_trace(&t, &mut out).expect("exports");
        let doc: Value = serde_json::from_slice(&out).expect("JSON");
        let spans: Vec<(f64, f64, &str)> = doc["traceEvents"]
            .as_array()
            .expect("array")
            .iter()
            .filter(|e| e["tid"] == TASK_TID_BASE + 7 && e["ph"] == "X" && e["cat"] != "poll")
            .map(|e| {
                (
                    e["ts"].as_f64().expect("ts"),
                    e["dur"].as_f64().expect("dur"),
                    e["name"].as_str().expect("name"),
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![
                (0.0, 10.0, "queued"),
                (20.0, 30.0, "parked until task 3 woke it"),
                (50.0, 10.0, "queued"),
                (70.0, 10.0, "queued"),
            ]
        );
    }

    #[test]
    fn overlapping_spans_get_lanes_and_nested_ones_do_not_count_as_overlap() {
        use coreplay_shared::trace_file;
        let text = include_str!("../../../shared/tests/fixtures/trace-v2.jsonl");
        let mut t = trace_file::read(text).expect("fixture reads");
        // Three requests from one thread, two of them concurrent.
        let tid = t.events.iter().find_map(Event::tid).expect("a thread");
        t.events.retain(|e| !matches!(e, Event::Request { .. }));
        for (id, start, end) in [(0, 100, 200), (1, 150, 250), (2, 300, 400)] {
            t.events.push(Event::Request {
                tid,
                id,
                start,
                end,
            });
        }
        let mut out = Vec::new();
        chrome_trace(&t, &mut out).expect("exports");
        let doc: Value = serde_json::from_slice(&out).expect("JSON");
        let list = doc["traceEvents"].as_array().expect("array");
        let lane = |id: u32| {
            list.iter()
                .find(|e| e["cat"] == "request" && e["args"]["id"] == id)
                .map(|e| e["tid"].clone())
                .expect("exported")
        };
        assert_ne!(lane(0), lane(1));
        assert_eq!(lane(0), lane(2));
        let names: Vec<&str> = list
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .filter_map(|e| e["args"]["name"].as_str())
            .filter(|n| n.contains("requests"))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("requests (2)")));
    }

    #[test]
    fn a_renamed_thread_is_exported_under_its_latest_name() {
        use coreplay_shared::trace_file;
        let text = include_str!("../../../shared/tests/fixtures/trace-v2.jsonl");
        let mut t = trace_file::read(text).expect("fixture reads");
        let (tid, old, start) = t
            .events
            .iter()
            .find_map(|e| match e {
                Event::ThreadStart { tid, name, at, .. } => Some((*tid, name.clone(), *at)),
                _ => None,
            })
            .expect("a thread");
        // Two renames, the later one first: the latest name wins.
        for (dt, name) in [(2_000, "renamed-worker"), (1_000, "first-rename")] {
            t.events.push(Event::ThreadRename {
                tid,
                at: start + dt,
                name: name.into(),
            });
        }
        let mut out = Vec::new();
        chrome_trace(&t, &mut out).expect("exports");
        let doc: Value = serde_json::from_slice(&out).expect("JSON");
        let list = doc["traceEvents"].as_array().expect("array");
        let track_names: Vec<&str> = list
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .filter_map(|e| e["args"]["name"].as_str())
            .collect();
        assert!(
            track_names.contains(&"renamed-worker"),
            "the track is named by the latest name: {track_names:?}"
        );
        assert!(
            !track_names
                .iter()
                .any(|n| *n == old || *n == "first-rename"),
            "and by no earlier one: {track_names:?}"
        );
        assert!(
            list.iter()
                .any(|e| e["name"] == "renamed" && e["args"]["name"] == "renamed-worker"),
            "the rename is an instant on the track"
        );
    }
}
