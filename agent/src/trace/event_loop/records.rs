//! The loop's records: the 24-byte plain records the loop's hot path writes (raw counter
//! stamps, nothing worked out), and their hand-over to the recorder's consumer in batches
//! ([`LoopBatch`]).

use std::sync::{Arc, Mutex, PoisonError};

use coreplay_shared::event::Event;

use super::consumer::Consumer;
use crate::trace::stamp::Scale;

/// Records a loop thread keeps before handing them over (384 KiB). Each hand-over wakes the
/// consumer's thread, and the loop pays for it: in `scripts/bench.sh`'s per-poll figure,
/// hand-overs of 4 096 records cost the loop 6–11 ns more per poll than hand-overs of 16 384
/// (3 runs each; on this VM waking a thread on the other CPU leaves the virtual machine). A
/// busy loop still hands over at least every 20 ms (`hot::FLUSH_NS`), so a live page follows
/// it as closely as before.
pub(super) const RAW_BATCH: usize = 16_384;

/// Room for records past [`RAW_BATCH`] in a hand-over's buffer. A buffer is handed over only
/// between polls, so it fills past a batch: the rest of the poll under way, and the wakes the
/// runtime hands out before the next. A buffer with no room left would grow, copying itself
/// into fresh memory (seen: with room for exactly one batch that happened on about every
/// other hand-over, 6 % of what tracing cost the loop).
pub(super) const RAW_CAPACITY: usize = RAW_BATCH + 1024;

/// Emptied record buffers a loop's consumer keeps for the loop to fill again.
const MAX_SPARES: usize = 4;

/// Record buffers on their way back from the consumer to the loop thread, so that a
/// hand-over takes one instead of allocating. A buffer the consumer frees goes back to the
/// loop thread's allocator arena, which hands the emptied pages back to the kernel; the next
/// buffer's pages are then mapped and zeroed again one by one as the hot path first writes
/// them (seen in a profile of `io-async`'s traced loop thread: page faults were about 5 % of
/// its samples, and none untraced).
#[derive(Debug, Default)]
pub(super) struct Spares(Mutex<Vec<Vec<Raw>>>);

impl Spares {
    /// An empty buffer with room for a hand-over: a spare if there is one.
    pub(super) fn take(&self) -> Vec<Raw> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(RAW_CAPACITY))
    }

    /// Keeps `raw`, emptied, for the loop to fill again (unless enough are kept already).
    pub(super) fn give(&self, mut raw: Vec<Raw>) {
        if raw.capacity() < RAW_CAPACITY {
            return;
        }
        raw.clear();
        let mut spares = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if spares.len() < MAX_SPARES {
            spares.push(raw);
        }
    }
}

/// The stamp of a wake from outside any poll, which takes the stamp of the next record that
/// has one (the loop's next step): the loop leaves it to the consumer ([`settle`]) rather than
/// looking back for such wakes at each stamp it takes.
pub(super) const PENDING: u64 = u64::MAX;

/// Gives each wake stamped [`PENDING`] the stamp of the next record that has one (a
/// [`Kind::Bind`] has none); those with none after them in the batch, the hand-over's own
/// stamp `handed_at` (the loop's next step).
pub(super) fn settle(raw: &mut [Raw], handed_at: u64) {
    let mut next = handed_at;
    for r in raw.iter_mut().rev() {
        if r.start == PENDING {
            r.start = next;
        } else if r.kind != Kind::Bind {
            next = r.start;
        }
    }
}

/// "No task": the waker field of a wake from outside any poll.
pub(super) const NO_TASK: u64 = u64::MAX;

/// "No task": the waker field of a [`Kind::WakeData`] record from outside any poll.
pub(super) const NO_WAKER: u32 = u32::MAX;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    /// A task was spawned; `flag` is its [`WaitKind`](coreplay_shared::event::WaitKind) (0
    /// I/O, 1 timer).
    Spawn,
    /// A poll from `start` to `end` on `cpu`; `flag` 1 if it returned ready. Written when the
    /// poll starts and completed when it ends.
    Poll,
    /// A wake at `start`; `end` is the task whose poll woke it, or [`NO_TASK`].
    Wake,
    /// A wake through a forwarding waker (see [`super::waker::forward`]) at `start`: `end` is
    /// the runtime's waker data (which [`Kind::Bind`] ties to a task), `task` the task whose
    /// poll woke it, or [`NO_WAKER`].
    WakeData,
    /// From now on the runtime's waker data `end` stands for `task`.
    Bind,
    /// The task was dropped unfinished, at `start`.
    Cancel,
    /// The loop went to wait in the selector at `start`.
    Park,
    /// …and came back at `start`.
    Unpark,
}

