//! The replay model's unit tests: hand-made events in, facts out.

use super::*;
use crate::{
    event::{Event, LockOp, OffReason, Role, WaitKind, WakeBy},
    testkit::{lock, off, on, thread_start},
};

fn start(tid: u32, pid: u32, name: &str) -> Event {
    thread_start(tid, pid, name, 0)
}

/// Two cores, three threads: t1 on cpu0 is preempted by t3 at 100 and comes back at 200;
/// t2 runs on cpu1, sleeps from 150 to 250, then migrates to cpu0 at 300.
fn two_cores() -> Replay {
    let mut r = Replay::new();
    // Deliberately out of order, as per-thread buffers flush.
    let events = vec![
        on(2, 1, 0, 150),
        off(2, 150, 250, OffReason::Sleep),
        on(2, 1, 250, 280),
        on(2, 0, 300, 400),
        start(1, 10, "w1"),
        start(2, 10, "w2"),
        start(3, 11, "other"),
        on(1, 0, 0, 100),
        off(1, 100, 200, OffReason::Preempted),
        on(1, 0, 200, 300),
        on(3, 0, 100, 200),
        Event::ThreadEnd {
            tid: 3,
            at: 210,
            cpu_ns: 100,
            kernel_voluntary: 1,
            kernel_involuntary: 0,
        },
    ];
    r.extend(&events);
    r.prepare();
    r
}

fn cpu(frames: &[CpuFrame], cpu: u32) -> &CpuFrame {
    frames.iter().find(|f| f.cpu == cpu).expect("cpu present")
}

#[test]
fn right_thread_on_right_core() {
    let r = two_cores();
    let f = r.cpus_at(50);
    assert_eq!(cpu(&f, 0).running, Some((1, 0)));
    assert_eq!(cpu(&f, 1).running, Some((2, 0)));
    let f = r.cpus_at(120);
    assert_eq!(cpu(&f, 0).running, Some((3, 100)));
    let f = r.cpus_at(200);
    assert_eq!(cpu(&f, 0).running, Some((1, 200)));
    assert_eq!(cpu(&f, 1).running, None, "t2 sleeps");
    assert_eq!(r.thread_state(2, 200), ThreadState::Off(OffReason::Sleep));
    let f = r.cpus_at(350);
    assert_eq!(cpu(&f, 0).running, Some((2, 300)));
    assert_eq!(cpu(&f, 0).migrated_from, Some(1));
    assert_eq!(r.thread_state(3, 250), ThreadState::Ended);
    assert_eq!(
        r.thread_state(1, 150),
        ThreadState::Off(OffReason::Preempted)
    );
}

#[test]
fn preempted_thread_queues_at_its_core_and_switch_kinds_differ() {
    let r = two_cores();
    let f = r.cpus_at(150);
    let c0 = cpu(&f, 0);
    assert_eq!(
        c0.queue,
        vec![1],
        "t1 was preempted on cpu0 and waits for it"
    );
    let out = c0.last_out.expect("a hand-over happened");
    assert_eq!((out.tid, out.at), (1, 100));
    assert!(out.involuntary());
    let f = r.cpus_at(260);
    let c1 = cpu(&f, 1);
    assert_eq!(c1.running, Some((2, 250)));
    let out = c1.last_out.expect("t2 left cpu1 at 150");
    assert_eq!(out.reason, Some(OffReason::Sleep));
    assert!(!out.involuntary());
}

#[test]
fn counters_count_switches_and_busy_time() {
    let r = two_cores();
    let f = r.cpus_at(250);
    let c0 = cpu(&f, 0);
    assert_eq!(c0.switches, 3, "t1, t3, t1 again");
    assert_eq!(c0.busy_ns, 100 + 100 + 50);
    let c1 = cpu(&f, 1);
    assert_eq!(c1.switches, 2);
    assert_eq!(c1.busy_ns, 150);
    let f = r.cpus_at(0);
    assert_eq!(cpu(&f, 0).busy_ns, 0);
    assert_eq!(cpu(&f, 0).switches, 1);
}

