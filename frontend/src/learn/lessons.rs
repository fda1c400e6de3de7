//! The lessons: for each concept, what a newcomer may have been told, our explanation in
//! plain words (glossary terms in `{braces}`), the question asked before the run, what to run
//! on this machine, the recorded runs played without an agent, and what to look at.
//!
//! Which answer a run bears out, and the sentences that explain it, are chosen from the run's
//! measured figures in [`super::outcome`]; nothing here claims a result.

use coreplay_shared::Fixed;
use coreplay_shared::{
    Topology,
    scenario::{Params, ScenarioId},
};

use crate::options::ViewKind;

/// The machine a lesson is taught on, as its topology says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Hardware threads (PUs).
    pub pus: u32,
    /// Cores.
    pub cores: u32,
    /// Packages (sockets).
    pub packages: u32,
}

impl Machine {
    /// The machine `topology` describes.
    pub fn of(topology: &Topology) -> Machine {
        let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX).max(1);
        Machine {
            pus: n(topology.pu_count()),
            cores: n(topology.core_count()),
            packages: n(topology.package_count()),
        }
    }

    /// Whether a core runs two (or more) hardware threads.
    pub fn smt(&self) -> bool {
        self.pus > self.cores
    }
}

/// A lesson's name, as in `?lesson=NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LessonId {
    /// Packages, cores, hardware threads.
    Machine,
    /// Compute-bound work on T threads.
    Parallel,
    /// More threads than hardware threads.
    Oversubscribed,
    /// Threads that cannot compute together.
    Gil,
    /// Processes instead of threads.
    Processes,
    /// Waiting for I/O: one after another, or all at once.
    Io,
    /// Tasks, the ready queue and the selector.
    EventLoop,
    /// One task that never awaits.
    Blocking,
    /// Your own program.
    Watch,
}

impl LessonId {
    /// Every lesson, in order.
    pub const ALL: [LessonId; 9] = [
        LessonId::Machine,
        LessonId::Parallel,
        LessonId::Oversubscribed,
        LessonId::Gil,
        LessonId::Processes,
        LessonId::Io,
        LessonId::EventLoop,
        LessonId::Blocking,
        LessonId::Watch,
    ];

    /// Its name in the address.
    pub fn name(self) -> &'static str {
        match self {
            LessonId::Machine => "machine",
            LessonId::Parallel => "parallel",
            LessonId::Oversubscribed => "oversubscribed",
            LessonId::Gil => "gil",
            LessonId::Processes => "processes",
            LessonId::Io => "io",
            LessonId::EventLoop => "event-loop",
            LessonId::Blocking => "blocking",
            LessonId::Watch => "watch",
        }
    }

    /// The lesson called `name`.
    pub fn from_name(name: &str) -> Option<LessonId> {
        LessonId::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The lesson after this one.
    pub fn next(self) -> Option<LessonId> {
        let i = LessonId::ALL.iter().position(|&l| l == self)?;
        LessonId::ALL.get(i + 1).copied()
    }

    /// Its place in the path, from 1.
    pub fn number(self) -> usize {
        LessonId::ALL.iter().position(|&l| l == self).unwrap_or(0) + 1
    }
}

/// What a lesson runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A scenario with these parameters.
    Scenario(ScenarioId, Params),
    /// One of the agent's watch programs, by name (offered only if the agent has it).
    Watch(&'static str),
}

/// A kind of moment worth stopping at, for "next interesting moment".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// A thread taken off a core by the kernel while it still wanted to run.
    Preemption,
    /// A lock passing from one thread to another.
    Handover,
    /// The event loop waking from the selector with tasks to run.
    SelectorWake,
    /// A poll that took long (a task computing without awaiting).
    LongPoll,
    /// The instant the most hardware threads ran at once.
    Peak,
}

impl Moment {
    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            Moment::Preemption => "next preemption",
            Moment::Handover => "next hand-over of the lock",
            Moment::SelectorWake => "next wake from the selector",
            Moment::LongPoll => "next long poll",
            Moment::Peak => "busiest instant",
        }
    }
}

/// An answer to a lesson's question, with the measured value it stands for (a speedup, a
/// count, a ratio: see [`super::outcome`]), so that the run can say which answer it bore out.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The answer, in words.
    pub text: String,
    /// The measured value that would make it right.
    pub value: f64,
}

fn choice(text: impl Into<String>, value: f64) -> Choice {
    Choice {
        text: text.into(),
        value,
    }
}

