//! The Python probe's records, read: one line of the probe's text format (its header in
//! `probe.py` is the specification) into a typed [`Record`], or an error that says which line
//! and why. The probe's output is a watched program's output: nothing here trusts it, every
//! number is checked and every text field is decoded and bounded.

/// Longest line read; longer ones are refused (the probe writes at most 4096-byte chunks).
pub const MAX_LINE: usize = 4_096;
/// Text fields are cut to this many characters after decoding.
const MAX_TEXT: usize = 300;
/// GIL futex addresses kept per process at most.
const MAX_ADDRESSES: usize = 16;

/// What woke a task, with the probe's own (per-process) task ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The selector made a callback ready.
    Io,
    /// A timer callback.
    Timer,
    /// A step of this task (per-process id).
    Task(u32),
    /// Anything else.
    Other,
}

/// How a task's step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// The coroutine yielded: still pending.
    Pending,
    /// It returned or raised: finished.
    Finished,
    /// `CancelledError` came out: cancelled.
    Cancelled,
}

/// One record of the probe (times are absolute `CLOCK_MONOTONIC` ns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `P`: the records after it, up to the next `P`, are this process's.
    Process(u32),
    /// `H`: the probe started in a process.
    Hello {
        /// The record format's version.
        version: u32,
        /// e.g. `3.11.7`.
        python: String,
        /// e.g. `cpython`.
        implementation: String,
    },
    /// `T`: a thread's `threading` name.
    ThreadName {
        /// OS thread id.
        os_tid: u32,
        /// When.
        at: u64,
        /// The name.
        name: String,
    },
    /// `S`: a task was created.
    Spawn {
        /// Per-process task id.
        task: u32,
        /// When.
        at: u64,
        /// Per-process loop id.
        event_loop: u32,
        /// The creating thread.
        os_tid: u32,
        /// `task.get_name()`.
        name: String,
        /// The coroutine's qualified name.
        coro: String,
    },
    /// `R`: one step of a task.
    Step {
        /// Per-process task id.
        task: u32,
        /// The loop's thread.
        os_tid: u32,
        /// Start.
        start: u64,
        /// End.
        end: u64,
        /// How it ended.
        done: Done,
    },
    /// `W`: a task became ready.
    Wake {
        /// Per-process task id.
        task: u32,
        /// When.
        at: u64,
        /// What did it.
        by: By,
    },
    /// `L`: one selector wait.
    Wait {
        /// Per-process loop id.
        event_loop: u32,
        /// The loop's thread.
        os_tid: u32,
        /// Start.
        start: u64,
        /// End.
        end: u64,
        /// The timeout asked, ns (`None`: no limit).
        timeout_ns: Option<u64>,
        /// Events the selector returned.
        events: u32,
    },
    /// `Q`: the loop's queues at the end of an iteration.
    Queues {
        /// Per-process loop id.
        event_loop: u32,
        /// The loop's thread.
        os_tid: u32,
        /// When.
        at: u64,
        /// Ready tasks not stepped yet.
        ready: u32,
        /// Tasks awaiting something.
        waiting: u32,
        /// Timer callbacks scheduled.
        timers: u32,
    },
    /// `G`: the futex words of the GIL (empty, with the reason, when unknown).
    Gil {
        /// Addresses.
        addresses: Vec<u64>,
        /// How they were learned, or why not.
        how: String,
    },
    /// `N`: something the probe cannot see.
    Note(String),
    /// `E`: the probe failed in this process and stopped.
    Failed(String),
    /// `X`: the process is exiting.
    Exit(u64),
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("python probe record {line:?}: {why}")]
pub struct RecordError {
    /// The line, cut to 80 characters.
    pub line: String,
    /// What is wrong with it.
    pub why: String,
}

/// Decodes a text field: `-` is empty, otherwise percent-decoding of UTF-8 (invalid bytes are
/// replaced), cut to [`MAX_TEXT`] characters.
pub fn decode_text(field: &str) -> String {
    if field == "-" {
        return String::new();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out)
        .chars()
        .take(MAX_TEXT)
        .collect()
}