#[test]
fn slices_window_and_stepping() {
    let r = two_cores();
    let s: Vec<u32> = r.slices(0, 150, 320).iter().map(|s| s.tid).collect();
    assert_eq!(s, vec![3, 1, 2]);
    assert!(r.slices(7, 0, 100).is_empty());
    assert_eq!(r.next_change(0), Some(100));
    assert_eq!(r.next_change(100), Some(150));
    assert_eq!(r.prev_change(150), Some(100));
    assert_eq!(r.prev_change(0), None);
    let mut t = 0;
    let mut steps = 0;
    while let Some(n) = r.next_change(t) {
        assert!(n > t);
        t = n;
        steps += 1;
    }
    assert_eq!(t, 400);
    assert_eq!(steps, 8, "100 150 200 210 (t3 ends) 250 280 300 400");
}

#[test]
fn lock_holder_and_waiters() {
    let mut r = Replay::new();
    r.extend(&[
        start(1, 1, "a"),
        start(2, 1, "b"),
        start(3, 1, "c"),
        lock(1, 0, LockOp::Request),
        lock(1, 0, LockOp::Acquire),
        lock(2, 10, LockOp::Request),
        lock(3, 20, LockOp::Request),
        lock(2, 60, LockOp::DropRequest),
        lock(1, 70, LockOp::Release),
        lock(2, 70, LockOp::Acquire),
        lock(1, 71, LockOp::Request),
    ]);
    r.prepare();
    let one = |r: &Replay, t| {
        let mut locks = r.locks_at(t);
        assert_eq!(locks.len(), 1, "one process, one lock");
        locks.remove(0)
    };
    let f = one(&r, 30);
    assert_eq!((f.pid, f.holder), (1, Some((1, 0))));
    assert_eq!(f.waiters, vec![2, 3]);
    assert!(!f.drop_requested);
    let f = one(&r, 65);
    assert!(f.drop_requested);
    let f = one(&r, 70);
    assert_eq!(f.holder, Some((2, 70)));
    assert_eq!(f.waiters, vec![3]);
    assert_eq!(f.handovers, 1);
    let f = one(&r, 80);
    assert_eq!(f.waiters, vec![3, 1]);
    assert!(two_cores().locks_at(10).is_empty());
}

/// Each process has its own lock: two processes' holders at once, hand-overs counted
/// apart (a process pool was once drawn as one lock "held by proc-15 · 15 hand-overs").
#[test]
fn each_process_has_its_own_lock() {
    let mut r = Replay::new();
    r.extend(&[
        start(1, 100, "p1-a"),
        start(2, 100, "p1-b"),
        start(3, 200, "p2-a"),
        lock(1, 0, LockOp::Request),
        lock(1, 0, LockOp::Acquire),
        lock(3, 5, LockOp::Request),
        lock(3, 5, LockOp::Acquire),
        lock(2, 10, LockOp::Request),
        lock(1, 20, LockOp::Release),
        lock(2, 20, LockOp::Acquire),
    ]);
    r.prepare();
    let locks = r.locks_at(15);
    assert_eq!(locks.len(), 2);
    assert_eq!((locks[0].pid, locks[0].holder), (100, Some((1, 0))));
    assert_eq!(locks[0].waiters, vec![2]);
    assert_eq!((locks[1].pid, locks[1].holder), (200, Some((3, 5))));
    assert!(locks[1].waiters.is_empty());
    let locks = r.locks_at(25);
    assert_eq!((locks[0].handovers, locks[1].handovers), (1, 0));
}

/// A thread is in exactly one state, and the lock's waiters are the threads waiting for
/// it: a waiter on a CPU or queued for one is there, not also in the lock's list; a
/// waiter whose off-CPU span says it sleeps waits for the lock; a holder is never shown
/// waiting for it.
#[test]
fn lock_waiters_and_thread_states_agree() {
    let mut r = Replay::new();
    r.extend(&[
        start(1, 1, "holder"),
        start(2, 1, "asleep-waiter"),
        start(3, 1, "running-waiter"),
        start(4, 1, "queued-waiter"),
        lock(1, 0, LockOp::Acquire),
        lock(2, 1, LockOp::Request),
        lock(3, 1, LockOp::Request),
        lock(4, 1, LockOp::Request),
        on(1, 0, 0, 100),
        // The holder's last wait for the lock is stamped as ending just after it took it.
        off(1, 100, 102, OffReason::Lock),
        off(2, 1, 100, OffReason::Sleep),
        on(3, 1, 1, 100),
        off(4, 1, 100, OffReason::Preempted),
    ]);
    r.prepare();
    let states = r.thread_states(50);
    assert_eq!(
        states,
        vec![
            ThreadState::Running { cpu: 0 },
            ThreadState::Off(OffReason::Lock),
            ThreadState::Running { cpu: 1 },
            ThreadState::Off(OffReason::Preempted),
        ]
    );
    assert_eq!(r.locks_at(50)[0].waiters, vec![2]);
    // The holder off the CPU with a lock-wait span it no longer has: not waiting.
    assert_eq!(r.thread_state(1, 101), ThreadState::Between);
}

