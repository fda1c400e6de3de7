//! The off-loop consumer: [`Consumer`] turns a loop's records into `Event`s on the recorder's
//! consumer thread, working out everything the loop's hot path leaves out — which tasks are
//! queued or parked, which wakes the runtime ignores, the queue depths, stamp conversion —
//! one per loop, kept across that loop's batches and applying them in the order the loop
//! wrote them (dropped ones included).

use std::{
    collections::{BTreeMap, HashMap},
    hash::{BuildHasherDefault, Hasher},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use coreplay_shared::event::{Event, WaitKind, WakeBy};

use super::records::{Kind, NO_TASK, NO_WAKER, Raw, Records, Spares, settle};
use crate::trace::stamp::Scale;

/// Where a task is, as the consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Ready,
    Running,
    Waiting,
    Gone,
}

/// The consumer's side of one loop: the task states and queue depths its records imply.
/// Tasks live in a vector indexed by id (ids of one loop are consecutive).
#[derive(Debug, Default)]
pub(super) struct Consumer {
    base: Option<u32>,
    slots: Vec<(WaitKind, At)>,
    ready: u32,
    io: u32,
    timers: u32,
    /// The open selector wait: its start (run ns) and the wakes counted in it.
    wait: Option<(u64, u32)>,
    /// Which task each runtime waker data stands for (see [`super::waker::forward`]).
    bound: HashMap<u64, u32, BuildHasherDefault<PointerHasher>>,
    /// The sequence number of the next batch to apply: batches are applied in the order the
    /// loop wrote them.
    next: u64,
    /// Batches the consumer never gets (dropped when the channel was full) that wait for the
    /// batches before them, still in the channel, to be applied first.
    waiting: BTreeMap<u64, Records>,
    /// More batches were dropped than can wait: the task states are no longer known, so no
    /// more queue depths are told (they are counted as dropped instead).
    lost: bool,
    /// The run's count of dropped events.
    dropped: Arc<AtomicU64>,
    /// Where applied batches' buffers go back to the loop.
    spares: Arc<Spares>,
}

/// Dropped batches a loop's consumer keeps until the batches before them arrive (each at most
/// [`RAW_CAPACITY`](super::records::RAW_CAPACITY) records: 6.4 MiB in all).
const MAX_WAITING: usize = 16;

/// Hashes the runtime's waker data (addresses the runtime itself chose, so no one can pick
/// colliding keys) with one multiplication instead of SipHash: the consumer looks one up per
/// wake.
#[derive(Debug, Default)]
struct PointerHasher(u64);

impl Hasher for PointerHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // A multiplication carries every bit of n into the high half; folding it down gives
        // the low bits (the table's index) that addresses, aligned, lack.
        let h = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

impl Consumer {
    /// A loop's consumer, counting the events it cannot tell in the run's `dropped`, giving
    /// the buffers of the batches it applied back through `spares`.
    pub(super) fn new(dropped: Arc<AtomicU64>, spares: Arc<Spares>) -> Consumer {
        Consumer {
            dropped,
            spares,
            ..Consumer::default()
        }
    }

    fn slot(&mut self, task: u32) -> Option<&mut (WaitKind, At)> {
        let index = task.checked_sub(self.base?)? as usize;
        self.slots.get_mut(index)
    }

    fn leave(&mut self, kind: WaitKind, at: At) {
        match (at, kind) {
            (At::Ready, _) => self.ready -= 1,
            // An awaiting-anything task counts where asyncio counts it: with the I/O waits.
            (At::Waiting, WaitKind::Io | WaitKind::Any) => self.io -= 1,
            (At::Waiting, WaitKind::Timer) => self.timers -= 1,
            _ => {}
        }
    }

    fn spawn(&mut self, task: u32, kind: WaitKind) {
        let base = *self.base.get_or_insert(task);
        let Some(index) = task.checked_sub(base).map(|i| i as usize) else {
            return;
        };
        if self.slots.len() <= index {
            self.slots.resize(index + 1, (kind, At::Gone));
        }
        self.slots[index] = (kind, At::Ready);
        self.ready += 1;
    }

