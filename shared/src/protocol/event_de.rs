//! The decoder of [`Event`], written out so that it compiles small: one table names every
//! variant's fields and their kinds, one object reader fills the slots of whichever variant it
//! is reading, and one match builds the event. It reads exactly what the encoder writes:
//! `{"on_cpu":{"tid":1,"cpu":0,"start":10,"end":90}}`, fields in any order, unknown fields
//! ignored, a missing optional field `None`, with serde's own messages for an unknown variant
//! and a missing or repeated field.

use crate::json::{FromJson, Reader, Result};
use crate::json_names;

use super::event::{Event, LockOp, OffReason, ProcessEnd, Role, WaitKind, WakeBy};

json_names!(Role {
    Agent = "agent",
    Worker = "worker",
    Client = "client",
    EventLoop = "event_loop",
    Server = "server"
});
json_names!(OffReason {
    Preempted = "preempted",
    Lock = "lock",
    Io = "io",
    Sleep = "sleep",
    Unknown = "unknown"
});
json_names!(LockOp {
    Request = "request",
    DropRequest = "drop_request",
    Acquire = "acquire",
    Release = "release"
});
json_names!(WaitKind {
    Io = "io",
    Timer = "timer",
    Any = "any"
});

/// What one field holds.
#[derive(Clone, Copy)]
enum Kind {
    U32,
    U64,
    OptU64,
    Str,
    Bool,
    Role,
    Off,
    Lock,
    Wait,
    Wake,
    End,
}

/// The most fields any variant has.
const MOST: usize = 6;

/// Every variant, in [`Event`]'s order: its name on the wire, its fields' names (in the order
/// `build` takes them) and their kinds.
const VARIANTS: [(&str, &[&str], &[Kind]); 19] = {
    use Kind::*;
    [
        (
            "process_start",
            &["pid", "at", "name", "role"],
            &[U32, U64, Str, Role],
        ),
        (
            "process_ready",
            &["pid", "at", "startup_ns"],
            &[U32, U64, U64],
        ),
        (
            "process_exit",
            &["pid", "at", "peak_rss_bytes", "end"],
            &[U32, U64, OptU64, End],
        ),
        (
            "thread_start",
            &["tid", "pid", "os_tid", "name", "role", "at"],
            &[U32, U32, U32, Str, Role, U64],
        ),
        ("thread_rename", &["tid", "at", "name"], &[U32, U64, Str]),
        (
            "thread_end",
            &[
                "tid",
                "at",
                "cpu_ns",
                "kernel_voluntary",
                "kernel_involuntary",
            ],
            &[U32, U64, U64, U64, U64],
        ),
        (
            "on_cpu",
            &["tid", "cpu", "start", "end"],
            &[U32, U32, U64, U64],
        ),
        (
            "off_cpu",
            &["tid", "start", "end", "reason"],
            &[U32, U64, U64, Off],
        ),
        (
            "switch",
            &["tid", "at", "voluntary", "involuntary"],
            &[U32, U64, U32, U32],
        ),
        (
            "migrate",
            &["tid", "at", "from", "to"],
            &[U32, U64, U32, U32],
        ),
        ("lock", &["tid", "at", "op"], &[U32, U64, Lock]),
        ("compute", &["tid", "start", "end"], &[U32, U64, U64]),
        (
            "task_spawn",
            &["task", "at", "label", "waits_on"],
            &[U32, U64, Str, Wait],
        ),
        (
            "poll",
            &["task", "tid", "cpu", "start", "end", "ready"],
            &[U32, U32, U32, U64, U64, Bool],
        ),
        ("wake", &["task", "at", "by"], &[U32, U64, Wake]),
        ("task_cancelled", &["task", "at"], &[U32, U64]),
        (
            "loop_wait",
            &["tid", "start", "end", "woken"],
            &[U32, U64, U64, U32],
        ),
        (
            "queue_depth",
            &["at", "ready", "io", "timers"],
            &[U64, U32, U32, U32],
        ),
        (
            "request",
            &["tid", "id", "start", "end"],
            &[U32, U32, U64, U64],
        ),
    ]
};

