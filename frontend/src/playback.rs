//! The playback clock: where the cursor is in the run, whether it moves, how fast, and
//! whether it follows a live run. Pure (times come in as arguments), so it is tested natively.

use coreplay_shared::Fixed;
use coreplay_shared::event::Ns;

/// Speeds offered, as nanoseconds of the run shown per second on screen: from real time down
/// to 1/100 000 (10 µs per second, so a 50 µs slice lasts five seconds).
pub const SPEEDS: [u64; 11] = [
    1_000_000_000,
    300_000_000,
    100_000_000,
    30_000_000,
    10_000_000,
    3_000_000,
    1_000_000,
    300_000,
    100_000,
    30_000,
    10_000,
];

/// Default speed index: 1 s on screen = 1 ms of the run.
pub const DEFAULT_SPEED: usize = 6;

/// How far behind the newest event a live cursor stays, so that batches still in flight
/// from other threads land before it is drawn.
pub const LIVE_LAG_NS: Ns = 60_000_000;

/// A playback command from the controls, the keyboard or an embedding page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// Start moving.
    Play,
    /// Stop moving.
    Pause,
    /// Play if paused, pause if playing.
    Toggle,
    /// Move to the next change (one event).
    StepForward,
    /// Move to the previous change.
    StepBack,
    /// Jump to a time, ns.
    Seek(Ns),
    /// Pick a speed from [`SPEEDS`] by index (clamped).
    Speed(usize),
    /// One speed faster.
    Faster,
    /// One speed slower.
    Slower,
    /// Follow the live run again.
    Live,
    /// Jump to the start.
    Home,
    /// Jump to the end.
    End,
}

/// The clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    /// The cursor, ns since the run started.
    pub t: Ns,
    /// Whether the cursor moves.
    pub playing: bool,
    /// Index into [`SPEEDS`].
    pub speed: usize,
    /// Whether the cursor follows the newest events of a live run.
    pub follow_live: bool,
    /// Whether playback starts over at the end.
    pub looping: bool,
    last_ms: Option<f64>,
    carry: f64,
}

impl Default for Playback {
    fn default() -> Self {
        Playback {
            t: 0,
            playing: false,
            speed: DEFAULT_SPEED,
            follow_live: true,
            looping: false,
            last_ms: None,
            carry: 0.0,
        }
    }
}

/// What the clock needs to know about the run it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first time worth showing.
    pub start: Ns,
    /// The newest time known.
    pub end: Ns,
    /// Whether more events may still come.
    pub live: bool,
}

impl Playback {
    /// Run-time nanoseconds per screen second at the current speed.
    pub fn ns_per_second(&self) -> u64 {
        SPEEDS[self.speed.min(SPEEDS.len() - 1)]
    }

    /// "1 s on screen = …" in words.
    pub fn speed_label(&self) -> String {
        speed_label(self.ns_per_second())
    }

    /// Applies a command. `step` finds the next or previous change from a time.
    pub fn command(&mut self, cmd: Command, span: Span, step: impl Fn(Ns, bool) -> Option<Ns>) {
        match cmd {
            Command::Play => self.play(span),
            Command::Pause => self.pause(),
            Command::Toggle => {
                if self.playing {
                    self.pause();
                } else {
                    self.play(span);
                }
            }
            Command::StepForward | Command::StepBack => {
                self.pause();
                if let Some(t) = step(self.t, cmd == Command::StepForward) {
                    self.t = t.clamp(span.start, span.end.max(span.start));
                }
            }
            Command::Seek(t) => {
                self.follow_live = false;
                self.t = t.clamp(span.start, span.end.max(span.start));
                self.carry = 0.0;
            }
            Command::Speed(i) => self.speed = i.min(SPEEDS.len() - 1),
            Command::Faster => self.speed = self.speed.saturating_sub(1),
            Command::Slower => self.speed = (self.speed + 1).min(SPEEDS.len() - 1),
            Command::Live => {
                self.follow_live = true;
                self.playing = span.live;
            }
            Command::Home => {
                self.follow_live = false;
                self.t = span.start;
            }
            Command::End => {
                self.follow_live = false;
                self.t = span.end;
            }
        }
    }

    fn play(&mut self, span: Span) {
        if !span.live && self.t >= span.end {
            self.t = span.start;
        }
        self.playing = true;
        self.last_ms = None;
    }

    fn pause(&mut self) {
        self.playing = false;
        self.follow_live = false;
        self.last_ms = None;
    }

    /// Starts a new run's playback: live runs are followed, recorded ones wait at the start
    /// (or play, when `autoplay`).
    pub fn reset(&mut self, span: Span, autoplay: bool) {
        self.t = span.start;
        self.follow_live = span.live;
        self.playing = span.live || autoplay;
        self.last_ms = None;
        self.carry = 0.0;
    }

    /// Advances the clock to the screen time `now_ms`; returns whether the cursor moved.
    pub fn tick(&mut self, now_ms: f64, span: Span) -> bool {
        let before = self.t;
        if self.follow_live && span.live {
            self.t = span.end.saturating_sub(LIVE_LAG_NS).max(span.start);
            self.last_ms = Some(now_ms);
            return self.t != before;
        }
        if self.follow_live {
            // The followed run ended: show its last instant.
            self.follow_live = false;
            self.playing = false;
            self.t = span.end;
            return self.t != before;
        }
        if !self.playing {
            self.last_ms = None;
            return false;
        }
        let dt_ms = self
            .last_ms
            .map_or(0.0, |last| (now_ms - last).clamp(0.0, 250.0));
        self.last_ms = Some(now_ms);
        let advance = dt_ms / 1000.0 * self.ns_per_second() as f64 + self.carry;
        let whole = advance.floor();
        self.carry = advance - whole;
        self.t = self.t.saturating_add(whole as Ns);
        if self.t >= span.end {
            if span.live {
                // Caught up with a live run: keep following it.
                self.t = span.end;
                self.follow_live = true;
            } else if self.looping {
                self.t = span.start;
            } else {
                self.t = span.end;
                self.playing = false;
            }
        }
        self.t != before
    }
}