    /// A wake, unless the task is already queued or finished (the runtime ignores those
    /// too); returns what woke it.
    fn wake(&mut self, task: u32, waker: Option<u32>) -> Option<WakeBy> {
        let slot = self.slot(task)?;
        let (kind, at) = *slot;
        if !matches!(at, At::Waiting | At::Running) {
            return None;
        }
        slot.1 = At::Ready;
        self.leave(kind, at);
        self.ready += 1;
        if let Some((_, woken)) = self.wait.as_mut() {
            *woken += 1;
        }
        Some(match (waker, kind) {
            (Some(task), _) => WakeBy::Task { task },
            (None, WaitKind::Io) => WakeBy::Io,
            (None, WaitKind::Timer) => WakeBy::Timer,
            (None, WaitKind::Any) => WakeBy::Other,
        })
    }

    fn begin_poll(&mut self, task: u32) {
        if let Some(slot) = self.slot(task)
            && slot.1 == At::Ready
        {
            slot.1 = At::Running;
            self.ready -= 1;
        }
    }

    fn end_poll(&mut self, task: u32, ready: bool) {
        let Some(slot) = self.slot(task) else {
            return;
        };
        let (kind, at) = *slot;
        if ready {
            slot.1 = At::Gone;
            self.leave(kind, at);
        } else if at == At::Running {
            // Not re-woken during its own poll: it waits.
            slot.1 = At::Waiting;
            match kind {
                WaitKind::Io | WaitKind::Any => self.io += 1,
                WaitKind::Timer => self.timers += 1,
            }
        }
    }

    fn cancel(&mut self, task: u32) -> bool {
        let Some(slot) = self.slot(task) else {
            return false;
        };
        let (kind, at) = *slot;
        if at == At::Gone {
            return false;
        }
        slot.1 = At::Gone;
        self.leave(kind, at);
        true
    }
}

impl Consumer {
    /// A delivered batch. Every batch before it was delivered or dropped already (the channel
    /// keeps their order, and a batch is dropped before any later one is sent): the dropped
    /// ones waiting for their turn are applied first.
    pub(super) fn deliver(&mut self, records: Records, out: &mut Vec<Event>) {
        while let Some(entry) = self.waiting.first_entry()
            && *entry.key() < records.seq
        {
            let skipped = entry.remove();
            self.apply(skipped, None);
        }
        self.apply(records, Some(out));
        self.apply_waiting();
    }

    /// A dropped batch: applied now if it is next, else kept until the batches before it,
    /// still in the channel, have been.
    pub(super) fn skip(&mut self, records: Records) {
        if records.seq == self.next {
            self.apply(records, None);
            self.apply_waiting();
        } else if self.waiting.len() < MAX_WAITING && !self.lost {
            self.waiting.insert(records.seq, records);
        } else {
            self.lost = true;
            self.waiting.clear();
        }
    }

    /// Applies the dropped batches that are next in turn.
    fn apply_waiting(&mut self) {
        while let Some(entry) = self.waiting.first_entry()
            && *entry.key() == self.next
        {
            let skipped = entry.remove();
            self.apply(skipped, None);
        }
    }