#[test]
fn event_loop_queue_and_parked_sets() {
    let mut r = Replay::new();
    let spawn = |task, at, waits_on| Event::TaskSpawn {
        task,
        at,
        label: format!("req-{task}"),
        waits_on,
    };
    let poll = |task, start, end, ready| Event::Poll {
        task,
        tid: 1,
        cpu: 0,
        start,
        end,
        ready,
    };
    r.extend(&[
        spawn(1, 0, WaitKind::Io),
        spawn(2, 1, WaitKind::Io),
        spawn(3, 2, WaitKind::Timer),
        poll(1, 10, 20, false),
        poll(2, 20, 30, false),
        poll(3, 30, 40, false),
        Event::LoopWait {
            tid: 1,
            start: 40,
            end: 90,
            woken: 1,
        },
        Event::Wake {
            task: 2,
            at: 90,
            by: WakeBy::Io,
        },
        poll(2, 95, 99, true),
        // Woken while being polled: it stays ready.
        Event::Wake {
            task: 1,
            at: 100,
            by: WakeBy::Task { task: 1 },
        },
        poll(1, 100, 105, false),
        Event::Wake {
            task: 1,
            at: 102,
            by: WakeBy::Task { task: 1 },
        },
    ]);
    r.prepare();
    let f = r.loop_at(5, 10).expect("has a loop");
    assert_eq!(f.ready, vec![1, 2, 3], "FIFO by wake time");
    let f = r.loop_at(25, 10).expect("has a loop");
    assert_eq!(f.running, Some((2, 20)));
    assert_eq!(f.ready, vec![3]);
    assert_eq!(f.count(TaskState::ParkedIo), 1);
    let f = r.loop_at(50, 10).expect("has a loop");
    assert_eq!(f.waiting, Some((40, 1)));
    assert_eq!(f.count(TaskState::ParkedIo), 2);
    assert_eq!(f.count(TaskState::ParkedTimer), 1);
    assert_eq!(f.samples[&TaskState::ParkedIo], vec![1, 2]);
    let f = r.loop_at(92, 10).expect("has a loop");
    assert_eq!(f.ready, vec![2]);
    assert_eq!(f.last_wait, Some((50, 1)));
    let f = r.loop_at(110, 10).expect("has a loop");
    assert_eq!(f.count(TaskState::Done), 1);
    assert_eq!(f.ready, vec![1], "woken during its own poll");
    assert_eq!(f.polls, 5);
    // Stepping stops at every task's change too: the spawns at 1 and 2 are nothing else's.
    assert_eq!(r.next_loop_change(0), Some(1));
    assert_eq!(r.next_change(1), Some(2));
    assert_eq!(r.next_change(2), Some(10));
    assert_eq!(r.prev_change(10), Some(2));
    assert_eq!(r.prev_change(1), Some(0));
    assert_eq!(r.prev_change(0), None);
}

