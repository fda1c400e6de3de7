//! The page's one store: the state every component reads ([`Store::read`]) and the one way it
//! changes ([`Store::apply`]), which folds an [`Action`] into the pure reducer (`state.rs`)
//! and then does what the change means outside the page (tells an embedding page that a run
//! is ready, or where playback stands after its command). The animation clock moves the cursor
//! through [`Store::tick`].

use std::{
    cell::{Ref, RefCell},
    rc::Rc,
};

use crate::{
    embed::{self, Notice},
    js,
    options::PageOptions,
    state::{Action, AppState},
};

/// What to call once the page stops keeping still (the sleeping animation clock).
type Waker = Rc<RefCell<Option<Box<dyn FnOnce()>>>>;

/// The page's state, shared by the components, and the clock's waker.
#[derive(Clone)]
pub struct Store(Rc<RefCell<AppState>>, Waker);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Store {
    /// A store holding `state`.
    pub fn new(state: AppState) -> Store {
        Store(Rc::new(RefCell::new(state)), Rc::new(RefCell::new(None)))
    }

    /// The state, to draw from. Hold it only while drawing: [`Store::apply`] needs it free.
    pub fn read(&self) -> Ref<'_, AppState> {
        self.0.borrow()
    }

    /// Folds `action` into the state, then tells an embedding page what it needs to know.
    pub fn apply(&self, action: Action) {
        let notice = {
            let mut st = self.0.borrow_mut();
            match action {
                Action::Steer(_) => {
                    st.apply(action);
                    Some(Notice::state(&st))
                }
                Action::Loaded(_) => {
                    // The page benchmark reads how long indexing the run took.
                    let t0 = js::now_ms();
                    st.apply(action);
                    if let Some(stats) = st.last_load.as_mut() {
                        stats.apply_ms = js::now_ms() - t0;
                    }
                    Notice::ready(&st)
                }
                _ => {
                    st.apply(action);
                    None
                }
            }
        };
        if let Some(notice) = notice {
            embed::post(&notice);
        }
        // The animation clock sleeps while the page keeps still; wake it when that ends.
        if !self.0.borrow().measuring() {
            let wake = self.1.borrow_mut().take();
            if let Some(wake) = wake {
                wake();
            }
        }
    }

    /// Whether the animation clock may sleep: the page keeps still for a measuring run.
    pub fn still(&self) -> bool {
        self.0.borrow().measuring()
    }

    /// Calls `wake` once, at the first change after which the page no longer keeps still.
    pub fn on_wake(&self, wake: impl FnOnce() + 'static) {
        *self.1.borrow_mut() = Some(Box::new(wake));
    }

    /// One animation frame at screen time `now_ms`: indexes new events and moves the clock.
    /// Returns whether anything needs drawing.
    pub fn tick(&self, now_ms: f64) -> bool {
        self.digest(DIGEST_MS);
        self.0.borrow_mut().tick(now_ms)
    }

    /// Decodes messages taken in while following a live run for up to `budget_ms` of this
    /// frame (at least one): the rest waits for the next frame, so drawing goes on while a
    /// busy run streams faster than the page decodes.
    pub fn digest(&self, budget_ms: f64) {
        let t0 = js::now_ms();
        while self.0.borrow_mut().digest_one() && js::now_ms() - t0 < budget_ms {}
    }
}

/// Decoding per animation frame while following a live run, ms.
const DIGEST_MS: f64 = 8.0;

/// The state a page starts with: connecting to `agent_url` (or saying why it cannot), set up
/// as its address (`opts`) asks.
pub fn initial_state(agent_url: Result<String, String>, opts: &PageOptions) -> AppState {
    let mut state = match agent_url {
        Ok(url) => AppState::new(url),
        Err(message) => {
            let mut state = AppState::new(String::new());
            state.apply(Action::BadUrl(message));
            state
        }
    };
    if (opts.embed || opts.trace.is_some()) && !opts.agent {
        state.apply(Action::Offline);
    }
    state.agent_named = opts.agent;
    state.still = !opts.follow;
    if let Some(speed) = opts.speed {
        state.playback.speed = speed;
    }
    state.playback.looping = opts.looping;
    state.pending_start = opts.start;
    if !opts.problems.is_empty() {
        state.last_error = Some(format!("ignored: {}", opts.problems.join("; ")));
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{options, state::Conn};

    fn opts(q: &[(&str, &str)]) -> PageOptions {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        options::parse(&pairs)
    }

    #[test]
    fn the_address_sets_the_page_up() {
        let s = initial_state(Ok("ws://x/ws".into()), &opts(&[]));
        assert_eq!(s.conn, Conn::Connecting { attempt: 0 });
        let s = initial_state(
            Ok("ws://x/ws".into()),
            &opts(&[("embed", ""), ("speed", "10us"), ("loop", ""), ("t", "2ms")]),
        );
        assert_eq!(s.conn, Conn::Offline, "an embed without agent= plays files");
        assert_eq!(s.playback.ns_per_second(), 10_000);
        assert!(s.playback.looping);
        assert_eq!(s.pending_start, Some(2_000_000));
        let s = initial_state(
            Ok("ws://x/ws".into()),
            &opts(&[("trace", "a.gz"), ("agent", "ws://x/ws"), ("zoom", "2")]),
        );
        assert!(s.agent_named && !s.conn.is_final());
        assert!(s.last_error.as_deref().unwrap_or("").contains("zoom"));
        let s = initial_state(Err("bad".into()), &opts(&[]));
        assert_eq!(
            s.conn,
            Conn::BadUrl {
                message: "bad".into()
            }
        );
    }

    /// The animation clock sleeps while a run measures and the page keeps still; the change
    /// that ends it (the run's summary) wakes the clock, once.
    #[test]
    fn the_clock_is_woken_when_the_page_stops_keeping_still() {
        use std::cell::Cell;
        let store = Store::new(AppState::new("ws://x/ws".into()));
        store.apply(Action::Frame(
            r#"{"type":"run_started","data":{"run":4,"scenario":"gil","params":{"threads":2},"fidelity":{"kind":"self_timed"},"yours":true}}"#.into(),
        ));
        assert!(store.still());
        let woken = Rc::new(Cell::new(0));
        let w = Rc::clone(&woken);
        store.on_wake(move || w.set(w.get() + 1));
        store.apply(Action::Frame(
            r#"{"type":"events","data":{"run":4,"events":[]}}"#.into(),
        ));
        assert_eq!(woken.get(), 0, "still measuring");
        store.apply(Action::SetStill(false));
        assert_eq!(woken.get(), 1, "following live now");
        store.apply(Action::Window(1, 2));
        assert_eq!(woken.get(), 1, "once");
    }

    #[test]
    fn the_store_is_one_shared_state() {
        let store = Store::new(AppState::new("ws://x/ws".into()));
        let other = store.clone();
        assert_eq!(store, other);
        other.apply(Action::Window(5, 10));
        assert_eq!(store.read().window, Some((5, 10)));
        store.apply(Action::Window(10, 10));
        assert_eq!(
            other.read().window,
            None,
            "an empty window shows the whole run"
        );
        assert_ne!(store, Store::new(AppState::new(String::new())));
    }
}