/// The variants' names, for serde's "expected one of" message.
const NAMES: [&str; 19] = {
    let mut names = [""; 19];
    let mut i = 0;
    while i < VARIANTS.len() {
        names[i] = VARIANTS[i].0;
        i += 1;
    }
    names
};

/// What one variant's fields hold while its object is read: numbers (`u32`, `u64` and `bool`
/// alike) by field position, and the few fields of other kinds, of which a variant has at
/// most one each. Plain values, so that reading a field is a store, not an allocation.
#[derive(Default)]
struct Slots {
    /// Which positions were read (bit `i` for field `i`).
    seen: u8,
    nums: [u64; MOST],
    opt: Option<u64>,
    text: String,
    role: Option<Role>,
    off: Option<OffReason>,
    lock: Option<LockOp>,
    wait: Option<WaitKind>,
    wake: Option<WakeBy>,
    end: Option<ProcessEnd>,
}

/// Builds variant `v` from its slots; a missing field is named (`Err`).
fn build(v: usize, s: &mut Slots) -> std::result::Result<Event, &'static str> {
    let fields = VARIANTS[v].1;
    let (seen, nums) = (s.seen, s.nums);
    // Field `i`'s number (its kind was checked as it was read).
    let num = |i: usize| {
        if seen & (1 << i) == 0 {
            Err(fields[i])
        } else {
            Ok(nums[i])
        }
    };
    let u32_ = |i: usize| num(i).map(|n| n as u32);
    // The variant's one text field, at `i`.
    let mut text = Some(std::mem::take(&mut s.text));
    let mut text = |i: usize| match text.take() {
        Some(t) if seen & (1 << i) != 0 => Ok(t),
        _ => Err(fields[i]),
    };
    // The variant's one field of another kind, named `name`.
    fn one<T>(x: Option<T>, name: &'static str) -> std::result::Result<T, &'static str> {
        x.ok_or(name)
    }
    Ok(match v {
        0 => Event::ProcessStart {
            pid: u32_(0)?,
            at: num(1)?,
            name: text(2)?,
            role: one(s.role, fields[3])?,
        },
        1 => Event::ProcessReady {
            pid: u32_(0)?,
            at: num(1)?,
            startup_ns: num(2)?,
        },
        2 => Event::ProcessExit {
            pid: u32_(0)?,
            at: num(1)?,
            // Absent means not measured, as serde's derive reads a missing `Option`.
            peak_rss_bytes: s.opt,
            end: one(s.end, fields[3])?,
        },
        3 => Event::ThreadStart {
            tid: u32_(0)?,
            pid: u32_(1)?,
            os_tid: u32_(2)?,
            name: text(3)?,
            role: one(s.role, fields[4])?,
            at: num(5)?,
        },
        4 => Event::ThreadRename {
            tid: u32_(0)?,
            at: num(1)?,
            name: text(2)?,
        },
        5 => Event::ThreadEnd {
            tid: u32_(0)?,
            at: num(1)?,
            cpu_ns: num(2)?,
            kernel_voluntary: num(3)?,
            kernel_involuntary: num(4)?,
        },
        6 => Event::OnCpu {
            tid: u32_(0)?,
            cpu: u32_(1)?,
            start: num(2)?,
            end: num(3)?,
        },
        7 => Event::OffCpu {
            tid: u32_(0)?,
            start: num(1)?,
            end: num(2)?,
            reason: one(s.off, fields[3])?,
        },
        8 => Event::Switch {
            tid: u32_(0)?,
            at: num(1)?,
            voluntary: u32_(2)?,
            involuntary: u32_(3)?,
        },
        9 => Event::Migrate {
            tid: u32_(0)?,
            at: num(1)?,
            from: u32_(2)?,
            to: u32_(3)?,
        },
        10 => Event::Lock {
            tid: u32_(0)?,
            at: num(1)?,
            op: one(s.lock, fields[2])?,
        },
        11 => Event::Compute {
            tid: u32_(0)?,
            start: num(1)?,
            end: num(2)?,
        },
        12 => Event::TaskSpawn {
            task: u32_(0)?,
            at: num(1)?,
            label: text(2)?,
            waits_on: one(s.wait, fields[3])?,
        },
        13 => Event::Poll {
            task: u32_(0)?,
            tid: u32_(1)?,
            cpu: u32_(2)?,
            start: num(3)?,
            end: num(4)?,
            ready: num(5)? != 0,
        },
        14 => Event::Wake {
            task: u32_(0)?,
            at: num(1)?,
            by: one(s.wake, fields[2])?,
        },
        15 => Event::TaskCancelled {
            task: u32_(0)?,
            at: num(1)?,
        },
        16 => Event::LoopWait {
            tid: u32_(0)?,
            start: num(1)?,
            end: num(2)?,
            woken: u32_(3)?,
        },
        17 => Event::QueueDepth {
            at: num(0)?,
            ready: u32_(1)?,
            io: u32_(2)?,
            timers: u32_(3)?,
        },
        _ => Event::Request {
            tid: u32_(0)?,
            id: u32_(1)?,
            start: num(2)?,
            end: num(3)?,
        },
    })
}

