//! What a lesson's run showed, in sentences chosen from its measured figures: which answer
//! it bore out, the figures behind it, and whether other programs distorted it. Pure, so
//! every kind of machine (1, 2 with and without SMT, 16, 64 hardware threads; idle or busy)
//! is tested natively.

use coreplay_shared::Fixed;
use coreplay_shared::{event::Fidelity, summary::Summary};

use super::lessons::{Lesson, LessonId, Machine};

/// What was measured beyond the summary, from the run's replay.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seen {
    /// The most hardware threads that ran a thread of the run at the same instant.
    pub peak: Option<u32>,
    /// Whether two hardware threads of one core ran at that instant.
    pub siblings_at_peak: bool,
    /// How long exactly `k` hardware threads ran the run's threads at once, `[k]`, ns.
    pub time_by_running: Vec<u64>,
    /// Other programs' share of the machine's CPU time during the run (0–1), where measured.
    pub others: Option<f64>,
}

/// Other programs above this share of the machine distort a lesson's figures.
pub const DISTURBED_SHARE: f64 = 0.10;

/// A lesson's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The answer the run bore out (an index into the lesson's choices), where it had the
    /// figure to judge by.
    pub answer: Option<usize>,
    /// The measured figures, in sentences.
    pub sentences: Vec<String>,
    /// Other programs took enough of the machine to distort the figures.
    pub disturbed: bool,
}

fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 100.0 {
        format!("{} ms", Fixed(ms, 0))
    } else if ms >= 10.0 {
        format!("{} ms", Fixed(ms, 1))
    } else {
        format!("{} ms", Fixed(ms, 2))
    }
}