/// One record as the loop's hot path writes it: plain data, stamps not yet converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Raw {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) task: u32,
    pub(super) cpu: u16,
    pub(super) kind: Kind,
    pub(super) flag: u8,
}

impl Raw {
    pub(super) fn at(kind: Kind, task: u32, start: u64) -> Raw {
        Raw {
            start,
            end: start,
            task,
            cpu: 0,
            kind,
            flag: 0,
        }
    }
}

/// A loop thread's records on their way to the recorder's consumer.
#[derive(Debug)]
pub struct LoopBatch {
    pub(super) records: Records,
    pub(super) consumer: Arc<Mutex<Consumer>>,
}

/// One hand-over's records and how to read them.
#[derive(Debug)]
pub(super) struct Records {
    /// Its place in the loop's sequence of hand-overs.
    pub(super) seq: u64,
    pub(super) tid: u32,
    pub(super) origin_ns: u64,
    pub(super) depths: bool,
    pub(super) scale: Scale,
    pub(super) raw: Vec<Raw>,
    /// The stamp read when the records were handed over.
    pub(super) handed_at: u64,
    /// Spawned tasks' labels, in the order of their spawn records.
    pub(super) labels: Vec<String>,
}

impl Records {
    /// How many events the records stand for at most (wakes the runtime ignored included).
    pub(super) fn event_count(&self) -> usize {
        let with_depth = if self.depths { 2 } else { 1 };
        self.raw
            .iter()
            .map(|r| match r.kind {
                Kind::Park | Kind::Bind => 0,
                Kind::Spawn | Kind::Wake | Kind::WakeData => 1,
                Kind::Poll | Kind::Cancel | Kind::Unpark => with_depth,
            })
            .sum()
    }
}

impl LoopBatch {
    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.raw.is_empty()
    }

    /// The events, in the order they happened.
    pub fn into_events(self) -> Vec<Event> {
        let mut events = Vec::new();
        self.append_to(&mut events);
        events
    }

    /// Appends the events, in the order they happened, to `out`.
    pub fn append_to(self, out: &mut Vec<Event>) {
        out.reserve(self.records.raw.len() * 2);
        let mut consumer = self.consumer.lock().unwrap_or_else(PoisonError::into_inner);
        consumer.deliver(self.records, out);
    }

    /// Drops the batch (the consumer fell behind), letting the loop's consumer follow it in
    /// its turn so that later batches still come out right; returns how many events it stood
    /// for.
    pub fn discard(self) -> usize {
        let count = self.records.event_count();
        let mut consumer = self.consumer.lock().unwrap_or_else(PoisonError::into_inner);
        consumer.skip(self.records);
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_wakes_take_the_next_stamp() {
        let wake = |start| Raw {
            start,
            end: 7,
            task: 1,
            cpu: 0,
            kind: Kind::WakeData,
            flag: 0,
        };
        let mut raw = vec![
            Raw::at(Kind::Unpark, 0, 10),
            wake(PENDING),
            wake(PENDING),
            Raw::at(Kind::Bind, 1, 0),
            Raw::at(Kind::Poll, 1, 20),
            wake(25),
            wake(PENDING),
        ];
        settle(&mut raw, 30);
        let starts: Vec<u64> = raw.iter().map(|r| r.start).collect();
        // A bind has no time of its own; a wake with nothing after it takes the hand-over's.
        assert_eq!(starts, [10, 20, 20, 0, 20, 25, 30]);
    }

    #[test]
    fn spares_come_back_emptied_and_only_so_many() {
        let spares = Spares::default();
        let mut used = spares.take();
        assert!(used.capacity() >= RAW_CAPACITY && used.is_empty());
        used.push(Raw::at(Kind::Park, 0, 1));
        let at = used.as_ptr();
        spares.give(used);
        let again = spares.take();
        assert_eq!(
            (again.as_ptr(), again.len()),
            (at, 0),
            "the same buffer, emptied"
        );
        // A buffer too small for a hand-over is not kept; past MAX_SPARES none are.
        spares.give(Vec::with_capacity(16));
        assert_ne!(spares.take().capacity(), 16);
        for _ in 0..MAX_SPARES + 2 {
            spares.give(Vec::with_capacity(RAW_CAPACITY));
        }
        assert_eq!(spares.0.lock().map(|s| s.len()).ok(), Some(MAX_SPARES));
    }
}