impl FromJson for Event {
    fn read(r: &mut Reader<'_>) -> Result<Event> {
        let mut event = None;
        r.one_variant("enum Event", &NAMES, &mut |r, v| {
            event = Some(fields(r, v)?);
            Ok(())
        })?;
        event.ok_or_else(|| r.fail("expected a variant of Event"))
    }
}

/// Which variant an event is, by its position in [`VARIANTS`]. Not used to decode: its
/// exhaustive match makes a new variant a compile error here until the table has it.
#[cfg(test)]
fn position(e: &Event) -> usize {
    match e {
        Event::ProcessStart { .. } => 0,
        Event::ProcessReady { .. } => 1,
        Event::ProcessExit { .. } => 2,
        Event::ThreadStart { .. } => 3,
        Event::ThreadRename { .. } => 4,
        Event::ThreadEnd { .. } => 5,
        Event::OnCpu { .. } => 6,
        Event::OffCpu { .. } => 7,
        Event::Switch { .. } => 8,
        Event::Migrate { .. } => 9,
        Event::Lock { .. } => 10,
        Event::Compute { .. } => 11,
        Event::TaskSpawn { .. } => 12,
        Event::Poll { .. } => 13,
        Event::Wake { .. } => 14,
        Event::TaskCancelled { .. } => 15,
        Event::LoopWait { .. } => 16,
        Event::QueueDepth { .. } => 17,
        Event::Request { .. } => 18,
    }
}

