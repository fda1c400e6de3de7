//! The waker wrapping: how a traced task's wakes are seen — through a forwarding waker
//! ([`forward`]) where the runtime's vtable gets a slot, else through a [`TaskWaker`] of our
//! own — and the choice between them ([`Wrap`]). Every `unsafe` block of the event-loop
//! instrumentation is in this file.

use std::{
    mem::ManuallyDrop,
    sync::{
        Arc,
        atomic::{AtomicPtr, Ordering},
    },
    task::{RawWaker, RawWakerVTable, Wake, Waker},
};

use super::hot::with;

/// A waker of our own around the runtime's, for runtimes whose waker vtable has no
/// forwarding slot (see [`forward`]): one allocation per task and two reference counts per
/// wake more than the runtime's own.
pub(super) struct TaskWaker {
    pub(super) task: u32,
    pub(super) inner: Waker,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        with(|s| s.wake(self.task));
        self.inner.wake_by_ref();
    }
}

/// Forwarding wakers: a waker with the runtime's own data pointer and a vtable of ours that
/// records each wake and passes every call on to the runtime's vtable. It costs nothing the
/// runtime's waker does not (no allocation, no reference count of its own), and the poll's
/// view of it is borrowed, never dropped. A wake is recorded with the data pointer; a
/// [`Kind::Bind`](super::records::Kind::Bind) record, written when a task is first polled
/// with that pointer, tells the consumer which task it stands for (a runtime's task, and so
/// its pointer, lives as long as any of its wakers).
///
/// A vtable of ours reaches the runtime's through a slot:
/// [`FORWARD_SLOTS`](forward::FORWARD_SLOTS) runtime vtables (tokio has one for all its
/// tasks) can be forwarded to; tasks polled with any other fall back to [`TaskWaker`].
pub(super) mod forward {
    use super::*;

    /// How many runtime vtables can be forwarded to.
    pub(super) const FORWARD_SLOTS: usize = 4;

    /// The runtime vtable of each slot: set once, from null, to a `'static` vtable.
    static INNER: [AtomicPtr<RawWakerVTable>; FORWARD_SLOTS] =
        [const { AtomicPtr::new(std::ptr::null_mut()) }; FORWARD_SLOTS];

    /// The slot forwarding to `vtable`, taking a free one if it has none yet.
    pub(in crate::trace::event_loop) fn slot(vtable: &'static RawWakerVTable) -> Option<usize> {
        let wanted = std::ptr::from_ref(vtable).cast_mut();
        (0..FORWARD_SLOTS).find(|&i| {
            match INNER[i].compare_exchange(
                std::ptr::null_mut(),
                wanted,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => true,
                Err(current) => current == wanted,
            }
        })
    }

    /// Our vtables, one per slot: statics, so that each has one address (wakers compare
    /// them in `will_wake`).
    static VTABLES: [RawWakerVTable; FORWARD_SLOTS] = [
        Forward::<0>::VTABLE,
        Forward::<1>::VTABLE,
        Forward::<2>::VTABLE,
        Forward::<3>::VTABLE,
    ];

    /// Our vtable of slot `n` (`n` < [`FORWARD_SLOTS`]).
    #[inline]
    pub(super) fn vtable(n: usize) -> &'static RawWakerVTable {
        &VTABLES[n.min(FORWARD_SLOTS - 1)]
    }

    /// The poll's view of the forwarding waker for the runtime waker `inner`: borrowed, so
    /// it must not be dropped (it owns no reference), and it must not outlive `inner`.
    #[inline]
    pub(in crate::trace::event_loop) fn borrowed(inner: &Waker, n: usize) -> ManuallyDrop<Waker> {
        // SAFETY: our vtable passes each call on to `inner`'s vtable (slot `n` was taken for
        // it) with `inner`'s data, which stays valid while `inner` lives; the view is never
        // dropped, so it gives back no reference it does not hold.
        ManuallyDrop::new(unsafe { Waker::new(inner.data(), vtable(n)) })
    }

    struct Forward<const N: usize>;

    impl<const N: usize> Forward<N> {
        const VTABLE: RawWakerVTable =
            RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop);

        fn inner() -> &'static RawWakerVTable {
            // SAFETY: a forwarding waker of slot N exists only once the slot holds a
            // `'static` vtable, which is never changed after.
            unsafe { &*INNER[N].load(Ordering::Acquire) }
        }

        /// The runtime's waker for `data`, not to be dropped unless it is owned.
        ///
        /// # Safety
        /// `data` must come from a waker of this slot's runtime vtable.
        unsafe fn runtime(data: *const ()) -> Waker {
            // SAFETY: as the caller promises, `data` belongs to this vtable.
            unsafe { Waker::new(data, Self::inner()) }
        }

        unsafe fn clone(data: *const ()) -> RawWaker {
            // SAFETY: our wakers of slot N carry data of the runtime's vtable N.
            let runtime = ManuallyDrop::new(unsafe { Self::runtime(data) });
            let copy = ManuallyDrop::new((*runtime).clone());
            if std::ptr::eq(copy.vtable(), Self::inner()) {
                RawWaker::new(copy.data(), vtable(N))
            } else {
                // A runtime whose clones change vtable: the clone stays right, untraced.
                RawWaker::new(copy.data(), copy.vtable())
            }
        }

        unsafe fn wake(data: *const ()) {
            with(|s| s.wake_data(data as u64));
            // SAFETY: as in `clone`; the waker owns the reference the caller gives up.
            unsafe { Self::runtime(data) }.wake();
        }

        unsafe fn wake_by_ref(data: *const ()) {
            with(|s| s.wake_data(data as u64));
            // SAFETY: as in `clone`; borrowed, so not dropped.
            ManuallyDrop::new(unsafe { Self::runtime(data) }).wake_by_ref();
        }

        unsafe fn drop(data: *const ()) {
            // SAFETY: as in `clone`; the waker owns the reference the caller gives up.
            std::mem::drop(unsafe { Self::runtime(data) });
        }
    }
}

