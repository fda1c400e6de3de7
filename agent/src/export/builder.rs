//! The Chrome Trace writer: tracks (a name in a process) and their complete events, packed
//! into lanes that do not overlap, instants and counters, written as one JSON object with
//! serde (each event a typed struct).

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    io::{self, Write},
};

use serde::Serialize;
use serde_json::{Value, json, value::RawValue};

/// One complete (`X`) event as written.
#[derive(Serialize)]
struct Complete<'a> {
    name: &'a str,
    cat: &'a str,
    ph: &'static str,
    ts: f64,
    dur: f64,
    pid: u64,
    tid: u64,
    args: &'a RawValue,
}

/// Process id of the synthetic `CPUs` process (above Linux's largest pid, 2^22).
pub const CPUS_PID: u64 = 5_000_000;
/// Process id of the synthetic `tasks` process.
pub const TASKS_PID: u64 = 5_000_001;
pub(super) const CPU_TID_BASE: u64 = 6_000_000;
pub(super) const TASK_TID_BASE: u64 = 7_000_000;
pub(super) const LANE_TID_BASE: u64 = 10_000_000;

/// A complete event before it is placed on a lane.
#[derive(Debug)]
pub(super) struct Span {
    start: u64,
    end: u64,
    name: String,
    cat: &'static str,
    /// The `args` object, already encoded (a `Value` per span costs several times more memory).
    args: Box<RawValue>,
}

/// One logical track: a name in a process; its spans are packed into lanes (thread ids).
#[derive(Debug)]
pub(super) struct Track {
    pid: u64,
    name: String,
    /// The thread id of its first lane.
    tid: u64,
    sort: u64,
    spans: Vec<Span>,
}

/// Assigns thread ids and collects the output.
pub(super) struct Builder {
    pub(super) tracks: Vec<Track>,
    pub(super) by_key: HashMap<TrackKey, usize>,
    next_lane_tid: u64,
    /// Instant and counter events, encoded.
    other: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum TrackKey {
    Thread(u32),
    Sub(u32, Sub),
    Cpu(u32),
    Task(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Sub {
    Compute,
    Lock,
    Loop,
    Requests,
}

impl Sub {
    pub(super) fn label(self) -> &'static str {
        match self {
            Sub::Compute => "compute",
            Sub::Lock => "lock",
            Sub::Loop => "event loop",
            Sub::Requests => "requests",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct ThreadInfo {
    pub(super) pid: u64,
    pub(super) tid: u64,
    pub(super) name: String,
}

pub(super) fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Builder {
    pub(super) fn new() -> Builder {
        Builder {
            tracks: Vec::new(),
            by_key: HashMap::new(),
            next_lane_tid: LANE_TID_BASE,
            other: Vec::new(),
        }
    }

    pub(super) fn fresh_tid(&mut self) -> u64 {
        self.next_lane_tid += 1;
        self.next_lane_tid
    }

    /// The track for `key`, made with `make` (pid, name, tid or none for a fresh one, sort).
    pub(super) fn track(
        &mut self,
        key: TrackKey,
        make: impl FnOnce() -> (u64, String, Option<u64>, u64),
    ) -> usize {
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        let (pid, name, tid, sort) = make();
        let tid = match tid {
            Some(t) => t,
            None => self.fresh_tid(),
        };
        self.tracks.push(Track {
            pid,
            name,
            tid,
            sort,
            spans: Vec::new(),
        });
        self.by_key.insert(key, self.tracks.len() - 1);
        self.tracks.len() - 1
    }

    pub(super) fn span(
        &mut self,
        track: usize,
        start: u64,
        end: u64,
        name: String,
        cat: &'static str,
        args: Value,
    ) {
        self.tracks[track].spans.push(Span {
            start,
            end: end.max(start),
            name,
            cat,
            args: serde_json::value::to_raw_value(&args)
                .unwrap_or_else(|_| RawValue::NULL.to_owned()),
        });
    }

    pub(super) fn instant(
        &mut self,
        track: usize,
        at: u64,
        name: String,
        cat: &'static str,
        args: Value,
    ) {
        let t = &self.tracks[track];
        let v = json!({
            "name": name, "cat": cat, "ph": "i", "s": "t", "ts": us(at),
            "pid": t.pid, "tid": t.tid, "args": args,
        });
        self.push_other(&v);
    }

    pub(super) fn push_other(&mut self, v: &Value) {
        self.other.push(v.to_string());
    }

    /// Writes every track (its spans packed into lanes that do not overlap: Perfetto drops
    /// complete events that overlap on one track without nesting), then `meta` with the
    /// lanes' names and order, then the instants and counters, then `metadata`.
    pub(super) fn write<W: Write>(
        mut self,
        out: &mut W,
        mut meta: Vec<Value>,
        metadata: &Value,
    ) -> io::Result<()> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        let mut first = true;
        let mut sep = |out: &mut W| -> io::Result<()> {
            if !std::mem::take(&mut first) {
                out.write_all(b",\n")?;
            }
            Ok(())
        };
        // Each track's spans, packed into non-overlapping lanes.
        let mut tracks = std::mem::take(&mut self.tracks);
        for track in &mut tracks {
            let mut spans = std::mem::take(&mut track.spans);
            spans.sort_by_key(|s| (s.start, Reverse(s.end)));
            let mut lane_tids = vec![track.tid];
            // (end of the lane's last span, lane index), smallest end first.
            let mut free: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
            for s in spans {
                let lane = match free.peek() {
                    None => 0,
                    Some(&Reverse((end, lane))) if end <= s.start => {
                        free.pop();
                        lane
                    }
                    Some(_) => {
                        lane_tids.push(self.fresh_tid());
                        lane_tids.len() - 1
                    }
                };
                free.push(Reverse((s.end, lane)));
                sep(out)?;
                serde_json::to_writer(
                    &mut *out,
                    &Complete {
                        name: &s.name,
                        cat: s.cat,
                        ph: "X",
                        ts: us(s.start),
                        dur: us(s.end - s.start),
                        pid: track.pid,
                        tid: lane_tids[lane],
                        args: &s.args,
                    },
                )?;
            }
            for (lane, tid) in lane_tids.iter().enumerate() {
                let name = if lane == 0 {
                    track.name.clone()
                } else {
                    format!("{} ({})", track.name, lane + 1)
                };
                meta.push(json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": track.pid, "tid": tid, "args": {"name": name}}));
                meta.push(json!({"name": "thread_sort_index", "ph": "M", "ts": 0, "pid": track.pid, "tid": tid, "args": {"sort_index": track.sort * 64 + lane as u64}}));
            }
        }
        for v in &meta {
            sep(out)?;
            serde_json::to_writer(&mut *out, v)?;
        }
        for v in &self.other {
            sep(out)?;
            out.write_all(v.as_bytes())?;
        }
        out.write_all(b"\n],\"displayTimeUnit\":\"ns\",\"metadata\":")?;
        serde_json::to_writer(&mut *out, metadata)?;
        out.write_all(b"}\n")
    }
}