/// Two loops one after the other (a scenario's variants): each shows only its own tasks
/// once it polls, so the first loop's resolved futures do not stand beside the second's.
#[test]
fn loops_one_after_another_show_their_own_tasks() {
    let mut r = Replay::new();
    let spawn = |task, at| Event::TaskSpawn {
        task,
        at,
        label: format!("req-{task}"),
        waits_on: WaitKind::Io,
    };
    let poll = |task, tid, start, end, ready| Event::Poll {
        task,
        tid,
        cpu: 0,
        start,
        end,
        ready,
    };
    let events = [
        spawn(1, 0),
        spawn(2, 0),
        poll(1, 7, 10, 20, true),
        poll(2, 7, 20, 30, true),
        Event::LoopWait {
            tid: 7,
            start: 30,
            end: 32,
            woken: 0,
        },
        Event::QueueDepth {
            at: 32,
            ready: 0,
            io: 0,
            timers: 0,
        },
        spawn(3, 40),
        poll(3, 8, 50, 60, false),
        Event::QueueDepth {
            at: 60,
            ready: 0,
            io: 1,
            timers: 0,
        },
        Event::LoopWait {
            tid: 8,
            start: 60,
            end: 70,
            woken: 1,
        },
    ];
    r.extend(&events);
    r.prepare();
    // A second loop that never waited (or not yet, while a run streams) has no waits of
    // its own: it does not borrow the first loop's.
    let mut unwaited = Replay::new();
    unwaited.extend(&events[..events.len() - 1]);
    unwaited.prepare();
    let f = unwaited.loop_at(55, 10).expect("has a loop");
    assert_eq!((f.thread, f.waits, f.last_wait), (Some(8), 0, None));
    let f = r.loop_at(35, 10).expect("has a loop");
    assert_eq!(f.samples[&TaskState::Done], vec![1, 2]);
    assert_eq!((f.polls, f.waits, f.last_wait), (2, 1, Some((2, 0))));
    // Task 3 is spawned on the second loop, which has not polled yet: the first loop,
    // which polled last, is still the one shown.
    let f = r.loop_at(45, 10).expect("has a loop");
    assert_eq!((f.count(TaskState::Done), f.ready.clone()), (2, vec![]));
    let f = r.loop_at(55, 10).expect("has a loop");
    assert_eq!(f.running, Some((3, 50)));
    assert_eq!(f.count(TaskState::Done), 0, "{f:?}");
    assert_eq!((f.thread, f.loops), (Some(8), 2));
    assert_eq!(
        f.depth, None,
        "the first loop's queue counts are not the second's"
    );
    // Its own counts: one poll, no selector wait yet (not the first loop's).
    assert_eq!((f.polls, f.waits, f.last_wait), (1, 0, None));
    let f = r.loop_at(65, 10).expect("has a loop");
    assert_eq!((f.polls, f.waits, f.waiting), (1, 1, Some((60, 1))));
    assert_eq!(f.depth, Some((0, 1, 0)));
}

/// A thread's latest name names it, whatever order the batches come in.
#[test]
fn a_renamed_thread_takes_its_latest_name_in_any_order() {
    let start = Event::ThreadStart {
        tid: 3,
        pid: 1,
        os_tid: 11,
        name: "sh".into(),
        role: Role::Worker,
        at: 10,
    };
    let rename = |at, name: &str| Event::ThreadRename {
        tid: 3,
        at,
        name: name.into(),
    };
    let orders = [
        vec![start.clone(), rename(50, "first"), rename(90, "second")],
        vec![rename(90, "second"), start.clone(), rename(50, "first")],
        vec![rename(50, "first"), rename(90, "second"), start.clone()],
    ];
    for events in orders {
        let mut r = Replay::new();
        for e in &events {
            r.extend(std::slice::from_ref(e));
        }
        r.prepare();
        let t = r.thread(3).expect("the thread");
        assert_eq!((&*t.name, t.pid, t.start), ("second", 1, 10), "{events:?}");
    }
}

#[test]
fn unprepared_batches_are_sorted_on_prepare() {
    let mut r = two_cores();
    r.apply(&on(1, 0, 500, 600));
    r.apply(&on(1, 0, 450, 480));
    r.prepare();
    let s: Vec<Ns> = r.slices(0, 0, 1000).iter().map(|s| s.start).collect();
    let mut sorted = s.clone();
    sorted.sort_unstable();
    assert_eq!(s, sorted);
    assert_eq!(r.end(), 600);
}

