//! The traced task: [`Traced`] wraps a task's future (from [`traced`], when it is spawned),
//! times each of its polls and hands it a wrapped waker, so its spawn, polls, wakes and
//! cancellation are recorded.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use coreplay_shared::event::WaitKind;

use super::{
    hot::with,
    waker::{TaskWaker, Wrap, forward},
};

pin_project_lite::pin_project! {
    /// A task future that reports its polls and wakes. The task's future stays inline (no
    /// extra allocation or pointer to chase per poll).
    pub struct Traced<F> {
        task: Option<u32>,
        #[pin]
        inner: F,
        wrap: Wrap,
        done: bool,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(task) = this.task
                && !this.done
            {
                with(|s| s.cancel(task));
            }
        }
    }
}

impl<F> std::fmt::Debug for Traced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced").field("task", &self.task).finish()
    }
}

/// Wraps `fut` as a task named `label` that parks on `kind`; call it on the loop thread when
/// spawning (a spawned task is ready at once). The label is kept as given (a `String` is not
/// copied).
pub fn traced<F: Future>(label: impl Into<String>, kind: WaitKind, fut: F) -> Traced<F> {
    let task = with(|s| {
        if !s.instrument {
            return None;
        }
        let task = s.tracer.recorder().next_task();
        s.spawn(task, kind, label.into());
        Some(task)
    })
    .flatten();
    Traced {
        task,
        inner: fut,
        wrap: Wrap::None,
        done: false,
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(task) = *this.task else {
            return this.inner.poll(cx);
        };
        let runtime = cx.waker();
        let (data, vtable) = (runtime.data() as usize, runtime.vtable());
        // A new or changed runtime waker: forward to it if its vtable has a slot.
        let bind = match &mut *this.wrap {
            Wrap::Forward {
                data: d, vtable: v, ..
            } if *d == data && std::ptr::eq(*v, vtable) => None,
            Wrap::Own(outer, _) if outer.will_wake(runtime) => None,
            wrap => {
                *wrap = match forward::slot(vtable) {
                    Some(slot) => Wrap::Forward { data, vtable, slot },
                    None => Wrap::Own(
                        runtime.clone(),
                        Waker::from(Arc::new(TaskWaker {
                            task,
                            inner: runtime.clone(),
                        })),
                    ),
                };
                matches!(wrap, Wrap::Forward { .. }).then_some(data as u64)
            }
        };
        let borrowed;
        let ours = match &*this.wrap {
            Wrap::Forward { slot, .. } => {
                borrowed = forward::borrowed(runtime, *slot);
                &*borrowed
            }
            Wrap::Own(_, ours) => ours,
            Wrap::None => runtime,
        };
        with(|s| {
            if let Some(data) = bind {
                s.bind(task, data);
            }
            s.begin_poll(task);
        });
        let result = this.inner.poll(&mut Context::from_waker(ours));
        let ready = result.is_ready();
        *this.done = ready;
        with(|s| s.end_poll(ready));
        result
    }
}