/// Parses one line (without its newline).
pub fn parse(line: &str) -> Result<Record, RecordError> {
    let fail = |why: &str| RecordError {
        line: line.chars().take(80).collect(),
        why: why.to_string(),
    };
    if line.len() > MAX_LINE {
        return Err(fail("longer than a chunk"));
    }
    let mut fields = line.split(' ');
    let kind = fields.next().unwrap_or_default();
    let f: Vec<&str> = fields.collect();
    let want = |n: usize| {
        if f.len() == n {
            Ok(())
        } else {
            Err(fail(&format!("{} fields, {n} expected", f.len())))
        }
    };
    let num = |i: usize, what: &str| -> Result<u64, RecordError> {
        f[i].parse::<u64>()
            .map_err(|_| fail(&format!("{what} is not a number")))
    };
    let small = |i: usize, what: &str| -> Result<u32, RecordError> {
        f[i].parse::<u32>()
            .map_err(|_| fail(&format!("{what} is not a number")))
    };
    let interval = |s: u64, e: u64| {
        if e < s {
            Err(fail("it ends before it starts"))
        } else {
            Ok(())
        }
    };
    let record = match kind {
        "P" => {
            want(1)?;
            Record::Process(small(0, "pid")?)
        }
        "H" => {
            want(3)?;
            Record::Hello {
                version: small(0, "version")?,
                python: decode_text(f[1]),
                implementation: decode_text(f[2]),
            }
        }
        "T" => {
            want(3)?;
            Record::ThreadName {
                os_tid: small(0, "thread")?,
                at: num(1, "time")?,
                name: decode_text(f[2]),
            }
        }
        "S" => {
            want(6)?;
            Record::Spawn {
                task: small(0, "task")?,
                at: num(1, "time")?,
                event_loop: small(2, "loop")?,
                os_tid: small(3, "thread")?,
                name: decode_text(f[4]),
                coro: decode_text(f[5]),
            }
        }
        "R" => {
            want(5)?;
            let (start, end) = (num(2, "start")?, num(3, "end")?);
            interval(start, end)?;
            Record::Step {
                task: small(0, "task")?,
                os_tid: small(1, "thread")?,
                start,
                end,
                done: match f[4] {
                    "0" => Done::Pending,
                    "1" => Done::Finished,
                    "2" => Done::Cancelled,
                    _ => return Err(fail("done is not 0, 1 or 2")),
                },
            }
        }
        "W" => {
            want(3)?;
            let by = match f[2] {
                "io" => By::Io,
                "timer" => By::Timer,
                "other" => By::Other,
                t => match t.strip_prefix("task:").map(str::parse::<u32>) {
                    Some(Ok(n)) => By::Task(n),
                    _ => return Err(fail("unknown waker")),
                },
            };
            Record::Wake {
                task: small(0, "task")?,
                at: num(1, "time")?,
                by,
            }
        }
        "L" => {
            want(6)?;
            let (start, end) = (num(2, "start")?, num(3, "end")?);
            interval(start, end)?;
            Record::Wait {
                event_loop: small(0, "loop")?,
                os_tid: small(1, "thread")?,
                start,
                end,
                timeout_ns: match f[4] {
                    "-1" => None,
                    _ => Some(num(4, "timeout")?),
                },
                events: small(5, "events")?,
            }
        }
        "Q" => {
            want(6)?;
            Record::Queues {
                event_loop: small(0, "loop")?,
                os_tid: small(1, "thread")?,
                at: num(2, "time")?,
                ready: small(3, "ready")?,
                waiting: small(4, "waiting")?,
                timers: small(5, "timers")?,
            }
        }
        "G" => {
            if f.len() < 2 {
                return Err(fail("no addresses and no reason"));
            }
            let how = decode_text(&f[1..].join(" "));
            if f[0] == "-" {
                Record::Gil {
                    addresses: Vec::new(),
                    how,
                }
            } else {
                let addresses = f[0]
                    .split(',')
                    .take(MAX_ADDRESSES)
                    .map(|a| {
                        a.strip_prefix("0x")
                            .and_then(|h| u64::from_str_radix(h, 16).ok())
                            .ok_or_else(|| fail("an address is not 0x-prefixed hex"))
                    })
                    .collect::<Result<Vec<u64>, RecordError>>()?;
                Record::Gil { addresses, how }
            }
        }
        "N" => {
            want(1)?;
            Record::Note(decode_text(f[0]))
        }
        "E" => {
            want(1)?;
            Record::Failed(decode_text(f[0]))
        }
        "X" => {
            want(1)?;
            Record::Exit(num(0, "time")?)
        }
        _ => return Err(fail("unknown record kind")),
    };
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_kind_parses() {
        assert_eq!(parse("P 42"), Ok(Record::Process(42)));
        assert_eq!(
            parse("H 1 3.11.2 cpython"),
            Ok(Record::Hello {
                version: 1,
                python: "3.11.2".into(),
                implementation: "cpython".into()
            })
        );
        assert_eq!(
            parse("T 43 100 worker%201"),
            Ok(Record::ThreadName {
                os_tid: 43,
                at: 100,
                name: "worker 1".into()
            })
        );
        assert_eq!(
            parse("S 3 100 1 42 Task-3 main.%3Clocals%3E.fetch"),
            Ok(Record::Spawn {
                task: 3,
                at: 100,
                event_loop: 1,
                os_tid: 42,
                name: "Task-3".into(),
                coro: "main.<locals>.fetch".into()
            })
        );
        assert_eq!(
            parse("R 3 42 100 150 2"),
            Ok(Record::Step {
                task: 3,
                os_tid: 42,
                start: 100,
                end: 150,
                done: Done::Cancelled
            })
        );
        assert_eq!(
            parse("W 3 160 task:2"),
            Ok(Record::Wake {
                task: 3,
                at: 160,
                by: By::Task(2)
            })
        );
        assert_eq!(
            parse("L 1 42 200 300 -1 2"),
            Ok(Record::Wait {
                event_loop: 1,
                os_tid: 42,
                start: 200,
                end: 300,
                timeout_ns: None,
                events: 2
            })
        );
        assert_eq!(
            parse("Q 1 42 310 1 4 2"),
            Ok(Record::Queues {
                event_loop: 1,
                os_tid: 42,
                at: 310,
                ready: 1,
                waiting: 4,
                timers: 2
            })
        );
        assert_eq!(
            parse("G 0x7f00,0x7f04 helper%20threads"),
            Ok(Record::Gil {
                addresses: vec![0x7f00, 0x7f04],
                how: "helper threads".into()
            })
        );
        assert_eq!(
            parse("G - free-threaded%20build"),
            Ok(Record::Gil {
                addresses: vec![],
                how: "free-threaded build".into()
            })
        );
        assert_eq!(parse("N uvloop"), Ok(Record::Note("uvloop".into())));
        assert_eq!(parse("E boom"), Ok(Record::Failed("boom".into())));
        assert_eq!(parse("X 999"), Ok(Record::Exit(999)));
    }

    #[test]
    fn text_fields_decode_as_the_probe_encodes_them() {
        assert_eq!(decode_text("-"), "");
        assert_eq!(decode_text("%2D"), "-");
        assert_eq!(decode_text("caf%C3%A9"), "café");
        // A stray percent sign stays as it is; invalid UTF-8 is replaced, not refused.
        assert_eq!(decode_text("100%"), "100%");
        assert_eq!(decode_text("%FF"), "\u{fffd}");
        assert_eq!(decode_text(&"a".repeat(1000)).len(), MAX_TEXT);
    }

    #[test]
    fn malformed_lines_are_refused_with_the_reason() {
        for (line, why) in [
            ("", "unknown record kind"),
            ("Z 1", "unknown record kind"),
            ("P", "0 fields, 1 expected"),
            ("P -3", "pid is not a number"),
            ("R 1 2 300 100 0", "it ends before it starts"),
            ("R 1 2 100 300 7", "done is not 0, 1 or 2"),
            ("W 1 2 task:x", "unknown waker"),
            ("L 1 2 3 4 5", "5 fields, 6 expected"),
            ("G 7f00 how", "an address is not 0x-prefixed hex"),
            ("Q 1 2 3 4 5 99999999999", "timers is not a number"),
        ] {
            let err = parse(line).expect_err(line);
            assert_eq!(err.why, why, "{line}");
        }
        assert!(parse(&"P 1".repeat(2000)).is_err());
    }
}