fn times(x: f64) -> String {
    format!("{}×", Fixed(x, 2))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The choice whose value is nearest `v` (on a log scale for ratios, linear for fractions).
fn nearest(lesson: &Lesson, v: f64, log: bool) -> Option<usize> {
    let d = |x: f64| {
        if log {
            (x.max(1e-3).ln() - v.max(1e-3).ln()).abs()
        } else {
            (x - v).abs()
        }
    };
    lesson
        .choices
        .iter()
        .enumerate()
        .min_by(|a, b| d(a.1.value).total_cmp(&d(b.1.value)))
        .map(|(i, _)| i)
}

/// Explains `summary` (a run of `lesson` on `machine`) with what else was `seen`.
pub fn explain(lesson: &Lesson, machine: Machine, summary: &Summary, seen: Seen) -> Explanation {
    let n = machine.pus;
    let mut out = Vec::new();
    let mut answer = None;
    let speedup = summary.speedup;
    let baseline = summary.baseline.as_ref();
    match lesson.id {
        LessonId::Machine | LessonId::Watch => {
            // What held most of the time counts, not one instant (a sampled run blurs the
            // moments where one thread hands over to another).
            let busy: u64 = seen.time_by_running.iter().skip(1).sum();
            let typical = seen
                .time_by_running
                .iter()
                .enumerate()
                .skip(1)
                .max_by_key(|&(_, t)| *t)
                .filter(|_| busy > 0);
            if let (Some((k, t)), Some(peak)) = (typical, seen.peak) {
                let k = k as u64;
                answer = nearest(lesson, k as f64, true);
                out.push(format!(
                    "For {} % of the time the run was on the CPUs, {} at the same instant, \
                     on {} of this machine's {}; at most {peak} at once.",
                    Fixed(*t as f64 * 100.0 / busy as f64, 0),
                    if k == 1 {
                        "one of its threads ran".to_string()
                    } else {
                        format!("{k} of its threads ran")
                    },
                    k,
                    plural(u64::from(n), "hardware thread", "hardware threads")
                ));
                let together: u64 = seen.time_by_running.iter().skip(2).sum();
                if lesson.id == LessonId::Watch && k == 1 && together > 0 {
                    let why = if matches!(summary.fidelity, Fidelity::Sampled { .. }) {
                        "around hand-overs, where samples blur which thread stopped first"
                    } else {
                        "around hand-overs (a thread that lets go of the lock runs a moment more \
                         before it sleeps, while the next starts) and while a thread that needs \
                         no lock ran"
                    };
                    out.push(format!(
                        "Two or more ran together for {} % of it: {why}.",
                        Fixed(together as f64 * 100.0 / busy as f64, 1)
                    ));
                }
                if n == 1 {
                    out.push(
                        "With one hardware thread, one thread runs at any instant; the others \
                         take turns."
                            .into(),
                    );
                } else if seen.siblings_at_peak {
                    out.push(
                        "Two of them were hardware threads of the same core: with SMT both \
                         really run at once."
                            .into(),
                    );
                }
                let threads = summary.counted_threads() as u64;
                if lesson.id == LessonId::Watch {
                    out.push(format!(
                        "The program had {}; the kernel preempted them {} times.",
                        plural(threads, "thread", "threads"),
                        summary.involuntary_switches
                    ));
                } else {
                    out.push(format!(
                        "The run started {}; the kernel placed them on hardware threads and \
                         moved one to another {} times.",
                        plural(threads, "thread", "threads"),
                        summary.migrations
                    ));
                }
            }
        }
        LessonId::Parallel | LessonId::Gil | LessonId::Processes => {
            if let (Some(s), Some(b)) = (speedup, baseline) {
                answer = nearest(lesson, s, true);
                let (many, one) = match lesson.id {
                    LessonId::Parallel => (
                        plural(
                            u64::from(summary.params.threads.unwrap_or(n)),
                            "thread",
                            "threads",
                        ),
                        "one thread",
                    ),
                    LessonId::Gil => (
                        format!(
                            "{} sharing one lock",
                            plural(
                                u64::from(summary.params.threads.unwrap_or(4)),
                                "thread",
                                "threads"
                            )
                        ),
                        "one thread",
                    ),
                    _ => (
                        plural(
                            u64::from(summary.params.processes.unwrap_or(n)),
                            "worker process",
                            "worker processes",
                        ),
                        "one worker process",
                    ),
                };
                out.push(format!(
                    "{} did the job in {}; {one} took {}: {} as fast.",
                    capitalise(&many),
                    ms(summary.wall_ns),
                    ms(b.wall_ns),
                    times(s)
                ));
                let workers = match lesson.id {
                    LessonId::Processes => summary.params.processes.unwrap_or(n),
                    _ => summary.params.threads.unwrap_or(n),
                };
                let possible = f64::from(workers.min(n));
                match lesson.id {
                    LessonId::Gil => {
                        if let (Some(h), Some(w)) = (summary.lock_handovers, summary.lock_wait_ns) {
                            out.push(format!(
                                "The lock changed hands {h} times; the threads waited for it {} \
                                 in all.",
                                ms(w)
                            ));
                        }
                        if n > 1 {
                            out.push(format!(
                                "The kernel would have run up to {} of them at once; the lock \
                                 let one compute at a time.",
                                workers.min(n)
                            ));
                        } else {
                            out.push(
                                "On one hardware thread they could not compute at once anyway; \
                                 on a bigger machine the lock still keeps them apart."
                                    .into(),
                            );
                        }
                    }
                    _ if n == 1 => out.push(
                        "With one hardware thread there is nothing to run in parallel: the \
                         workers take turns."
                            .into(),
                    ),
                    _ if s >= 0.85 * possible => out.push(format!(
                        "That is close to the {}× that {} can give.",
                        Fixed(possible, 0),
                        plural(
                            u64::from(workers.min(n)),
                            "hardware thread",
                            "hardware threads"
                        )
                    )),
                    _ => {
                        let why = if seen.others.is_some_and(|o| o >= DISTURBED_SHARE) {
                            "other programs used part of the CPUs during the run (below)"
                                .to_string()
                        } else if machine.smt() && workers > machine.cores {
                            format!(
                                "with SMT, two hardware threads share one core's units, so {} \
                                 do less than {} separate cores would",
                                plural(u64::from(machine.cores), "core", "cores"),
                                n
                            )
                        } else if lesson.id == LessonId::Processes {
                            "each worker process first has to start (its start-up is inside the \
                             measured time), and workers finish at different times"
                                .into()
                        } else {
                            format!(
                                "the workers waited {} in all, runnable but without a CPU, and \
                                 finished at different times",
                                ms(summary.runnable_wait_ns)
                            )
                        };
                        out.push(format!("Less than {}×: {why}.", Fixed(possible, 0)));
                    }
                }
                if lesson.id == LessonId::Processes
                    && let Some(start) = median(
                        summary
                            .processes
                            .iter()
                            .filter_map(|p| p.startup_ns)
                            .collect(),
                    )
                {
                    let mib = median(
                        summary
                            .processes
                            .iter()
                            .filter_map(|p| p.peak_rss_bytes)
                            .collect(),
                    );
                    out.push(format!(
                        "Starting a worker process took {} (median){}.",
                        ms(start),
                        mib.map(|b| format!(
                            ", and each grew to about {} MiB of memory of its own",
                            Fixed(b as f64 / 1048576.0, 1)
                        ))
                        .unwrap_or_default()
                    ));
                }
            }
        }
        LessonId::Oversubscribed => {
            if let Some(b) = baseline.filter(|b| b.wall_ns > 0) {
                let ratio = summary.wall_ns as f64 / b.wall_ns as f64;
                answer = nearest(lesson, ratio, true);
                let threads = summary.params.threads.unwrap_or(0);
                out.push(format!(
                    "{} took {}; one per hardware thread took {}: {} as long.",
                    capitalise(&plural(u64::from(threads), "thread", "threads")),
                    ms(summary.wall_ns),
                    ms(b.wall_ns),
                    times(ratio)
                ));
                let counted = summary.counted_threads().max(1) as u64;
                out.push(format!(
                    "The kernel preempted them {} times, and they spent {} in all runnable but \
                     waiting for a CPU ({} each on average): the cost is mostly waiting; a \
                     switch itself takes microseconds.",
                    summary.involuntary_switches,
                    ms(summary.runnable_wait_ns),
                    ms(summary.runnable_wait_ns / counted)
                ));
            }
        }
        LessonId::Io => {
            let k = u64::from(summary.params.requests.unwrap_or(0));
            let l = u64::from(summary.params.latency_ms.unwrap_or(0)) * 1_000_000;
            let event_loop = summary
                .variants
                .iter()
                .find(|v| v.label.contains("event loop"));
            let pool = summary.variants.iter().find(|v| v.label.contains("thread"));
            if let Some(v) = event_loop.filter(|_| k * l > 0) {
                answer = nearest(lesson, v.wall_ns as f64 / (k * l) as f64, true);
                out.push(format!(
                    "One event loop thread answered {} in {}; one after another, each waiting \
                     for its reply, they would take at least {} ({k} × {}).",
                    plural(k, "request", "requests"),
                    ms(v.wall_ns),
                    ms(k * l),
                    ms(l)
                ));
                if let Some(p) = pool {
                    out.push(format!(
                        "A pool of {} took {}, with {} switches.",
                        plural(u64::from(p.threads), "thread", "threads"),
                        ms(p.wall_ns),
                        p.voluntary_switches + p.involuntary_switches
                    ));
                }
                out.push(format!(
                    "The CPUs worked {} in all: the rest of the time everything waited.",
                    ms(summary.cpu_ns)
                ));
            }
        }
        LessonId::EventLoop => {
            if let Some(t) = &summary.tasks {
                answer = nearest(lesson, 1.0, true);
                out.push(format!(
                    "One thread polled {} {} times, one poll at a time; at most {} were ready \
                     at once, waiting their turn.",
                    plural(t.tasks, "task", "tasks"),
                    t.polls,
                    t.max_ready
                ));
                let total = (t.busy_ns + t.scheduled_ns + t.idle_ns).max(1);
                out.push(format!(
                    "Added up over tasks, they were parked {} % of their time, ready {} % \
                     and running {} %.",
                    Fixed(t.idle_ns as f64 * 100.0 / total as f64, 0),
                    Fixed(t.scheduled_ns as f64 * 100.0 / total as f64, 1),
                    Fixed(t.busy_ns as f64 * 100.0 / total as f64, 1)
                ));
                if let Some(lat) = summary.params.latency_ms.filter(|&l| l > 0) {
                    out.push(format!(
                        "All of them took {}: {} times one request's {lat} ms latency.",
                        ms(summary.wall_ns),
                        Fixed(summary.wall_ns as f64 / (f64::from(lat) * 1e6), 1)
                    ));
                }
            }
        }
        LessonId::Blocking => {
            let block = u64::from(summary.params.block_ms.unwrap_or(0)) * 1_000_000;
            let without = summary
                .variants
                .iter()
                .find(|v| v.label.starts_with("without"))
                .and_then(|v| v.requests.as_ref());
            let with = summary
                .variants
                .iter()
                .find(|v| v.label.starts_with("with "))
                .and_then(|v| v.requests.as_ref());
            if let (Some(a), Some(b)) = (without, with)
                && block > 0
            {
                let later = b.p50_ns.saturating_sub(a.p50_ns);
                answer = nearest(lesson, later as f64 / block as f64, false);
                out.push(format!(
                    "Without the blocking task, half the requests were answered within {}; with \
                     it, within {}: {} later, against the {} it computed without awaiting.",
                    ms(a.p50_ns),
                    ms(b.p50_ns),
                    ms(later),
                    ms(block)
                ));
                if let Some(t) = &summary.tasks {
                    out.push(format!(
                        "Its longest poll held the loop's only thread for {}.",
                        ms(t.longest_poll_ns)
                    ));
                }
            }
        }
    }
    let disturbed = seen.others.is_some_and(|o| o >= DISTURBED_SHARE);
    if let Some(o) = seen.others {
        if disturbed {
            out.push(format!(
                "Other programs used {} % of this machine's CPU time during the run, so these \
                 figures are worse than it gives when quiet: run it again when it is quieter.",
                Fixed(o * 100.0, 0)
            ));
        } else {
            out.push(format!(
                "Other programs used {} % of this machine's CPU time meanwhile: under {} %, \
                 not enough to change the outcome.",
                Fixed(o * 100.0, 0),
                Fixed(DISTURBED_SHARE * 100.0, 0)
            ));
        }
    }
    if out.is_empty() {
        out.push(format!(
            "This run has no figure to judge the question by (it ended: {}).",
            summary.outcome
        ));
    }
    Explanation {
        answer,
        sentences: out,
        disturbed,
    }
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    coreplay_shared::sort::natural(&mut v);
    v.get(v.len() / 2).copied()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| String::from(f.to_ascii_uppercase()) + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use coreplay_shared::{
        event::Fidelity,
        scenario::{Params, ScenarioId},
        summary::{Baseline, Outcome, TaskTotals},
    };

    use super::*;
    use crate::learn::lessons::lesson;

    fn m(pus: u32, cores: u32) -> Machine {
        Machine {
            pus,
            cores,
            packages: 1,
        }
    }

    fn run(scenario: ScenarioId, params: Params, wall_ms: u64, base_ms: u64) -> Summary {
        let mut s = Summary::empty(scenario, params, Outcome::Completed, Fidelity::Exact);
        s.wall_ns = wall_ms * 1_000_000;
        s.baseline = Some(Baseline {
            label: "T = 1".into(),
            wall_ns: base_ms * 1_000_000,
            cpu_ns: None,
            involuntary_switches: None,
        });
        s.speedup = Some(base_ms as f64 / wall_ms as f64);
        s
    }

    fn threads(t: u32) -> Params {
        Params {
            threads: Some(t),
            ..Params::default()
        }
    }

    fn chosen(l: &Lesson, e: &Explanation) -> String {
        e.answer
            .map(|i| l.choices[i].text.clone())
            .unwrap_or_default()
    }

    /// Each machine gets a true statement: the answer follows the figure, and the reason
    /// given for falling short fits the machine and its load.
    #[test]
    fn parallel_outcomes_fit_each_machine() {
        // 1 hardware thread: 1.0×, nothing to run in parallel.
        let one = m(1, 1);
        let l = lesson(LessonId::Parallel, one);
        let e = explain(
            &l,
            one,
            &run(ScenarioId::ParallelCompute, threads(1), 100, 100),
            Seen::default(),
        );
        assert!(chosen(&l, &e).starts_with("About as fast"), "{e:?}");
        assert!(
            e.sentences
                .iter()
                .any(|s| s.contains("nothing to run in parallel"))
        );
        // 2 cores, quiet: 1.95×.
        let two = m(2, 2);
        let l = lesson(LessonId::Parallel, two);
        let e = explain(
            &l,
            two,
            &run(ScenarioId::ParallelCompute, threads(2), 100, 195),
            Seen::default(),
        );
        assert!(chosen(&l, &e).contains("one per hardware thread"), "{e:?}");
        assert!(e.sentences[0].contains("1.95×"), "{e:?}");
        assert!(e.sentences.iter().any(|s| s.contains("close to the 2×")));
        // 2 hardware threads on one core (SMT): 1.3×, and the reason is SMT.
        let smt = m(2, 1);
        let l = lesson(LessonId::Parallel, smt);
        let e = explain(
            &l,
            smt,
            &run(ScenarioId::ParallelCompute, threads(2), 100, 130),
            Seen::default(),
        );
        assert!(e.sentences.iter().any(|s| s.contains("with SMT")), "{e:?}");
        // 2 cores beside a busy program: 1.15×, and the reason is the other program.
        let busy = Seen {
            others: Some(0.45),
            ..Seen::default()
        };
        let e = explain(
            &lesson(LessonId::Parallel, two),
            two,
            &run(ScenarioId::ParallelCompute, threads(2), 100, 115),
            busy,
        );
        assert!(e.disturbed);
        assert!(
            e.sentences
                .iter()
                .any(|s| s.contains("other programs used part")),
            "{e:?}"
        );
        assert!(
            e.sentences
                .iter()
                .any(|s| s.contains("45 %") && s.contains("run it again"))
        );
        // 16 and 64 hardware threads.
        for (pus, cores, base) in [(16, 16, 1500), (64, 32, 4000)] {
            let big = m(pus, cores);
            let l = lesson(LessonId::Parallel, big);
            let e = explain(
                &l,
                big,
                &run(ScenarioId::ParallelCompute, threads(pus), 100, base),
                Seen::default(),
            );
            assert!(
                chosen(&l, &e).contains("one per hardware thread")
                    || chosen(&l, &e).contains("half"),
                "{pus}: {e:?}"
            );
            assert!(!e.disturbed);
            assert!(e.sentences[0].contains(&format!("{pus} threads")), "{e:?}");
        }
    }

    #[test]
    fn gil_and_processes_outcomes() {
        for machine in [m(1, 1), m(2, 2), m(16, 16), m(64, 32)] {
            let l = lesson(LessonId::Gil, machine);
            let mut s = run(ScenarioId::Gil, threads(4), 100, 97);
            s.lock_handovers = Some(17);
            s.lock_wait_ns = Some(250_000_000);
            let e = explain(&l, machine, &s, Seen::default());
            assert!(chosen(&l, &e).starts_with("About 1×"), "{e:?}");
            assert!(
                e.sentences
                    .iter()
                    .any(|x| x.contains("changed hands 17 times"))
            );
            let l = lesson(LessonId::Processes, machine);
            let p = machine.pus;
            let mut s = run(
                ScenarioId::ProcessPool,
                Params {
                    processes: Some(p),
                    ..Params::default()
                },
                100,
                100 * u64::from(p) * 9 / 10,
            );
            s.processes = vec![coreplay_shared::summary::ProcessSummary {
                pid: 1,
                startup_ns: Some(4_300_000),
                peak_rss_bytes: Some(5 << 20),
            }];
            let e = explain(&l, machine, &s, Seen::default());
            if p == 1 {
                assert!(chosen(&l, &e).starts_with("About 1×"), "{e:?}");
            } else {
                assert!(chosen(&l, &e).starts_with("Close to"), "{p}: {e:?}");
            }
            assert!(e.sentences.iter().any(|x| x.contains("4.30 ms")), "{e:?}");
        }
    }

    #[test]
    fn machine_and_watch_outcomes_count_what_ran_at_once_most_of_the_time() {
        let smt = m(4, 2);
        let l = lesson(LessonId::Machine, smt);
        let seen = Seen {
            peak: Some(4),
            siblings_at_peak: true,
            // 4 at once for 90 ms, 3 for 10 ms.
            time_by_running: vec![0, 0, 0, 10_000_000, 90_000_000],
            others: Some(0.01),
        };
        let e = explain(
            &l,
            smt,
            &run(ScenarioId::ParallelCompute, threads(4), 100, 300),
            seen,
        );
        assert_eq!(chosen(&l, &e), "One per hardware thread (4)");
        assert!(
            e.sentences[0].contains("For 90 %")
                && e.sentences[0].contains("4 of this machine's 4 hardware threads"),
            "{e:?}"
        );
        assert!(e.sentences.iter().any(|s| s.contains("same core")));
        assert!(!e.disturbed);
        let one = m(1, 1);
        let l = lesson(LessonId::Machine, one);
        let e = explain(
            &l,
            one,
            &run(ScenarioId::ParallelCompute, threads(1), 100, 100),
            Seen {
                peak: Some(1),
                time_by_running: vec![5, 100],
                ..Seen::default()
            },
        );
        assert!(chosen(&l, &e).starts_with("One:"), "{e:?}");
        assert!(e.sentences.iter().any(|s| s.contains("take turns")));
        // A sampled Python program: one thread at a time for 97 % of the time, two for a
        // moment around hand-overs; the answer is one at a time, and the blur is named.
        let two = m(2, 2);
        let l = lesson(LessonId::Watch, two);
        let e = explain(
            &l,
            two,
            &Summary::empty(
                ScenarioId::Watch,
                Params::default(),
                Outcome::Completed,
                Fidelity::Sampled { hz: 1000 },
            ),
            Seen {
                peak: Some(2),
                time_by_running: vec![21, 1288, 11],
                ..Seen::default()
            },
        );
        assert!(chosen(&l, &e).starts_with("One at a time"), "{e:?}");
        assert!(
            e.sentences[0].contains("one of its threads ran")
                && e.sentences[0].contains("at most 2"),
            "{e:?}"
        );
        assert!(e.sentences[1].contains("0.8 %"), "{e:?}");
    }

    #[test]
    fn oversubscribed_event_loop_and_blocking_outcomes() {
        let two = m(2, 2);
        let l = lesson(LessonId::Oversubscribed, two);
        let mut s = run(ScenarioId::Oversubscribed, threads(32), 195, 189);
        s.involuntary_switches = 111;
        s.runnable_wait_ns = 2_148_000_000;
        s.threads = Vec::new();
        let e = explain(&l, two, &s, Seen::default());
        assert!(chosen(&l, &e).starts_with("About as long"), "{e:?}");
        assert!(e.sentences[1].contains("111 times"));

        let l = lesson(LessonId::EventLoop, two);
        let mut s = Summary::empty(
            ScenarioId::IoAsync,
            Params {
                requests: Some(200),
                latency_ms: Some(50),
                ..Params::default()
            },
            Outcome::Completed,
            Fidelity::Exact,
        );
        s.wall_ns = 60_000_000;
        s.tasks = Some(TaskTotals {
            tasks: 201,
            polls: 800,
            wakes: 600,
            busy_ns: 10_000_000,
            scheduled_ns: 20_000_000,
            idle_ns: 9_000_000_000,
            longest_poll_ns: 90_000,
            max_ready: 200,
        });
        let e = explain(&l, two, &s, Seen::default());
        assert!(chosen(&l, &e).starts_with("One at a time"));
        assert!(e.sentences.iter().any(|x| x.contains("1.2 times")), "{e:?}");

        let l = lesson(LessonId::Blocking, two);
        let mut s = Summary::empty(
            ScenarioId::EventLoopBlocked,
            Params {
                block_ms: Some(30),
                ..Params::default()
            },
            Outcome::Completed,
            Fidelity::Exact,
        );
        let lat = |p50_ms: u64| coreplay_shared::summary::LatencyStats {
            count: 20,
            p50_ns: p50_ms * 1_000_000,
            p99_ns: p50_ms * 1_000_000,
            max_ns: p50_ms * 1_000_000,
            mean_ns: p50_ms * 1_000_000,
        };
        let variant = |label: &str, p50| coreplay_shared::summary::Variant {
            label: label.into(),
            wall_ns: 0,
            cpu_ns: 0,
            threads: 1,
            voluntary_switches: 0,
            involuntary_switches: 0,
            rss_growth_bytes: None,
            requests: Some(lat(p50)),
        };
        s.variants = vec![
            variant("without the blocking task", 23),
            variant("with one task computing 30 ms without awaiting", 42),
        ];
        let e = explain(&l, two, &s, Seen::default());
        assert!(chosen(&l, &e).starts_with("They all wait"), "{e:?}");
        assert!(e.sentences[0].contains("19.0 ms later"), "{e:?}");
    }

    #[test]
    fn a_run_without_figures_says_so() {
        let two = m(2, 2);
        let l = lesson(LessonId::Parallel, two);
        let s = Summary::empty(
            ScenarioId::ParallelCompute,
            threads(2),
            Outcome::Stopped,
            Fidelity::Exact,
        );
        let e = explain(&l, two, &s, Seen::default());
        assert_eq!(e.answer, None);
        assert!(e.sentences[0].contains("stopped"), "{e:?}");
    }
}