    /// Applies the records, pushing their events to `out` if given.
    fn apply(&mut self, records: Records, out: Option<&mut Vec<Event>>) {
        let Records {
            seq,
            tid,
            origin_ns,
            depths,
            scale,
            mut raw,
            handed_at,
            labels,
        } = records;
        settle(&mut raw, handed_at);
        self.next = self.next.max(seq + 1);
        let state = self;
        let mut sink = Sink {
            tid,
            origin_ns,
            depths: depths && !state.lost,
            unknown_depths: depths && state.lost,
            scale,
            untold: 0,
            out,
        };
        let mut labels = labels.into_iter();
        // The poll whose end is still to come: what happened during it follows its record.
        let mut open: Option<Raw> = None;
        for &r in &raw {
            // Records written during a poll (its wakes, spawns, cancels) are stamped before
            // its end; the first one after it closes it.
            if let Some(poll) = open.take_if(|p| r.start > p.end) {
                sink.close_poll(state, poll);
            }
            let task = r.task;
            match r.kind {
                Kind::Spawn => {
                    let waits_on = if r.flag == 1 {
                        WaitKind::Timer
                    } else {
                        WaitKind::Io
                    };
                    state.spawn(task, waits_on);
                    sink.emit(Event::TaskSpawn {
                        task,
                        at: sink.at(r.start),
                        label: labels.next().unwrap_or_default(),
                        waits_on,
                    });
                }
                Kind::Poll => {
                    state.begin_poll(task);
                    open = Some(r);
                }
                Kind::Bind => {
                    state.bound.insert(r.end, task);
                }
                Kind::Wake | Kind::WakeData => {
                    let (task, waker) = if r.kind == Kind::Wake {
                        (task, (r.end != NO_TASK).then_some(r.end as u32))
                    } else {
                        // A waker of another loop's task: not this loop's to show.
                        let Some(&woken) = state.bound.get(&r.end) else {
                            continue;
                        };
                        (woken, (task != NO_WAKER).then_some(task))
                    };
                    if let Some(by) = state.wake(task, waker) {
                        sink.emit(Event::Wake {
                            task,
                            at: sink.at(r.start),
                            by,
                        });
                    }
                }
                Kind::Cancel => {
                    if state.cancel(task) {
                        let at = sink.at(r.start);
                        sink.emit(Event::TaskCancelled { task, at });
                        sink.depth(state, at);
                    }
                }
                Kind::Park => state.wait = Some((sink.at(r.start), 0)),
                Kind::Unpark => {
                    if let Some((start, woken)) = state.wait.take() {
                        let end = sink.at(r.start);
                        sink.emit(Event::LoopWait {
                            tid,
                            start,
                            end,
                            woken,
                        });
                        sink.depth(state, end);
                    }
                }
            }
        }
        if let Some(poll) = open {
            sink.close_poll(state, poll);
        }
        if sink.untold > 0 {
            state.dropped.fetch_add(sink.untold, Ordering::Relaxed);
        }
        state.spares.give(raw);
    }
}

/// Where a consumer's events go, and how its stamps convert.
struct Sink<'a> {
    tid: u32,
    origin_ns: u64,
    depths: bool,
    /// Depths are traced but no longer known: count them as dropped.
    unknown_depths: bool,
    scale: Scale,
    /// Depth events not told because they are not known.
    untold: u64,
    out: Option<&'a mut Vec<Event>>,
}

