//! The glossary: every term a lesson marks with `{braces}`, explained in a sentence or two of
//! plain words, and the splitting of a lesson's text into words and terms.

/// Each entry: the forms it appears in (lower case), and what it means.
const ENTRIES: &[(&[&str], &str)] = &[
    (
        &["package", "packages", "socket"],
        "The chip that sits in one socket of the board. It holds the cores and their shared cache.",
    ),
    (
        &["core", "cores"],
        "One processing unit of a chip, with its own arithmetic units and small caches. It runs \
         one or, with SMT, two instruction streams.",
    ),
    (
        &["hardware thread", "hardware threads", "pu", "pus"],
        "What the operating system calls a CPU: one instruction stream a core keeps going. A core \
         has one, or two with SMT. hwloc calls them PUs (processing units).",
    ),
    (
        &["smt"],
        "Simultaneous multithreading (Intel: Hyper-Threading): one core runs two hardware threads \
         at the same time, sharing its units, so each is a little slower than alone.",
    ),
    (
        &["hwloc"],
        "A library that reads the machine's layout from the operating system: packages, caches, \
         cores, hardware threads and memory nodes. coreplay draws what it finds.",
    ),
    (
        &["thread", "threads"],
        "A program's own line of execution (a software thread). A program can start any number; \
         the kernel runs each on some hardware thread when it has work.",
    ),
    (
        &["process", "processes"],
        "A running program: its own memory and one or more threads. Processes do not share \
         memory unless they ask to.",
    ),
    (
        &["scheduler"],
        "The part of the kernel that decides which thread runs on which hardware thread, and for \
         how long.",
    ),
    (
        &["runnable"],
        "Ready to run and waiting only for a free hardware thread.",
    ),
    (
        &["preempts", "preempted", "preemption"],
        "Takes a thread off its CPU while it still wants to run, to let another run (an \
         involuntary context switch).",
    ),
    (
        &["context switch", "context switches"],
        "The kernel saving one thread's registers and loading another's on a CPU. Voluntary when \
         the thread blocked or slept; involuntary when it was preempted.",
    ),
    (
        &["run queue"],
        "The threads waiting for one CPU: runnable, but not running.",
    ),
    (
        &["compute-bound"],
        "Work whose speed is set by the CPU: it never waits for anything else.",
    ),
    (
        &["i/o-bound"],
        "Work that mostly waits for input or output: a network reply, a disk. Its CPU is idle \
         meanwhile.",
    ),
    (
        &["parallelism"],
        "Several things happening at the same instant, on several hardware threads.",
    ),
    (
        &["concurrency"],
        "Several things in progress over the same stretch of time, taking turns or waiting; not \
         necessarily at the same instant.",
    ),
    (
        &["speedup"],
        "How many times faster: the time with one worker divided by the time with many.",
    ),
    (
        &["lock"],
        "Something only one thread can hold at a time; the others wait until it is released.",
    ),
    (
        &["gil"],
        "CPython's global interpreter lock: a thread runs Python code only while holding it, so \
         one thread of a process runs Python at a time.",
    ),
    (
        &["switch interval"],
        "How long a thread waiting for the GIL waits before asking the holder to let go (5 ms in \
         CPython, sys.setswitchinterval).",
    ),
    (
        &["pool"],
        "A fixed set of worker threads or processes started once and given task after task, \
         instead of one new worker per task.",
    ),
    (
        &["blocked", "blocks"],
        "Off the CPU, waiting for something (a reply, a disk, a lock, a timer); it uses no CPU \
         and does not run until woken.",
    ),
    (
        &["latency"],
        "How long one request takes from being sent to its reply arriving.",
    ),
    (
        &["event loop"],
        "One thread that runs many tasks in turn, each until it awaits, and asks the operating \
         system which waits are over when no task is ready.",
    ),
    (
        &["task", "tasks"],
        "A piece of work on an event loop (an asyncio Task, a tokio task): it runs until it \
         awaits, and is parked until what it awaits is ready.",
    ),
    (
        &["ready queue"],
        "The tasks ready to run, in order, waiting for the event loop to get to them.",
    ),
    (
        &["awaits", "await"],
        "Gives the loop back until something is ready (a reply, a timer, another task): the \
         task is parked and another runs.",
    ),
    (
        &["parked"],
        "A task waiting for I/O or a timer. It is not in the ready queue and costs nothing.",
    ),
    (
        &["rayon"],
        "A Rust library that splits work into chunks and runs them on a pool of threads, one \
         per hardware thread by default.",
    ),
    (
        &["tokio"],
        "Rust's most used event loop (an async runtime), like Python's asyncio: coreplay's I/O \
         scenarios run on a real one and trace every task.",
    ),
    (
        &["poll", "polls", "polled"],
        "One turn of a task on an event loop: it runs until it finishes or awaits something not \
         ready yet.",
    ),
    (
        &["wake", "wakes", "woken"],
        "Something a task awaited is ready (a reply came, a timer fired): the task goes back \
         into the ready queue.",
    ),
    (
        &["perf_event_open"],
        "The Linux system call that gives the kernel's own records of every context switch of \
         a thread: coreplay's exact fidelity.",
    ),
    (
        &["fidelity"],
        "How the events were obtained: exact (the kernel's switch records), self-timed (each \
         thread times itself around small chunks of work) or sampled (reading /proc about a \
         thousand times a second).",
    ),
    (
        &["selector"],
        "The operating system call an event loop sleeps in until a socket is ready or a timer is \
         due (epoll on Linux, kqueue on macOS; asyncio's selectors module).",
    ),
];