/// A task's life as spans, and what the loop's tasks add up to: the summary's per-task table
/// and the Chrome export's task tracks both come from these.
#[test]
fn task_spans_and_totals() {
    let mut r = Replay::new();
    let spawn = |task, at, waits_on| Event::TaskSpawn {
        task,
        at,
        label: format!("req-{task}"),
        waits_on,
    };
    let poll = |task, start, end, ready| Event::Poll {
        task,
        tid: 1,
        cpu: 0,
        start,
        end,
        ready,
    };
    let wake = |task, at, by| Event::Wake { task, at, by };
    r.extend(&[
        spawn(1, 0, WaitKind::Io),
        spawn(2, 5, WaitKind::Timer),
        poll(1, 10, 20, false),
        wake(1, 50, WakeBy::Io),
        // A second wake while already ready changes nothing.
        wake(1, 55, WakeBy::Io),
        poll(1, 60, 61, true),
        poll(2, 20, 40, false),
        wake(2, 70, WakeBy::Task { task: 1 }),
        poll(2, 80, 90, false),
        Event::TaskCancelled { task: 2, at: 100 },
        Event::QueueDepth {
            at: 50,
            ready: 2,
            io: 0,
            timers: 1,
        },
    ]);
    r.prepare();
    let spans = |task| -> Vec<(Ns, Ns, TaskState, Option<WakeBy>)> {
        r.task(task)
            .expect("task")
            .spans()
            .iter()
            .map(|s| (s.start, s.end, s.state, s.woken_by))
            .collect()
    };
    assert_eq!(
        spans(1),
        vec![
            (0, 10, TaskState::Ready, None),
            (10, 20, TaskState::Running, None),
            (20, 50, TaskState::ParkedIo, Some(WakeBy::Io)),
            (50, 60, TaskState::Ready, None),
            (60, 61, TaskState::Running, None),
        ]
    );
    assert_eq!(
        spans(2),
        vec![
            (5, 20, TaskState::Ready, None),
            (20, 40, TaskState::Running, None),
            (
                40,
                70,
                TaskState::ParkedTimer,
                Some(WakeBy::Task { task: 1 })
            ),
            (70, 80, TaskState::Ready, None),
            (80, 90, TaskState::Running, None),
            (90, 100, TaskState::ParkedTimer, None),
        ]
    );
    let t = r.task_totals().expect("a loop");
    assert_eq!((t.tasks, t.polls, t.wakes), (2, 4, 3));
    assert_eq!(t.busy_ns, 10 + 1 + 20 + 10);
    assert_eq!(t.longest_poll_ns, 20);
    assert_eq!(t.scheduled_ns, 10 + 10 + 15 + 10);
    assert_eq!(t.idle_ns, 30 + 30 + 10);
    assert_eq!(t.max_ready, 2);
    assert_eq!(Replay::new().task_totals(), None);
}

/// What each thread adds up to (the summary's thread table), each lock's waiting and holding
/// spans (the export's lock tracks) and the hand-overs, from one run.
#[test]
fn thread_summaries_lock_spans_and_handovers() {
    let mut r = Replay::new();
    r.extend(&[
        start(1, 10, "a"),
        start(2, 10, "b"),
        start(3, 20, "c"),
        Event::ThreadRename {
            tid: 2,
            at: 5,
            name: "b2".into(),
        },
        on(1, 0, 0, 100),
        off(2, 0, 40, OffReason::Preempted),
        off(2, 40, 100, OffReason::Lock),
        Event::Migrate {
            tid: 2,
            at: 100,
            from: 0,
            to: 1,
        },
        lock(1, 0, LockOp::Request),
        lock(1, 1, LockOp::Acquire),
        lock(2, 40, LockOp::Request),
        lock(1, 100, LockOp::Release),
        lock(2, 100, LockOp::Acquire),
        lock(2, 150, LockOp::Release),
        lock(1, 160, LockOp::Acquire),
        // Another process's lock: its hand-overs are its own.
        lock(3, 10, LockOp::Acquire),
        Event::ThreadEnd {
            tid: 2,
            at: 200,
            cpu_ns: 60,
            kernel_voluntary: 3,
            kernel_involuntary: 1,
        },
        // Known only from an event, never started: not listed.
        on(9, 1, 0, 5),
    ]);
    r.prepare();
    let s = r.thread_summaries();
    assert_eq!(s.iter().map(|t| t.tid).collect::<Vec<_>>(), vec![1, 2, 3]);
    let b = &s[1];
    assert_eq!(b.name, "b2");
    assert_eq!((b.cpu_ns, b.wall_ns), (60, 200));
    assert_eq!((b.voluntary_switches, b.involuntary_switches), (3, 1));
    assert_eq!(b.migrations, 1);
    assert_eq!((b.runnable_wait_ns, b.lock_wait_ns), (40, 60));
    assert_eq!(s[0].wall_ns, 0, "still running at the end");
    let spans = |tid| -> Vec<(Ns, Ns, LockSpanKind)> {
        r.lock_spans(tid)
            .iter()
            .map(|l| (l.start, l.end, l.kind))
            .collect()
    };
    assert_eq!(
        spans(1),
        vec![
            (0, 1, LockSpanKind::Waiting),
            (1, 100, LockSpanKind::Holding)
        ],
        "its hold from 160 never ends"
    );
    assert_eq!(
        spans(2),
        vec![
            (40, 100, LockSpanKind::Waiting),
            (100, 150, LockSpanKind::Holding)
        ]
    );
    assert_eq!(r.lock_handovers(), 2);
}