impl Sink<'_> {
    /// Run ns of a stamp.
    fn at(&self, ticks: u64) -> u64 {
        self.scale.mono(ticks).saturating_sub(self.origin_ns)
    }

    fn emit(&mut self, event: Event) {
        if let Some(out) = self.out.as_deref_mut() {
            out.push(event);
        }
    }

    /// The queue depths now (only where tasks are traced).
    fn depth(&mut self, state: &Consumer, at: u64) {
        if self.depths {
            self.emit(Event::QueueDepth {
                at,
                ready: state.ready,
                io: state.io,
                timers: state.timers,
            });
        } else if self.unknown_depths {
            self.untold += 1;
        }
    }

    fn close_poll(&mut self, state: &mut Consumer, r: Raw) {
        let ready = r.flag == 1;
        state.end_poll(r.task, ready);
        let end = self.at(r.end);
        self.emit(Event::Poll {
            task: r.task,
            tid: self.tid,
            cpu: u32::from(r.cpu),
            start: self.at(r.start),
            end,
            ready,
        });
        self.depth(state, end);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::trace::event_loop::LoopBatch;

    fn raw(kind: Kind, task: u32, start: u64, end: u64, flag: u8) -> Raw {
        Raw {
            start,
            end,
            task,
            cpu: 1,
            kind,
            flag,
        }
    }

    fn batch(
        seq: u64,
        raw: Vec<Raw>,
        labels: &[&str],
        consumer: &Arc<Mutex<Consumer>>,
    ) -> LoopBatch {
        LoopBatch {
            records: Records {
                seq,
                tid: 7,
                origin_ns: 1_000,
                depths: true,
                scale: Scale::NS,
                raw,
                // No record here waits for the hand-over's stamp.
                handed_at: 0,
                labels: labels.iter().map(|l| l.to_string()).collect(),
            },
            consumer: Arc::clone(consumer),
        }
    }

    fn depths_in(events: &[Event]) -> Vec<(u64, u32, u32)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::QueueDepth { at, ready, io, .. } => Some((*at, *ready, *io)),
                _ => None,
            })
            .collect()
    }

    fn wakes_in(events: &[Event]) -> Vec<&Event> {
        events
            .iter()
            .filter(|e| matches!(e, Event::Wake { .. }))
            .collect()
    }

    /// The records of a timer task (spawn, a pending poll, the selector wait its timer ends,
    /// a wake, its cancellation) become those events, with the queue depths they imply.
    #[test]
    fn records_become_the_events_they_stand_for() {
        let consumer = Arc::default();
        let events = batch(
            0,
            vec![
                raw(Kind::Spawn, 3, 1_100, 1_100, 1),
                raw(Kind::Poll, 3, 1_200, 1_500, 0),
                raw(Kind::Park, 0, 1_600, 1_600, 0),
                raw(Kind::Wake, 3, 2_600, NO_TASK, 0),
                // The runtime passes the same wake on twice: only the first counts.
                raw(Kind::Wake, 3, 2_600, NO_TASK, 0),
                raw(Kind::Unpark, 0, 2_600, 2_600, 0),
                raw(Kind::Cancel, 3, 2_700, 2_700, 0),
            ],
            &["ticker"],
            &consumer,
        )
        .into_events();
        assert_eq!(
            events,
            vec![
                Event::TaskSpawn {
                    task: 3,
                    at: 100,
                    label: "ticker".into(),
                    waits_on: WaitKind::Timer
                },
                Event::Poll {
                    task: 3,
                    tid: 7,
                    cpu: 1,
                    start: 200,
                    end: 500,
                    ready: false
                },
                Event::QueueDepth {
                    at: 500,
                    ready: 0,
                    io: 0,
                    timers: 1
                },
                Event::Wake {
                    task: 3,
                    at: 1_600,
                    by: WakeBy::Timer
                },
                Event::LoopWait {
                    tid: 7,
                    start: 600,
                    end: 1_600,
                    woken: 1
                },
                Event::QueueDepth {
                    at: 1_600,
                    ready: 1,
                    io: 0,
                    timers: 0
                },
                Event::TaskCancelled { task: 3, at: 1_700 },
                Event::QueueDepth {
                    at: 1_700,
                    ready: 0,
                    io: 0,
                    timers: 0
                },
            ]
        );
    }

    /// What happens inside a poll follows its record; a task woken during a poll (its own
    /// or another's) stays queued when that poll ends; a dropped batch still moves the consumer
    /// on, so the next batch's depths are right.
    #[test]
    fn wakes_inside_polls_and_dropped_batches_keep_the_queue_right() {
        let consumer = Arc::default();
        // Task 1 spawns task 2 and wakes itself (a yield).
        let dropped = batch(
            0,
            vec![
                raw(Kind::Spawn, 1, 1_100, 1_100, 0),
                raw(Kind::Poll, 1, 1_200, 1_400, 0),
                raw(Kind::Spawn, 2, 1_250, 1_250, 0),
                raw(Kind::Wake, 1, 1_300, 1, 0),
            ],
            &["a", "b"],
            &consumer,
        );
        assert_eq!(
            dropped.discard(),
            5,
            "two spawns, a wake, a poll and its depth"
        );
        // Task 2 finishes in its first poll; task 1 is woken by task 2 during its next poll.
        let events = batch(
            1,
            vec![
                raw(Kind::Poll, 2, 1_500, 1_600, 1),
                raw(Kind::Poll, 1, 1_700, 1_800, 0),
                raw(Kind::Wake, 1, 1_750, 2, 0),
                // Already queued: the runtime ignores it, and so does the consumer.
                raw(Kind::Wake, 1, 1_790, 1, 0),
            ],
            &[],
            &consumer,
        )
        .into_events();
        let wakes = wakes_in(&events);
        assert_eq!(
            wakes,
            vec![&Event::Wake {
                task: 1,
                at: 750,
                by: WakeBy::Task { task: 2 }
            }]
        );
        assert_eq!(depths_in(&events), vec![(600, 1, 0), (800, 1, 0)]);
    }

    /// A batch dropped while the one before it is still in the channel waits for it: the
    /// consumer applies batches in the order the loop wrote them. Past [`MAX_WAITING`] dropped
    /// batches the states are lost, and no more depths are told.
    #[test]
    fn dropped_batches_are_replayed_in_their_turn() {
        let consumer = Arc::default();
        // 0: task 1 spawned and parked on I/O. 1 (dropped first): it is woken. 2: task 2 is
        // spawned and polled.
        let first = batch(
            0,
            vec![
                raw(Kind::Spawn, 1, 1_100, 1_100, 0),
                raw(Kind::Poll, 1, 1_200, 1_300, 0),
            ],
            &["one"],
            &consumer,
        );
        let second = batch(
            1,
            vec![raw(Kind::Wake, 1, 1_400, NO_TASK, 0)],
            &[],
            &consumer,
        );
        assert_eq!(second.discard(), 1);
        assert_eq!(depths_in(&first.into_events()), vec![(300, 0, 1)]);
        let third = batch(
            2,
            vec![
                raw(Kind::Spawn, 2, 1_500, 1_500, 0),
                raw(Kind::Poll, 2, 1_600, 1_700, 0),
            ],
            &["two"],
            &consumer,
        );
        // Task 1 is queued (its wake was dropped, not undone), task 2 parked.
        assert_eq!(depths_in(&third.into_events()), vec![(700, 1, 1)]);

        // Too many dropped batches waiting (the one before them never arrives in time).
        for seq in 4..5 + MAX_WAITING as u64 {
            let lost = batch(
                seq,
                vec![raw(Kind::Wake, 2, 1_800, NO_TASK, 0)],
                &[],
                &consumer,
            );
            assert_eq!(lost.discard(), 1);
        }
        let late =
            batch(3, vec![raw(Kind::Poll, 1, 1_900, 2_000, 1)], &[], &consumer).into_events();
        assert!(
            matches!(late.as_slice(), [Event::Poll { task: 1, .. }]),
            "{late:?}"
        );
        // The depth not told is counted as dropped.
        let dropped = consumer
            .lock()
            .map(|r| r.dropped.load(Ordering::Relaxed))
            .unwrap_or_default();
        assert_eq!(dropped, 1);
    }

    /// Wakes through forwarding wakers name the runtime's waker data; the consumer maps it
    /// to the task bound to it, and ignores data no task of this loop was bound to.
    #[test]
    fn forwarded_wakes_are_bound_to_their_task() {
        let consumer = Arc::default();
        let events = batch(
            0,
            vec![
                raw(Kind::Spawn, 4, 1_100, 1_100, 0),
                raw(Kind::Spawn, 5, 1_100, 1_100, 0),
                raw(Kind::Bind, 4, 0, 0xa0, 0),
                raw(Kind::Poll, 4, 1_200, 1_300, 0),
                raw(Kind::Bind, 5, 0, 0xb0, 0),
                raw(Kind::Poll, 5, 1_400, 1_500, 0),
                // Task 5's poll wakes task 4; then the selector wakes task 5, and a waker of
                // some other loop's task is passed on here.
                raw(Kind::WakeData, 5, 1_450, 0xa0, 0),
                raw(Kind::Park, 0, 1_600, 1_600, 0),
                raw(Kind::WakeData, NO_WAKER, 1_900, 0xb0, 0),
                raw(Kind::WakeData, NO_WAKER, 1_900, 0xc0, 0),
                raw(Kind::Unpark, 0, 1_900, 1_900, 0),
            ],
            &["four", "five"],
            &consumer,
        )
        .into_events();
        let wakes = wakes_in(&events);
        assert_eq!(
            wakes,
            vec![
                &Event::Wake {
                    task: 4,
                    at: 450,
                    by: WakeBy::Task { task: 5 }
                },
                &Event::Wake {
                    task: 5,
                    at: 900,
                    by: WakeBy::Io
                }
            ]
        );
        assert!(events.contains(&Event::LoopWait {
            tid: 7,
            start: 600,
            end: 900,
            woken: 1
        }));
    }
}
