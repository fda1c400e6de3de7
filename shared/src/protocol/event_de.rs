//! [`Event`]'s decoder, written out so that it compiles small. serde's derived decoder
//! compiled a map visitor and a sequence visitor (an array form nobody sends) per variant, each
//! with its own field matcher: 55 kB of the page's WebAssembly. Here one table names every
//! variant's fields and their kinds, one map visitor fills the slots of whichever variant it is
//! reading, and one match builds the event. It reads exactly what the encoder writes:
//! `{"on_cpu":{"tid":1,"cpu":0,"start":10,"end":90}}`, fields in any order, unknown fields
//! ignored, a missing optional field `None`, with serde's own messages for an unknown variant
//! and a missing or repeated field.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, VariantAccess, Visitor,
};

use super::event::{Event, LockOp, OffReason, ProcessEnd, Role, WaitKind, WakeBy};

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

/// One field's decoded value.
enum Value {
    U32(u32),
    U64(u64),
    OptU64(Option<u64>),
    Str(String),
    Bool(bool),
    Role(Role),
    Off(OffReason),
    Lock(LockOp),
    Wait(WaitKind),
    Wake(WakeBy),
    End(ProcessEnd),
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

/// The slots of one variant's fields while its object is read.
type Slots = [Option<Value>; MOST];

/// Builds variant `v` from its slots; a missing field is named (`Err`).
fn build(v: usize, s: &mut Slots) -> Result<Event, &'static str> {
    let fields = VARIANTS[v].1;
    // Each getter takes slot `i`, which the map visitor filled with the kind the table names.
    let u32_ = |s: &mut Slots, i: usize| match s[i].take() {
        Some(Value::U32(x)) => Ok(x),
        _ => Err(fields[i]),
    };
    let u64_ = |s: &mut Slots, i: usize| match s[i].take() {
        Some(Value::U64(x)) => Ok(x),
        _ => Err(fields[i]),
    };
    let str_ = |s: &mut Slots, i: usize| match s[i].take() {
        Some(Value::Str(x)) => Ok(x),
        _ => Err(fields[i]),
    };
    let role = |s: &mut Slots, i: usize| match s[i].take() {
        Some(Value::Role(x)) => Ok(x),
        _ => Err(fields[i]),
    };
    Ok(match v {
        0 => Event::ProcessStart {
            pid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            name: str_(s, 2)?,
            role: role(s, 3)?,
        },
        1 => Event::ProcessReady {
            pid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            startup_ns: u64_(s, 2)?,
        },
        2 => Event::ProcessExit {
            pid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            // Absent means not measured, as serde's derive reads a missing `Option`.
            peak_rss_bytes: match s[2].take() {
                Some(Value::OptU64(x)) => x,
                _ => None,
            },
            end: match s[3].take() {
                Some(Value::End(x)) => x,
                _ => return Err(fields[3]),
            },
        },
        3 => Event::ThreadStart {
            tid: u32_(s, 0)?,
            pid: u32_(s, 1)?,
            os_tid: u32_(s, 2)?,
            name: str_(s, 3)?,
            role: role(s, 4)?,
            at: u64_(s, 5)?,
        },
        4 => Event::ThreadRename {
            tid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            name: str_(s, 2)?,
        },
        5 => Event::ThreadEnd {
            tid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            cpu_ns: u64_(s, 2)?,
            kernel_voluntary: u64_(s, 3)?,
            kernel_involuntary: u64_(s, 4)?,
        },
        6 => Event::OnCpu {
            tid: u32_(s, 0)?,
            cpu: u32_(s, 1)?,
            start: u64_(s, 2)?,
            end: u64_(s, 3)?,
        },
        7 => Event::OffCpu {
            tid: u32_(s, 0)?,
            start: u64_(s, 1)?,
            end: u64_(s, 2)?,
            reason: match s[3].take() {
                Some(Value::Off(x)) => x,
                _ => return Err(fields[3]),
            },
        },
        8 => Event::Switch {
            tid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            voluntary: u32_(s, 2)?,
            involuntary: u32_(s, 3)?,
        },
        9 => Event::Migrate {
            tid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            from: u32_(s, 2)?,
            to: u32_(s, 3)?,
        },
        10 => Event::Lock {
            tid: u32_(s, 0)?,
            at: u64_(s, 1)?,
            op: match s[2].take() {
                Some(Value::Lock(x)) => x,
                _ => return Err(fields[2]),
            },
        },
        11 => Event::Compute {
            tid: u32_(s, 0)?,
            start: u64_(s, 1)?,
            end: u64_(s, 2)?,
        },
        12 => Event::TaskSpawn {
            task: u32_(s, 0)?,
            at: u64_(s, 1)?,
            label: str_(s, 2)?,
            waits_on: match s[3].take() {
                Some(Value::Wait(x)) => x,
                _ => return Err(fields[3]),
            },
        },
        13 => Event::Poll {
            task: u32_(s, 0)?,
            tid: u32_(s, 1)?,
            cpu: u32_(s, 2)?,
            start: u64_(s, 3)?,
            end: u64_(s, 4)?,
            ready: match s[5].take() {
                Some(Value::Bool(x)) => x,
                _ => return Err(fields[5]),
            },
        },
        14 => Event::Wake {
            task: u32_(s, 0)?,
            at: u64_(s, 1)?,
            by: match s[2].take() {
                Some(Value::Wake(x)) => x,
                _ => return Err(fields[2]),
            },
        },
        15 => Event::TaskCancelled {
            task: u32_(s, 0)?,
            at: u64_(s, 1)?,
        },
        16 => Event::LoopWait {
            tid: u32_(s, 0)?,
            start: u64_(s, 1)?,
            end: u64_(s, 2)?,
            woken: u32_(s, 3)?,
        },
        17 => Event::QueueDepth {
            at: u64_(s, 0)?,
            ready: u32_(s, 1)?,
            io: u32_(s, 2)?,
            timers: u32_(s, 3)?,
        },
        _ => Event::Request {
            tid: u32_(s, 0)?,
            id: u32_(s, 1)?,
            start: u64_(s, 2)?,
            end: u64_(s, 3)?,
        },
    })
}