/// "1 s on screen = 1 ms of the run" for a speed.
pub fn speed_label(ns_per_s: u64) -> String {
    if ns_per_s >= 1_000_000_000 {
        "real time (1 s on screen = 1 s of the run)".into()
    } else {
        format!("1 s on screen = {} of the run", duration(ns_per_s))
    }
}

/// A duration in the most readable unit.
pub fn duration(ns: u64) -> String {
    let v = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{} s", trim(v / 1e9))
    } else if ns >= 1_000_000 {
        format!("{} ms", trim(v / 1e6))
    } else if ns >= 1_000 {
        format!("{} µs", trim(v / 1e3))
    } else {
        format!("{ns} ns")
    }
}

fn trim(v: f64) -> String {
    if v >= 100.0 || (v - v.round()).abs() < 1e-9 {
        Fixed(v, 0).to_string()
    } else if v >= 10.0 {
        Fixed(v, 1).to_string()
    } else {
        Fixed(v, 2).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: Span = Span {
        start: 0,
        end: 1_000_000,
        live: false,
    };

    fn no_step(_: Ns, _: bool) -> Option<Ns> {
        None
    }

    #[test]
    fn plays_at_the_chosen_speed_and_stops_at_the_end() {
        let mut p = Playback::default();
        p.reset(RECORDED, false);
        assert!(!p.playing);
        p.command(Command::Play, RECORDED, no_step);
        assert_eq!(p.ns_per_second(), 1_000_000);
        p.tick(1000.0, RECORDED);
        p.tick(1100.0, RECORDED);
        assert_eq!(p.t, 100_000, "100 ms on screen = 100 µs of the run");
        p.tick(3000.0, RECORDED);
        // A long gap (a hidden tab) advances at most 250 ms.
        assert_eq!(p.t, 350_000);
        for i in 0..10 {
            p.tick(3000.0 + 250.0 * f64::from(i + 1), RECORDED);
        }
        assert_eq!(p.t, RECORDED.end);
        assert!(!p.playing);
        // Play at the end starts over.
        p.command(Command::Play, RECORDED, no_step);
        assert_eq!(p.t, 0);
    }

    #[test]
    fn slowest_speed_makes_50_us_last_seconds() {
        let mut p = Playback {
            speed: SPEEDS.len() - 1,
            ..Playback::default()
        };
        p.reset(RECORDED, true);
        p.tick(0.0, RECORDED);
        for i in 1..=300 {
            p.tick(f64::from(i) * 1000.0 / 60.0, RECORDED);
        }
        assert!(
            p.t.abs_diff(50_000) <= 2,
            "5 s on screen = 50 µs, got {}",
            p.t
        );
        assert_eq!(p.speed_label(), "1 s on screen = 10 µs of the run");
        assert!(SPEEDS[0] / SPEEDS[SPEEDS.len() - 1] >= 100_000);
    }

    #[test]
    fn live_follows_until_paused_and_returns_on_live() {
        let mut p = Playback::default();
        let live = Span {
            start: 0,
            end: 500_000_000,
            live: true,
        };
        p.reset(live, false);
        p.tick(0.0, live);
        assert_eq!(p.t, 500_000_000 - LIVE_LAG_NS);
        p.command(Command::Pause, live, no_step);
        let later = Span {
            end: 900_000_000,
            ..live
        };
        assert!(!p.tick(10.0, later));
        p.command(Command::Live, later, no_step);
        p.tick(20.0, later);
        assert_eq!(p.t, 900_000_000 - LIVE_LAG_NS);
        // The run ends: the cursor lands on its last instant and stops.
        let ended = Span {
            live: false,
            ..later
        };
        p.tick(30.0, ended);
        assert_eq!(p.t, 900_000_000);
        assert!(!p.playing && !p.follow_live);
    }

    #[test]
    fn steps_seeks_and_speeds_are_clamped() {
        let mut p = Playback::default();
        p.reset(RECORDED, false);
        p.command(Command::StepForward, RECORDED, |t, fwd| {
            Some(if fwd { t + 10 } else { t - 10 })
        });
        assert_eq!(p.t, 10);
        p.command(Command::Seek(5_000_000), RECORDED, no_step);
        assert_eq!(p.t, RECORDED.end);
        p.command(Command::Speed(99), RECORDED, no_step);
        assert_eq!(p.speed, SPEEDS.len() - 1);
        p.command(Command::Slower, RECORDED, no_step);
        assert_eq!(p.speed, SPEEDS.len() - 1);
        p.command(Command::Faster, RECORDED, no_step);
        assert_eq!(p.speed, SPEEDS.len() - 2);
        p.command(Command::Home, RECORDED, no_step);
        assert_eq!(p.t, 0);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(50_000), "50 µs");
        assert_eq!(duration(1_500_000), "1.50 ms");
        assert_eq!(duration(999), "999 ns");
        assert_eq!(
            speed_label(1_000_000_000),
            "real time (1 s on screen = 1 s of the run)"
        );
    }
}