/// One lesson.
#[derive(Debug, Clone)]
pub struct Lesson {
    /// Which.
    pub id: LessonId,
    /// Its title.
    pub title: &'static str,
    /// What a newcomer has often been told.
    pub heard: &'static str,
    /// Our explanation, paragraphs; glossary terms in `{braces}`.
    pub text: &'static [&'static str],
    /// The question asked before the run.
    pub question: String,
    /// Its answers (2 to 4), in the order shown.
    pub choices: Vec<Choice>,
    /// What to run on this machine.
    pub plan: Plan,
    /// Recorded runs played without an agent: on a 2- and a 16-hardware-thread machine.
    pub recorded: [&'static str; 2],
    /// The pictures this lesson needs.
    pub views: &'static [ViewKind],
    /// What to look at once it runs.
    pub look: &'static [&'static str],
    /// The moment its "next" button finds.
    pub moment: Moment,
}

fn params(f: impl FnOnce(&mut Params)) -> Params {
    let mut p = Params::default();
    f(&mut p);
    p
}

fn times(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 {
        format!("{}×", Fixed(x, 0))
    } else {
        format!("{}×", Fixed(x, 1))
    }
}

/// The lesson `id`, made for machine `m`.
pub fn lesson(id: LessonId, m: Machine) -> Lesson {
    let pus = m.pus;
    match id {
        LessonId::Machine => Lesson {
            id,
            title: "Your machine: packages, cores, hardware threads",
            heard: "A computer has processors, each with cores; a core runs one task at a time, \
                    and a program's threads are the CPU's threads.",
            text: &[
                "The picture of the machine (below, or in the run) is how {hwloc} sees it. A \
                 {package} is the chip in a socket. It holds {cores}, and each core has one or more \
                 {hardware threads}. With {SMT}, a core keeps two instruction streams going at \
                 the very same time, sharing its arithmetic units: both really run at once, each \
                 a little slower than alone.",
                "The operating system sees each hardware thread as a CPU. Programs do not run on \
                 them directly: a program has {threads} (its own, as many as it likes), and the \
                 kernel's {scheduler} puts them on hardware threads, moving them and taking \
                 turns when there are more threads than hardware threads.",
                "So the number that matters for doing things at the same instant is the number \
                 of hardware threads, not the number of threads a program starts. The run below \
                 starts one compute-bound worker per hardware thread; watch the cores.",
            ],
            question: format!(
                "This machine has {} hardware thread{}. A program starts {} threads that only \
                 compute. How many can run at the very same instant?",
                pus,
                if pus == 1 { "" } else { "s" },
                (2 * pus).max(4)
            ),
            choices: {
                let all = (2 * pus).max(4);
                let mut c = vec![choice(
                    "One: a computer runs one thing at a time and switches quickly",
                    1.0,
                )];
                if m.smt() {
                    c.push(choice(
                        format!(
                            "One per core ({} core{})",
                            m.cores,
                            if m.cores == 1 { "" } else { "s" }
                        ),
                        f64::from(m.cores),
                    ));
                }
                if pus > 1 {
                    c.push(choice(
                        format!("One per hardware thread ({pus})"),
                        f64::from(pus),
                    ));
                }
                c.push(choice(format!("All {all} of them"), f64::from(all)));
                c
            },
            plan: Plan::Scenario(
                ScenarioId::ParallelCompute,
                params(|p| p.threads = Some(pus)),
            ),
            recorded: [
                "parallel-compute.coreplay.gz",
                "xeon16-parallel-compute.coreplay.gz",
            ],
            views: &[ViewKind::Cores, ViewKind::Timeline],
            look: &[
                "Each box inside a core is one hardware thread; a worker on it is drawn with its \
                 name.",
                "The timeline has one lane per hardware thread: where several lanes are busy at \
                 the same instant, that many threads ran at once.",
            ],
            moment: Moment::Peak,
        },
        LessonId::Parallel => Lesson {
            id,
            title: "Parallel: compute-bound work on several threads",
            heard: "Split a compute-bound job over n workers and it runs n times faster.",
            text: &[
                "Work is {compute-bound} when the CPU is what it waits for: counting primes, \
                 resizing images. Split such a job into independent chunks and give them to T \
                 threads, and T hardware threads can work on it at once: that is {parallelism}.",
                "It helps only up to the number of hardware threads: past that, threads take \
                 turns. It also helps less than T times when chunks are uneven, when threads \
                 wait for each other, when {SMT} siblings share one core's units, or when other \
                 programs use the CPUs at the same time.",
                "The run measures the same job twice, with one thread and with one per hardware \
                 thread, and reports the {speedup}: the one-thread time divided by the \
                 many-thread time.",
            ],
            question: format!(
                "The same compute-bound job on {pus} thread{} instead of 1, on {pus} hardware \
                 thread{}: how much faster?",
                if pus == 1 { "" } else { "s" },
                if pus == 1 { "" } else { "s" }
            ),
            choices: {
                let n = f64::from(pus);
                let mut c = vec![choice("About as fast (1×): threads only take turns", 1.0)];
                if pus >= 4 {
                    c.push(choice(
                        format!("About {}: half of them", times(n / 2.0)),
                        n / 2.0,
                    ));
                }
                if pus > 1 {
                    c.push(choice(
                        format!("About {}: one per hardware thread", times(n)),
                        n,
                    ));
                }
                c.push(choice(
                    format!("More than {}: threads add up beyond the hardware", times(n)),
                    n * 1.6,
                ));
                c
            },
            plan: Plan::Scenario(
                ScenarioId::ParallelCompute,
                params(|p| p.threads = Some(pus)),
            ),
            recorded: [
                "parallel-compute.coreplay.gz",
                "xeon16-parallel-compute.coreplay.gz",
            ],
            views: &[ViewKind::Cores, ViewKind::Timeline, ViewKind::Summary],
            look: &[
                "In the summary: the speedup, and the one-thread time it is measured against.",
                "On the timeline, every lane busy from start to end means every hardware thread \
                 worked the whole time.",
            ],
            moment: Moment::Peak,
        },
        LessonId::Oversubscribed => Lesson {
            id,
            title: "More threads than hardware threads",
            heard: "100 threads on 4 cores: 4 run, the others context-switch and waste cycles.",
            text: &[
                "When there are more {runnable} threads than hardware threads, the kernel gives \
                 each a slice of time and then {preempts} it: takes it off its CPU so that \
                 another can run. Each swap is a {context switch}.",
                "A switch itself is cheap: a few microseconds. What grows is waiting: every \
                 thread spends most of its life runnable but not running, in a {run queue}. The \
                 total work does not change, so the whole job takes about as long as with one \
                 thread per hardware thread; each single thread takes much longer to finish.",
                "The run does the same work on many threads and on one thread per hardware \
                 thread, and counts the switches and the waiting.",
            ],
            // Values: the many threads' time over the one-per-hardware-thread time.
            question: format!(
                "The same work on 8 to 16 times more threads than this machine's {pus} hardware \
                 thread{}, instead of one thread per hardware thread: the whole job takes…",
                if pus == 1 { "" } else { "s" }
            ),
            choices: vec![
                choice(
                    "Much longer: switching between so many threads wastes most of the time",
                    3.0,
                ),
                choice(
                    "About as long: same work, same CPUs; each thread just waits its turn",
                    1.0,
                ),
                choice("Much less: more threads get more done", 0.3),
            ],
            plan: Plan::Scenario(ScenarioId::Oversubscribed, Params::default()),
            recorded: [
                "oversubscribed.coreplay.gz",
                "xeon16-oversubscribed.coreplay.gz",
            ],
            views: &[ViewKind::Cores, ViewKind::Timeline, ViewKind::Summary],
            look: &[
                "Under each hardware thread, the queue of threads preempted and waiting for it.",
                "In the summary: involuntary switches (preemptions) and the time spent runnable \
                 but waiting, summed over threads, with the mean per thread beside it.",
            ],
            moment: Moment::Preemption,
        },
        LessonId::Gil => Lesson {
            id,
            title: "Threads that cannot compute together: the GIL",
            heard: "In Python only one thread runs at a time, so threads give concurrency, not \
                    parallelism.",
            text: &[
                "CPython runs Python code only while holding one {lock}, the {GIL}. A thread \
                 that wants to compute must wait until the holder lets go. A waiter that has \
                 waited a whole {switch interval} (5 ms by default) asks the holder to drop it, \
                 and the lock is handed over.",
                "The threads are real OS threads on real hardware threads: the kernel would run \
                 them at the same time. It is the lock that makes them take turns, so compute \
                 on four threads takes about as long as on one, whatever the number of cores. \
                 Waiting for I/O releases the lock, so threads still help programs that mostly \
                 wait.",
                "The run uses the same rule as CPython's lock, in Rust: 4 threads, one lock.",
            ],
            question: format!(
                "4 threads compute under one lock on {pus} hardware thread{}: how much faster \
                 than 1 thread?",
                if pus == 1 { "" } else { "s" }
            ),
            choices: {
                let mut c = vec![choice("About 1×: they take turns holding the lock", 1.0)];
                if pus > 1 {
                    let n = f64::from(pus.min(4));
                    c.push(choice(
                        format!("About {}: one per hardware thread", times(n)),
                        n,
                    ));
                }
                c.push(choice(
                    "Half as fast or worse: the hand-overs cost most of the time",
                    0.5,
                ));
                c
            },
            plan: Plan::Scenario(ScenarioId::Gil, params(|p| p.threads = Some(4))),
            recorded: ["gil.coreplay.gz", "xeon16-gil.coreplay.gz"],
            views: &[ViewKind::Cores, ViewKind::Timeline, ViewKind::Summary],
            look: &[
                "The lock box: who holds it, who waits, in the order they asked.",
                "On the cores, most hardware threads stay empty while four threads want to \
                 compute.",
            ],
            moment: Moment::Handover,
        },
        LessonId::Processes => Lesson {
            id,
            title: "Processes: each with its own memory and its own lock",
            heard: "Use processes for parallel compute in Python: they are heavier than threads \
                    but sidestep the GIL.",
            text: &[
                "A {process} has its own memory and, in Python, its own interpreter and its own \
                 {GIL}. Threads of different processes never wait for each other's lock, so a \
                 {pool} of worker processes computes in parallel.",
                "The price is paid up front and in memory: starting a process takes \
                 milliseconds (a thread: tens of microseconds), each keeps its own copy of \
                 what it needs, and work and results must be sent between processes instead of \
                 shared.",
                "The run starts one worker process per hardware thread, each with its own lock, \
                 gives them the same job as one worker alone, and measures start-up time and \
                 memory.",
            ],
            question: format!(
                "{pus} worker process{} share a compute-bound job on {pus} hardware thread{}: \
                 how much faster than one worker process?",
                if pus == 1 { "" } else { "es" },
                if pus == 1 { "" } else { "s" }
            ),
            choices: {
                let mut c = vec![choice(
                    "About 1×: they are still Python, the GIL stops them",
                    1.0,
                )];
                if pus > 1 {
                    let n = f64::from(pus);
                    c.push(choice(
                        format!("Close to {}: each has its own lock", times(n)),
                        n,
                    ));
                }
                c.push(choice(
                    "Slower than one: starting processes costs more than it saves",
                    0.5,
                ));
                c
            },
            plan: Plan::Scenario(ScenarioId::ProcessPool, params(|p| p.processes = Some(pus))),
            recorded: [
                "process-pool.coreplay.gz",
                "xeon16-process-pool.coreplay.gz",
            ],
            views: &[ViewKind::Cores, ViewKind::Timeline, ViewKind::Summary],
            look: &[
                "One lock per process, each held by its own worker: nobody waits.",
                "In the summary's notes: start-up of a worker process against a thread, and \
                 each process's memory.",
            ],
            moment: Moment::Peak,
        },
        LessonId::Io => Lesson {
            id,
            title: "Waiting for I/O: one after another, or all at once",
            heard: "Compute-bound work needs parallelism; I/O-bound work needs concurrency.",
            text: &[
                "Work is {I/O-bound} when it mostly waits: for a database, a disk, another \
                 machine. A thread waiting for a reply is off the CPU, {blocked}, using \
                 nothing. Asking K questions one after another takes K × the {latency}.",
                "Waiting needs no CPU, so the waits can overlap: that is {concurrency}. \
                 Threads overlap them (each waits for one reply, the kernel wakes it); an \
                 {event loop} overlaps them on a single thread (many {tasks}, each parked \
                 until its reply is there). Neither needs more cores.",
                "The run sends the same requests to a server that answers after a fixed delay, \
                 from one event loop and from a pool of threads, and times both.",
            ],
            question: "20 requests, each answered after 20 ms. One after another they take \
                       400 ms. On one event loop thread they take about…"
                .into(),
            // Values: the event loop's wall time over K × latency (400 ms).
            choices: vec![
                choice(
                    "400 ms: one thread can only wait for one thing at a time",
                    1.0,
                ),
                choice("200 ms: about half, by switching quickly", 0.5),
                choice("20–30 ms: all the waits overlap", 25.0 / 400.0),
            ],
            plan: Plan::Scenario(
                ScenarioId::AsyncVsThreads,
                params(|p| {
                    p.requests = Some(20);
                    p.threads = Some(10);
                    p.latency_ms = Some(20);
                }),
            ),
            recorded: [
                "async-vs-threads.coreplay.gz",
                "async-vs-threads.coreplay.gz",
            ],
            views: &[ViewKind::Loop, ViewKind::Timeline, ViewKind::Summary],
            look: &[
                "In the summary: each way's wall time and requests answered.",
                "On the timeline, the CPUs are almost idle: waiting costs no CPU.",
            ],
            moment: Moment::SelectorWake,
        },
        LessonId::EventLoop => Lesson {
            id,
            title: "Inside an event loop: tasks, the ready queue, the selector",
            heard: "asyncio has an event loop with a queue of ready tasks; await gives control \
                    back to it; the selector asks the OS which sockets are ready.",
            text: &[
                "An {event loop} is one thread going round: it takes the next {task} from the \
                 {ready queue} and runs it until the task {awaits} something not ready yet. The \
                 task is then {parked}, and the loop runs the next one.",
                "When no task is ready, the loop asks the OS with a {selector} (epoll on \
                 Linux): wake me when any of these sockets has data, or when the next timer is \
                 due. The kernel wakes it, the tasks whose replies arrived go back into the \
                 ready queue, and the loop goes on.",
                "Only one task runs at a time. The loop is fast because tasks spend nearly all \
                 their time parked, costing nothing. This run is a real event loop (Rust's \
                 tokio, traced) with one task per request. Python's asyncio works the same \
                 way: the gallery's `python-asyncio-loopback` is a real asyncio program, its \
                 tasks, ready queue and selector recorded from inside by coreplay's probe.",
            ],
            question: format!(
                "Many tasks, one per request, each wait for a reply on one event loop thread \
                 ({pus} hardware thread{}). How many tasks run at the same instant?",
                if pus == 1 { "" } else { "s" }
            ),
            // Values: how many tasks were polled at the same instant.
            choices: {
                let mut c = vec![
                    choice("All of them: that is what async means", 20.0),
                    choice("One at a time; the others are parked or ready", 1.0),
                ];
                if pus > 1 {
                    c.push(choice(
                        format!("One per hardware thread ({pus})"),
                        f64::from(pus),
                    ));
                }
                c
            },
            plan: Plan::Scenario(
                ScenarioId::IoAsync,
                params(|p| {
                    p.requests = Some(200);
                    p.latency_ms = Some(50);
                }),
            ),
            recorded: ["io-async.coreplay.gz", "io-async.coreplay.gz"],
            views: &[ViewKind::Loop, ViewKind::Summary],
            look: &[
                "The running task, the ready queue in order, the tasks parked on I/O and on \
                 timers.",
                "The selector: how long the loop slept, and how many tasks each wake made \
                 ready.",
            ],
            moment: Moment::SelectorWake,
        },
        LessonId::Blocking => Lesson {
            id,
            title: "One task that never awaits stalls them all",
            heard: "Asynchronous code never blocks.",
            text: &[
                "A task gives the loop back only when it {awaits}. A task that computes for \
                 100 ms without awaiting, or calls something that {blocks} the thread (a \
                 sleep, a file read, a slow library call), holds the only thread the loop has.",
                "Meanwhile replies arrive for the other tasks, and nobody reads them: the \
                 whole loop stalls, and every request's {latency} grows by the time the task \
                 kept the thread. The cure is to await often, or to move such work to a \
                 thread or a process of its own.",
                "The run sends the same requests twice: once with only well-behaved tasks, once \
                 with one task computing without awaiting.",
            ],
            question: "One task computes for a while without awaiting, on a loop with many \
                       requests waiting for replies. What happens to the other requests?"
                .into(),
            // Values: how much later the median request was answered, over the time the task
            // computed without awaiting.
            choices: vec![
                choice("Nothing: they run on other cores meanwhile", 0.0),
                choice(
                    "They all wait until it awaits: their replies are late by that much",
                    1.0,
                ),
                choice("Only the requests it handles itself are late", 0.05),
            ],
            plan: Plan::Scenario(ScenarioId::EventLoopBlocked, Params::default()),
            recorded: [
                "event-loop-blocked.coreplay.gz",
                "event-loop-blocked.coreplay.gz",
            ],
            views: &[ViewKind::Loop, ViewKind::Timeline, ViewKind::Summary],
            look: &[
                "The running task during the long poll, and the ready queue filling behind it.",
                "In the summary: the latencies with and without the blocking task.",
            ],
            moment: Moment::LongPoll,
        },
        LessonId::Watch => Lesson {
            id,
            title: "Your own program",
            heard: "Python threads are CPU threads.",
            text: &[
                "Everything so far can be seen in any program. `coreplay watch -- python3 \
                 app.py` starts a program and follows every {thread} and {process} it creates, \
                 on the cores, until it ends; `coreplay watch --pid PID` follows one already \
                 running.",
                "Each Python thread is one OS thread (one to one): the kernel schedules it like \
                 any other. Whether they compute at the same time is up to the {GIL}. The run \
                 below watches a Python program that computes on four threads.",
                "Watching reads `/proc` about a thousand times a second, or uses the kernel's \
                 exact switch records where allowed; the page says which.",
            ],
            question: format!(
                "A Python program computes on 4 threads, on {pus} hardware thread{}. How many \
                 of them run at the same instant?",
                if pus == 1 { "" } else { "s" }
            ),
            // Values: the most of its threads on a CPU at the same instant.
            choices: {
                let mut c = vec![choice(
                    "One at a time, mostly: they take turns holding the GIL",
                    1.0,
                )];
                if pus > 1 {
                    let n = pus.min(4);
                    c.push(choice(
                        format!(
                            "{}: Python threads are CPU threads",
                            if n == 4 {
                                "All 4".to_string()
                            } else {
                                format!("{n}, one per hardware thread")
                            }
                        ),
                        f64::from(n),
                    ));
                }
                c.push(choice(
                    "None for long: Python threads only switch quickly",
                    0.0,
                ));
                c
            },
            plan: Plan::Watch("cpu_threads"),
            recorded: [
                "python-cpu-threads.coreplay.gz",
                "xeon16-python-cpu-threads.coreplay.gz",
            ],
            views: &[ViewKind::Cores, ViewKind::Timeline, ViewKind::Summary],
            look: &[
                "The four compute threads by name on the timeline: how many lanes are busy at \
                 once?",
            ],
            moment: Moment::Peak,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pus: u32, cores: u32) -> Machine {
        Machine {
            pus,
            cores,
            packages: 1,
        }
    }

    #[test]
    fn every_lesson_has_a_name_and_a_text_of_100_to_250_words() {
        for id in LessonId::ALL {
            assert_eq!(LessonId::from_name(id.name()), Some(id));
            for machine in [m(1, 1), m(2, 2), m(2, 1), m(16, 16), m(64, 32)] {
                let l = lesson(id, machine);
                let words: usize = l.text.iter().map(|p| p.split_whitespace().count()).sum();
                assert!((100..=250).contains(&words), "{}: {words} words", id.name());
                assert!(
                    (2..=4).contains(&l.choices.len()),
                    "{} on {machine:?}: {:?}",
                    id.name(),
                    l.choices
                );
                let mut texts: Vec<&str> = l.choices.iter().map(|c| c.text.as_str()).collect();
                coreplay_shared::sort::natural(&mut texts);
                texts.dedup();
                assert_eq!(texts.len(), l.choices.len(), "{:?}", l.choices);
            }
        }
        assert_eq!(LessonId::from_name("nope"), None);
        assert_eq!(LessonId::Machine.next(), Some(LessonId::Parallel));
        assert_eq!(LessonId::Watch.next(), None);
    }

    #[test]
    fn every_glossary_term_in_a_lesson_is_explained() {
        for id in LessonId::ALL {
            for p in lesson(id, m(2, 2)).text {
                for term in super::super::glossary::terms_in(p) {
                    assert!(
                        super::super::glossary::define(term).is_some(),
                        "{}: no glossary entry for {term:?}",
                        id.name()
                    );
                }
            }
        }
    }

    #[test]
    fn runs_fit_the_machine() {
        for machine in [m(1, 1), m(2, 1), m(16, 16), m(64, 32)] {
            for id in LessonId::ALL {
                if let Plan::Scenario(s, p) = lesson(id, machine).plan {
                    coreplay_shared::scenario::resolve(s, &p, machine.pus)
                        .unwrap_or_else(|e| panic!("{} on {machine:?}: {e}", id.name()));
                }
            }
        }
    }
}