impl<'de> de::Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        d.deserialize_enum("Event", &NAMES, EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Event, A::Error> {
        let strict = Names {
            list: &NAMES,
            strict: true,
        };
        let (v, variant) = data.variant_seed(strict)?;
        // A strict `Names` answers a position or an error.
        let v = v.ok_or_else(|| de::Error::unknown_variant("", &NAMES))?;
        variant.struct_variant(VARIANTS[v].1, Fields(v))
    }
}

/// Reads an identifier as its position in a list of names. An unknown name is an error when
/// `strict` (variants); otherwise `None` (fields: ignored, as serde's derive does).
#[derive(Clone, Copy)]
struct Names {
    list: &'static [&'static str],
    strict: bool,
}

impl<'de> DeserializeSeed<'de> for Names {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Names {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Option<usize>, E> {
        match self.list.iter().position(|n| *n == name) {
            Some(i) => Ok(Some(i)),
            None if self.strict => Err(E::unknown_variant(name, self.list)),
            None => Ok(None),
        }
    }
}

/// Reads variant `.0`'s object into its slots and builds the event.
struct Fields(usize);

impl<'de> Visitor<'de> for Fields {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the fields of a `{}` event", VARIANTS[self.0].0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let (_, names, kinds) = VARIANTS[self.0];
        let mut slots: Slots = Default::default();
        while let Some(key) = map.next_key_seed(Names {
            list: names,
            strict: false,
        })? {
            let Some(i) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if slots[i].is_some() {
                return Err(de::Error::duplicate_field(names[i]));
            }
            slots[i] = Some(map.next_value_seed(kinds[i])?);
        }
        build(self.0, &mut slots).map_err(de::Error::missing_field)
    }
}