/// What `term` means (any of its forms, any case); `None` when the glossary lacks it.
pub fn define(term: &str) -> Option<&'static str> {
    // The glossary's forms are ASCII: ASCII case-folding finds them, and keeps the page free
    // of Unicode's case tables.
    let lower = term.to_ascii_lowercase();
    ENTRIES
        .iter()
        .find(|(forms, _)| forms.contains(&lower.as_str()))
        .map(|(_, d)| *d)
}

/// A piece of a lesson's text: plain words, or a glossary term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Plain text.
    Text(&'a str),
    /// A term, as written.
    Term(&'a str),
    /// A command or a name to type, written between backticks.
    Code(&'a str),
}

/// Splits `text` at its `{terms}` and `` `code` `` (an unmatched brace or backtick is plain
/// text).
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = rest
            .char_indices()
            .find(|&(_, c)| c == '{' || c == '`')
            .and_then(|(open, c)| {
                let close = if c == '{' { '}' } else { '`' };
                rest[open + 1..].find(close).map(|len| (open, len, c))
            });
        let Some((open, len, c)) = next else {
            break;
        };
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let inner = &rest[open + 1..open + 1 + len];
        out.push(if c == '{' {
            Piece::Term(inner)
        } else {
            Piece::Code(inner)
        });
        rest = &rest[open + 2 + len..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Marks the first use of each glossary term in plain `text` (whole words, any case), for
/// text that was not written with `{braces}` (the agent's scenario descriptions, captions).
pub fn mark(text: &str) -> Vec<Piece<'_>> {
    // ASCII case-folding (the terms are ASCII) keeps every byte offset the same in both.
    let lower = text.to_ascii_lowercase();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'/';
    let mut found: Vec<(usize, usize)> = Vec::new();
    for (forms, _) in ENTRIES {
        // The longest form first ("hardware threads" before "threads").
        let mut forms: Vec<&str> = forms.to_vec();
        coreplay_shared::sort::by_key(&mut forms, |f| std::cmp::Reverse(f.len()));
        'form: for form in forms {
            let mut from = 0;
            while let Some(i) = lower[from..].find(form).map(|i| i + from) {
                let end = i + form.len();
                let before = i.checked_sub(1).map(|j| lower.as_bytes()[j]);
                let after = lower.as_bytes().get(end).copied();
                if !before.is_some_and(is_word)
                    && !after.is_some_and(is_word)
                    && !found.iter().any(|&(a, b)| i < b && a < end)
                {
                    found.push((i, end));
                    break 'form;
                }
                from = end;
            }
        }
    }
    coreplay_shared::sort::natural(&mut found);
    let mut out = Vec::new();
    let mut at = 0;
    for (a, b) in found {
        if a > at {
            out.push(Piece::Text(&text[at..a]));
        }
        out.push(Piece::Term(&text[a..b]));
        at = b;
    }
    if at < text.len() {
        out.push(Piece::Text(&text[at..]));
    }
    out
}

/// The terms marked in `text`.
pub fn terms_in(text: &str) -> impl Iterator<Item = &str> {
    pieces(text).into_iter().filter_map(|p| match p {
        Piece::Term(t) => Some(t),
        Piece::Text(_) | Piece::Code(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_out_and_resolve_in_any_form() {
        assert_eq!(
            pieces("a {core} and {hardware threads}."),
            vec![
                Piece::Text("a "),
                Piece::Term("core"),
                Piece::Text(" and "),
                Piece::Term("hardware threads"),
                Piece::Text("."),
            ]
        );
        assert_eq!(pieces("no {end"), vec![Piece::Text("no {end")]);
        assert_eq!(
            pieces("run `coreplay watch` on {threads}"),
            vec![
                Piece::Text("run "),
                Piece::Code("coreplay watch"),
                Piece::Text(" on "),
                Piece::Term("threads"),
            ]
        );
        assert!(define("SMT").is_some() && define("Cores").is_some());
        let marked = mark("Threads on a rayon pool; the threads wait. Hardware threads: 2.");
        let terms: Vec<&str> = marked
            .iter()
            .filter_map(|p| match p {
                Piece::Term(t) => Some(*t),
                _ => None,
            })
            .collect();
        assert_eq!(terms, vec!["Threads", "rayon", "pool", "Hardware threads"]);
        // The pieces put back together, to show nothing was lost.
        let joined = |pieces: &[Piece]| -> String {
            pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) | Piece::Term(t) | Piece::Code(t) => *t,
                })
                .collect()
        };
        assert_eq!(
            joined(&marked),
            "Threads on a rayon pool; the threads wait. Hardware threads: 2."
        );
        assert_eq!(define("quantum chromodynamics"), None);
        // Text beyond ASCII around a term (the agent's descriptions, a watched program's name).
        let marked = mark("İstanbul’s Threads — naïve");
        assert!(marked.contains(&Piece::Term("Threads")), "{marked:?}");
        assert_eq!(joined(&marked), "İstanbul’s Threads — naïve");
    }
}