/// How a task's wakes are seen.
#[derive(Default)]
pub(super) enum Wrap {
    /// Not polled yet.
    #[default]
    None,
    /// Through a forwarding waker of this slot, for the runtime waker with this data and
    /// vtable.
    Forward {
        data: usize,
        vtable: &'static RawWakerVTable,
        slot: usize,
    },
    /// Through a [`TaskWaker`]: the runtime's waker and ours.
    Own(Waker, Waker),
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::Pin,
        sync::atomic::{AtomicBool, AtomicUsize},
        task::{Context, Poll},
    };

    use coreplay_shared::event::{Event, Role, WaitKind, WakeBy};

    use super::*;
    use crate::trace::{
        Recorder, ThreadTracer,
        event_loop::{enter, exit, traced},
        recorder::Batch,
    };

    /// A waker counting what is asked of it; `N` picks one of several distinct vtables.
    struct Counting<const N: usize>;

    /// Clones, wakes, wakes by reference and drops of each counting vtable.
    static COUNTS: [[AtomicUsize; 4]; 6] = [const { [const { AtomicUsize::new(0) }; 4] }; 6];

    static COUNTING: [RawWakerVTable; 6] = [
        Counting::<0>::VTABLE,
        Counting::<1>::VTABLE,
        Counting::<2>::VTABLE,
        Counting::<3>::VTABLE,
        Counting::<4>::VTABLE,
        Counting::<5>::VTABLE,
    ];

    impl<const N: usize> Counting<N> {
        const VTABLE: RawWakerVTable =
            RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop);

        fn count(what: usize) {
            COUNTS[N][what].fetch_add(1, Ordering::Relaxed);
        }

        unsafe fn clone(data: *const ()) -> RawWaker {
            Self::count(0);
            RawWaker::new(data, &COUNTING[N])
        }

        unsafe fn wake(_: *const ()) {
            Self::count(1);
        }

        unsafe fn wake_by_ref(_: *const ()) {
            Self::count(2);
        }

        unsafe fn drop(_: *const ()) {
            Self::count(3);
        }
    }

    fn counting(n: usize) -> Waker {
        // SAFETY: the counting vtable ignores its data.
        unsafe { Waker::new(std::ptr::null(), &COUNTING[n]) }
    }

    fn counts(n: usize) -> [usize; 4] {
        COUNTS[n].each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// Wakes itself `self.0` times: by reference, then through a clone woken by value, then
    /// through a clone dropped unused and a wake by reference.
    struct Spin(u32);

    impl Future for Spin {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 == 0 {
                return Poll::Ready(());
            }
            self.0 -= 1;
            match self.0 % 3 {
                0 => cx.waker().wake_by_ref(),
                // Woken by value on purpose: the clone's own wake path.
                #[allow(clippy::waker_clone_wake)]
                1 => cx.waker().clone().wake(),
                _ => {
                    std::mem::drop(cx.waker().clone());
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Pending
        }
    }

    /// Polls a traced `Spin(6)` by hand with `waker`; returns its events.
    fn spin_with(waker: &Waker) -> Vec<Event> {
        let (rec, rx) = Recorder::new(true, Arc::new(AtomicBool::new(false)));
        enter(ThreadTracer::start(&rec, "hand", Role::EventLoop), true);
        let mut fut = std::pin::pin!(traced("spin", WaitKind::Io, Spin(6)));
        let mut cx = Context::from_waker(waker);
        while fut.as_mut().poll(&mut cx).is_pending() {}
        if let Some(t) = exit() {
            t.finish();
        }
        drop(rec);
        rx.iter().flat_map(Batch::into_events).collect()
    }

    /// The waker a traced task sees passes every call on to the runtime's exactly once, and
    /// every wake is recorded: through a forwarding waker while the runtime's vtable gets a
    /// slot, through a waker of our own once the slots are full.
    #[test]
    fn wakers_pass_every_call_on_and_record_every_wake() {
        // Only this test takes slots for counting vtables; others may hold one for tokio.
        for n in [0, 5] {
            if n == 5 {
                for filler in &COUNTING[1..5] {
                    forward::slot(filler);
                }
                assert_eq!(forward::slot(&COUNTING[5]), None, "slots are full");
            } else {
                assert!(forward::slot(&COUNTING[0]).is_some());
            }
            let events = spin_with(&counting(n));
            let wakes = events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::Wake {
                            by: WakeBy::Task { .. },
                            ..
                        }
                    )
                })
                .count();
            let polls = events
                .iter()
                .filter(|e| matches!(e, Event::Poll { .. }))
                .count();
            assert_eq!((polls, wakes), (7, 6), "vtable {n}: {events:?}");
            // Six wakes reach the runtime: a forwarding waker passes each call on as it is
            // (two clones woken by value, four wakes by reference); a waker of our own wakes
            // its clone of the runtime's by reference. Every waker made is given back once:
            // the clones, and the test's own waker.
            let [clones, by_value, by_ref, drops] = counts(n);
            let expected = if n == 0 { (2, 4) } else { (0, 6) };
            assert_eq!((by_value, by_ref), expected, "vtable {n}");
            assert_eq!(
                clones + 1,
                by_value + drops,
                "vtable {n}: every waker given back"
            );
        }
    }
}