/// The most hardware threads busy at once, and when: what the machine lesson reports.
#[test]
fn peak_running_counts_overlapping_slices_only() {
    let mut r = Replay::new();
    assert_eq!(r.peak_running(), None);
    r.extend(&[
        start(1, 1, "a"),
        start(2, 1, "b"),
        start(3, 1, "c"),
        on(1, 0, 0, 100),
        // Starts as thread 1 ends on another CPU: not at the same instant.
        on(2, 1, 100, 200),
        on(3, 2, 150, 160),
        on(1, 0, 155, 300),
    ]);
    r.prepare();
    assert_eq!(r.peak_running(), Some((3, 155)));
    // 0..100: one; 100..150: one; 150..155: two; 155..160: three; 160..200: two;
    // 200..300: one.
    assert_eq!(r.time_by_running(), vec![0, 250, 45, 5]);
    assert_eq!(Replay::new().time_by_running(), Vec::<Ns>::new());
    // Two slices overlapping on one hardware thread (sampled times) count it once: never more
    // hardware threads busy than there are.
    let mut r = Replay::new();
    r.extend(&[
        start(1, 1, "a"),
        start(2, 1, "b"),
        on(1, 0, 0, 100),
        on(2, 0, 50, 150),
        on(1, 1, 120, 130),
    ]);
    r.prepare();
    assert_eq!(r.peak_running(), Some((2, 120)));
    assert_eq!(r.time_by_running(), vec![0, 140, 10]);
}

/// A hardware thread's busy time, and a process's, within a window: what the agent subtracts
/// from `/proc/stat` to tell other programs' share.
#[test]
fn busy_time_within_a_window() {
    let r = two_cores();
    // cpu0: t1 [0,100), t3 [100,200), t1 [200,300), t2 [300,400); cpu1: t2 [0,150), [250,280).
    assert_eq!(r.busy_ns(0, 0, 1_000), 400);
    assert_eq!(r.busy_ns(0, 50, 350), 300, "slices cut at both edges");
    assert_eq!(r.busy_ns(1, 100, 260), 60);
    assert_eq!(r.busy_ns(1, 150, 250), 0, "asleep");
    assert_eq!(r.busy_ns(7, 0, 1_000), 0, "a CPU the run never used");
    assert_eq!(r.busy_ns(0, 300, 300), 0, "an empty window");
    assert_eq!(r.process_busy_ns(10, 0, 1_000), 480);
    assert_eq!(r.process_busy_ns(11, 0, 1_000), 100);
    assert_eq!(r.process_busy_ns(10, 250, 350), 130);
    assert_eq!(r.process_busy_ns(99, 0, 1_000), 0);
}

/// The moments a lesson's "next" button steps to.
#[test]
fn next_moments_of_each_kind() {
    let mut r = Replay::new();
    r.extend(&[
        start(1, 1, "a"),
        start(2, 1, "b"),
        off(1, 10, 20, OffReason::Sleep),
        off(1, 30, 40, OffReason::Preempted),
        off(2, 50, 60, OffReason::Preempted),
        lock(1, 0, LockOp::Acquire),
        lock(2, 5, LockOp::Request),
        lock(1, 30, LockOp::Release),
        lock(2, 30, LockOp::Acquire),
        lock(2, 70, LockOp::Release),
        lock(2, 80, LockOp::Acquire),
        Event::LoopWait {
            tid: 1,
            start: 0,
            end: 15,
            woken: 0,
        },
        Event::LoopWait {
            tid: 1,
            start: 20,
            end: 25,
            woken: 3,
        },
        Event::Poll {
            task: 1,
            tid: 1,
            cpu: 0,
            start: 26,
            end: 27,
            ready: false,
        },
        Event::Poll {
            task: 1,
            tid: 1,
            cpu: 0,
            start: 40,
            end: 90,
            ready: true,
        },
    ]);
    r.prepare();
    assert_eq!(r.next_preemption(0), Some(30));
    assert_eq!(r.next_preemption(30), Some(50));
    assert_eq!(r.next_preemption(50), None);
    assert_eq!(r.next_handover(0), Some(30));
    assert_eq!(
        r.next_handover(30),
        None,
        "the same thread taking it again is no hand-over"
    );
    assert_eq!(r.next_loop_wake(0), Some(25));
    assert_eq!(r.next_loop_wake(25), None);
    assert_eq!(r.next_long_poll(0, 10), Some(40));
}