impl<'de> DeserializeSeed<'de> for Kind {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        use serde::Deserialize as _;
        Ok(match self {
            Kind::U32 => Value::U32(u32::deserialize(d)?),
            Kind::U64 => Value::U64(u64::deserialize(d)?),
            Kind::OptU64 => Value::OptU64(Option::<u64>::deserialize(d)?),
            Kind::Str => Value::Str(String::deserialize(d)?),
            Kind::Bool => Value::Bool(bool::deserialize(d)?),
            Kind::Role => Value::Role(Role::deserialize(d)?),
            Kind::Off => Value::Off(OffReason::deserialize(d)?),
            Kind::Lock => Value::Lock(LockOp::deserialize(d)?),
            Kind::Wait => Value::Wait(WaitKind::deserialize(d)?),
            Kind::Wake => Value::Wake(WakeBy::deserialize(d)?),
            Kind::End => Value::End(ProcessEnd::deserialize(d)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::event::Ns;

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
        // Every variant is covered, in the table's order.
        let mut names: Vec<String> = Vec::new();
        for e in &events {
            let json = serde_json::to_string(e).expect("encode");
            let back: Event = serde_json::from_str(&json).expect(&json);
            assert_eq!(&back, e, "{json}");
            let name = json[2..].split('"').next().unwrap_or_default().to_string();
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        assert_eq!(names, NAMES);
        // Also from an already parsed tree, and in a list.
        let tree = serde_json::to_value(&events).expect("encode");
        assert_eq!(
            serde_json::from_value::<Vec<Event>>(tree).expect("decode"),
            events
        );
    }

    #[test]
    fn field_order_unknown_fields_and_a_missing_option_are_read_as_serde_reads_them() {
        let e: Event = serde_json::from_str(
            r#"{"on_cpu":{"end":4,"x":[1,{"a":2}],"start":3,"cpu":2,"tid":1}}"#,
        )
        .expect("decode");
        assert_eq!(
            e,
            Event::OnCpu {
                tid: 1,
                cpu: 2,
                start: 3,
                end: 4
            }
        );
        let e: Event = serde_json::from_str(r#"{"process_exit":{"pid":1,"at":2,"end":"unknown"}}"#)
            .expect("decode");
        assert_eq!(
            e,
            Event::ProcessExit {
                pid: 1,
                at: 2,
                peak_rss_bytes: None,
                end: ProcessEnd::Unknown
            }
        );
        let e: Event = serde_json::from_str(
            r#"{"process_exit":{"pid":1,"at":2,"peak_rss_bytes":null,"end":"unknown"}}"#,
        )
        .expect("decode");
        assert_eq!(
            e,
            Event::ProcessExit {
                pid: 1,
                at: 2,
                peak_rss_bytes: None,
                end: ProcessEnd::Unknown
            }
        );
        // An escaped key is still the key.
        let e: Event =
            serde_json::from_str(r#"{"wake":{"t\u0061sk":1,"at":2,"by":"io"}}"#).expect("decode");
        assert_eq!(
            e,
            Event::Wake {
                task: 1,
                at: 2,
                by: WakeBy::Io
            }
        );
    }

    #[test]
    fn bad_events_are_refused_with_serde_s_messages() {
        let err = |json: &str| {
            serde_json::from_str::<Event>(json)
                .expect_err(json)
                .to_string()
        };
        assert!(err(r#"{"on_cpu":{"tid":1,"cpu":2,"start":3}}"#).contains("missing field `end`"));
        assert!(
            err(r#"{"on_cpu":{"tid":1,"tid":1,"cpu":2,"start":3,"end":4}}"#)
                .contains("duplicate field `tid`")
        );
        assert!(
            err(r#"{"on_gpu":{"tid":1}}"#)
                .contains("unknown variant `on_gpu`, expected one of `process_start`")
        );
        assert!(
            err(r#"{"on_cpu":{"tid":-1,"cpu":2,"start":3,"end":4}}"#)
                .contains("invalid value: integer `-1`")
        );
        assert!(
            err(r#"{"on_cpu":{"tid":4294967296,"cpu":2,"start":3,"end":4}}"#)
                .contains("invalid value")
        );
        assert!(
            err(r#"{"lock":{"tid":1,"at":2,"op":"steal"}}"#).contains("unknown variant `steal`")
        );
        assert!(
            err(r#"{"poll":{"task":1,"tid":1,"cpu":2,"start":3,"end":4,"ready":1}}"#)
                .contains("invalid type")
        );
        assert!(err(r#"{"on_cpu":[1,2,3,4]}"#).contains("invalid type"));
        assert!(err(r#""on_cpu""#).contains("invalid type"));
        assert!(
            err(r#"{"on_cpu":{"tid":1,"cpu":2,"start":3,"end":4},"compute":{}}"#)
                .contains("expected")
        );
        let e = err("[]");
        assert!(
            e.contains("expected value") || e.contains("invalid type"),
            "{e}"
        );
    }
}