/// Reads variant `v`'s object into its slots and builds the event.
fn fields(r: &mut Reader<'_>, v: usize) -> Result<Event> {
    let (_, names, kinds) = VARIANTS[v];
    let mut s = Slots::default();
    r.object("struct variant", &mut |r, key| {
        // Length and first byte rule out nearly every other name before any full comparison.
        let (len, first) = (key.len(), key.as_bytes().first());
        let Some(i) = names
            .iter()
            .position(|n| n.len() == len && n.as_bytes().first() == first && *n == key)
        else {
            return r.skip();
        };
        if s.seen & (1 << i) != 0 {
            return Err(r.fail(format!("duplicate field `{}`", names[i])));
        }
        match kinds[i] {
            Kind::U32 => s.nums[i] = u64::from(r.u32()?),
            Kind::U64 => s.nums[i] = r.u64()?,
            Kind::Bool => s.nums[i] = u64::from(r.bool()?),
            Kind::OptU64 => s.opt = Option::<u64>::read(r)?,
            Kind::Str => s.text = String::read(r)?,
            Kind::Role => s.role = Some(Role::read(r)?),
            Kind::Off => s.off = Some(OffReason::read(r)?),
            Kind::Lock => s.lock = Some(LockOp::read(r)?),
            Kind::Wait => s.wait = Some(WaitKind::read(r)?),
            Kind::Wake => s.wake = Some(WakeBy::read(r)?),
            Kind::End => s.end = Some(ProcessEnd::read(r)?),
        }
        s.seen |= 1 << i;
        Ok(())
    })?;
    build(v, &mut s).map_err(|name| r.missing(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::event::Ns;

    fn ours(json: &str) -> std::result::Result<Event, String> {
        crate::json::from_str::<Event>(json).map_err(|e| e.to_string())
    }

    /// One event of every variant, with every field set apart from its neighbours.
    fn every_variant() -> Vec<Event> {
        let at: Ns = 1_000_000_007;
        vec![
            Event::ProcessStart {
                pid: 1,
                at,
                name: "p \"q\" ü".into(),
                role: Role::Worker,
            },
            Event::ProcessReady {
                pid: 2,
                at,
                startup_ns: 3,
            },
            Event::ProcessExit {
                pid: 3,
                at,
                peak_rss_bytes: Some(u64::MAX),
                end: ProcessEnd::Exited { code: -1 },
            },
            Event::ProcessExit {
                pid: 3,
                at,
                peak_rss_bytes: None,
                end: ProcessEnd::Unknown,
            },
            Event::ProcessExit {
                pid: 3,
                at,
                peak_rss_bytes: None,
                end: ProcessEnd::Signaled { signal: 9 },
            },
            Event::ThreadStart {
                tid: 4,
                pid: 5,
                os_tid: 6,
                name: "t".into(),
                role: Role::Agent,
                at,
            },
            Event::ThreadRename {
                tid: 4,
                at,
                name: "u".into(),
            },
            Event::ThreadEnd {
                tid: 4,
                at,
                cpu_ns: 7,
                kernel_voluntary: 8,
                kernel_involuntary: 9,
            },
            Event::OnCpu {
                tid: 4,
                cpu: 10,
                start: 11,
                end: 12,
            },
            Event::OffCpu {
                tid: 4,
                start: 13,
                end: 14,
                reason: OffReason::Preempted,
            },
            Event::Switch {
                tid: 4,
                at,
                voluntary: 15,
                involuntary: 16,
            },
            Event::Migrate {
                tid: 4,
                at,
                from: 17,
                to: 18,
            },
            Event::Lock {
                tid: 4,
                at,
                op: LockOp::Request,
            },
            Event::Compute {
                tid: 4,
                start: 19,
                end: 20,
            },
            Event::TaskSpawn {
                task: 21,
                at,
                label: "fetch".into(),
                waits_on: WaitKind::Io,
            },
            Event::Poll {
                task: 21,
                tid: 4,
                cpu: 22,
                start: 23,
                end: 24,
                ready: true,
            },
            Event::Wake {
                task: 21,
                at,
                by: WakeBy::Io,
            },
            Event::TaskCancelled { task: 21, at },
            Event::LoopWait {
                tid: 4,
                start: 25,
                end: 26,
                woken: 27,
            },
            Event::QueueDepth {
                at,
                ready: 28,
                io: 29,
                timers: 30,
            },
            Event::Request {
                tid: 4,
                id: 31,
                start: 32,
                end: 33,
            },
        ]
    }

    #[test]
    fn every_variant_reads_back_what_the_encoder_wrote() {
        let events = every_variant();
        let mut seen = [false; 19];
        for e in &events {
            let json = serde_json::to_string(e).expect("encode");
            assert_eq!(ours(&json).as_ref(), Ok(e), "{json}");
            // The table's name for it is the encoder's.
            assert!(
                json.starts_with(&format!("{{\"{}\":", NAMES[position(e)])),
                "{json}"
            );
            seen[position(e)] = true;
        }
        assert!(seen.iter().all(|s| *s), "every variant is tried");
        // A batch, as the page reads them.
        let batch = serde_json::to_string(&events).expect("encode");
        assert_eq!(crate::json::from_str::<Vec<Event>>(&batch), Ok(events));
    }

    #[test]
    fn it_reads_what_serde_s_derive_read_and_refuses_what_it_refused_in_the_same_words() {
        let on_cpu = Event::OnCpu {
            tid: 1,
            cpu: 2,
            start: 3,
            end: 4,
        };
        let read = [
            // Field order, unknown fields (nested too), escaped keys, a missing or null option.
            (
                r#"{"on_cpu":{"end":4,"x":[1,{"a":2}],"start":3,"cpu":2,"tid":1}}"#,
                on_cpu,
            ),
            (
                r#"{"process_exit":{"pid":1,"at":2,"end":"unknown"}}"#,
                Event::ProcessExit {
                    pid: 1,
                    at: 2,
                    peak_rss_bytes: None,
                    end: ProcessEnd::Unknown,
                },
            ),
            (
                r#"{"process_exit":{"pid":1,"at":2,"peak_rss_bytes":null,"end":{"exited":{"code":3}}}}"#,
                Event::ProcessExit {
                    pid: 1,
                    at: 2,
                    peak_rss_bytes: None,
                    end: ProcessEnd::Exited { code: 3 },
                },
            ),
            (
                r#"{"wake":{"t\u0061sk":1,"at":2,"by":"io"}}"#,
                Event::Wake {
                    task: 1,
                    at: 2,
                    by: WakeBy::Io,
                },
            ),
            (
                r#"{"thread_start":{"tid":1,"pid":2,"os_tid":3,"name":"w\u00fc","role":"worker","at":4}}"#,
                Event::ThreadStart {
                    tid: 1,
                    pid: 2,
                    os_tid: 3,
                    name: "wü".into(),
                    role: Role::Worker,
                    at: 4,
                },
            ),
        ];
        for (json, event) in read {
            assert_eq!(ours(json), Ok(event), "{json}");
        }
        let refused = [
            // Missing, repeated, out of range, wrongly typed, unknown.
            (
                r#"{"on_cpu":{"tid":1,"cpu":2,"start":3}}"#,
                "missing field `end`",
            ),
            (
                r#"{"on_cpu":{"tid":1,"tid":1,"cpu":2,"start":3,"end":4}}"#,
                "duplicate field `tid`",
            ),
            (
                r#"{"thread_rename":{"tid":1,"at":2}}"#,
                "missing field `name`",
            ),
            (
                r#"{"on_gpu":{"tid":1}}"#,
                "unknown variant `on_gpu`, expected one of `process_start`",
            ),
            (
                r#"{"on_cpu":{"tid":-1,"cpu":2,"start":3,"end":4}}"#,
                "invalid value: integer `-1`, expected u32",
            ),
            (
                r#"{"on_cpu":{"tid":4294967296,"cpu":2,"start":3,"end":4}}"#,
                "invalid value: integer `4294967296`, expected u32",
            ),
            (
                r#"{"on_cpu":{"tid":1.5,"cpu":2,"start":3,"end":4}}"#,
                "invalid type: floating point `1.5`, expected u32",
            ),
            (
                r#"{"lock":{"tid":1,"at":2,"op":"steal"}}"#,
                "unknown variant `steal`",
            ),
            (
                r#"{"poll":{"task":1,"tid":1,"cpu":2,"start":3,"end":4,"ready":1}}"#,
                "invalid type: integer `1`, expected a boolean",
            ),
            (
                r#"{"process_start":{"pid":1,"at":2,"name":7,"role":"worker"}}"#,
                "invalid type: integer `7`, expected a string",
            ),
            (
                r#""on_cpu""#,
                r#"invalid type: string "on_cpu", expected enum Event"#,
            ),
            (
                r#"{"on_cpu":{"tid":1,"cpu":2,"start":3,"end":4},"compute":{}}"#,
                "expected `}`",
            ),
            (r#"{}"#, "expected a variant of Event"),
            ("[]", "invalid type: sequence, expected enum Event"),
            ("7", "invalid type: integer `7`, expected enum Event"),
            (
                r#"{"on_cpu":{"tid":1,"cpu":2,"start":3,"end":4"#,
                "EOF while parsing an object",
            ),
            // serde's derive also read a variant's fields as an array, which no coreplay
            // writes; this decoder refuses it.
            (
                r#"{"on_cpu":[1,2,3,4]}"#,
                "invalid type: sequence, expected struct variant",
            ),
        ];
        for (json, message) in refused {
            let e = ours(json).expect_err(json);
            assert!(e.starts_with(message), "{json}: {e}");
            assert!(e.contains(" at line 1 column "), "{json}: {e}");
        }
    }
}
