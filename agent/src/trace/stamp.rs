//! Timestamps for hot paths that cannot afford `clock_gettime` (≈ 30 ns here, and an
//! event-loop poll needs three): the CPU's time-stamp counter, read with one instruction, and
//! turned into `CLOCK_MONOTONIC` nanoseconds later, off the hot path, from calibration pairs.
//!
//! The counter is used only where the kernel itself keeps time with it (clocksource `tsc`):
//! the kernel then has checked that it ticks at a constant rate, does not stop in idle states
//! and agrees across CPUs, so stamps taken on different CPUs compare. Anywhere else (another
//! clocksource, another architecture) a stamp is simply the monotonic clock in ns.
//!
//! Conversion anchors each batch of stamps at a pair read at the batch's start and scales by
//! the rate measured over the whole recording so far, so the error does not accumulate: a
//! stamp lands within a few tens of ns of where `clock_gettime` would have put it (checked by
//! a test below).

use super::clock::monotonic_ns;

/// A pair of readings taken together: a stamp and the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calib {
    /// Stamp ticks.
    pub ticks: u64,
    /// `CLOCK_MONOTONIC` ns.
    pub mono: u64,
}

/// Turns the stamps of one batch into monotonic ns: integer arithmetic only (the consumer
/// converts two or three stamps per poll; a float conversion rounded by libm's `round` cost
/// it about 70 instructions per poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// The pair read when the batch started.
    pub anchor: Calib,
    /// ns per tick in units of 2^-[`FRAC`] ns (2^FRAC when stamps are already ns).
    per_tick: u64,
}

/// Fraction bits of [`Scale`]'s rate: a stamp an hour from its anchor (3.6·10¹³ ticks at
/// 10 GHz) is off by under 20 ns, and the product of a tick count (< 2^63) and a rate (under
/// 2^24 ns per tick) fits an `i128`.
const FRAC: u32 = 40;

impl Scale {
    /// The identity: stamps that are monotonic ns.
    pub const NS: Scale = Scale {
        anchor: Calib { ticks: 0, mono: 0 },
        per_tick: 1 << FRAC,
    };

    /// Converts from `anchor` at `ns_per_tick` (a rate that is not a positive number, or is
    /// absurdly slow, is taken as 0 or the slowest held).
    pub fn new(anchor: Calib, ns_per_tick: f64) -> Scale {
        // `as` saturates: NaN and negatives become 0.
        let per_tick = (ns_per_tick * (1u64 << FRAC) as f64).round() as u64;
        Scale {
            anchor,
            per_tick: per_tick.min(1 << (FRAC + 23)),
        }
    }

    /// ns per tick.
    pub fn ns_per_tick(&self) -> f64 {
        self.per_tick as f64 / (1u64 << FRAC) as f64
    }

    /// `CLOCK_MONOTONIC` ns of a stamp (stamps slightly before the anchor work too), rounded
    /// to the nearest ns.
    #[inline]
    pub fn mono(&self, ticks: u64) -> u64 {
        let delta = i128::from(ticks.wrapping_sub(self.anchor.ticks) as i64);
        let ns = (delta * i128::from(self.per_tick) + (1 << (FRAC - 1))) >> FRAC;
        let ns = i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX });
        self.anchor.mono.saturating_add_signed(ns)
    }
}

/// Where stamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampClock {
    tsc: bool,
}

impl StampClock {
    /// The counter where the kernel keeps time with it, else the monotonic clock.
    pub fn detect() -> StampClock {
        let tsc = cfg!(target_arch = "x86_64")
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc");
        StampClock { tsc }
    }

    /// The monotonic clock, always (for tests and comparisons).
    pub fn monotonic() -> StampClock {
        StampClock { tsc: false }
    }

    /// Whether stamps are counter ticks (else ns).
    pub fn is_tsc(&self) -> bool {
        self.tsc
    }

    /// A stamp: one instruction on the counter, `clock_gettime` otherwise.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.tsc {
            // SAFETY: RDTSC has no operands and touches no memory; every x86_64 CPU has it
            // (and this path is taken only when the kernel's own clock uses it).
            #[allow(unused_unsafe)]
            return unsafe { core::arch::x86_64::_rdtsc() };
        }
        monotonic_ns()
    }

    /// A stamp and the monotonic clock read together (the stamp is the midpoint of two reads
    /// around the clock, the tightest of three tries, so the pair's error is about half the
    /// clock's cost).
    pub fn calib(&self) -> Calib {
        if !self.tsc {
            let mono = monotonic_ns();
            return Calib { ticks: mono, mono };
        }
        // Best of three: an interrupt between the reads would widen the bracket.
        let mut best: Option<(u64, Calib)> = None;
        for _ in 0..3 {
            let before = self.now();
            let mono = monotonic_ns();
            let after = self.now();
            let width = after.wrapping_sub(before);
            if best.is_none_or(|(w, _)| width < w) {
                let ticks = before + width / 2;
                best = Some((width, Calib { ticks, mono }));
            }
        }
        best.map_or(Calib { ticks: 0, mono: 0 }, |(_, c)| c)
    }

    /// ns per tick between two pairs (1 for ns stamps; `None` when they are too close to
    /// tell).
    pub fn rate(&self, from: Calib, to: Calib) -> Option<f64> {
        if !self.tsc {
            return Some(1.0);
        }
        let ticks = to.ticks.checked_sub(from.ticks)?;
        let ns = to.mono.checked_sub(from.mono)?;
        (ticks > 0 && ns >= 10_000).then(|| ns as f64 / ticks as f64)
    }

    /// How to convert the stamps taken between two pairs: interpolating between them, so
    /// that batches converted one after another meet exactly; `fallback` ns per tick when the
    /// pairs are too close to tell.
    pub fn scale(&self, from: Calib, to: Calib, fallback: f64) -> Scale {
        let between = (self.tsc && to.ticks > from.ticks && to.mono >= from.mono)
            .then(|| (to.mono - from.mono) as f64 / (to.ticks - from.ticks) as f64);
        Scale::new(
            from,
            between.unwrap_or(if self.tsc { fallback } else { 1.0 }),
        )
    }

    /// A first rate, measured over about `span_ns` of spinning (1 for ns stamps). A counter
    /// that does not advance with the clock within 50 ms (never seen, but a hypervisor could
    /// do it) is given up: the clock falls back to `clock_gettime`.
    pub fn calibrate(&mut self, span_ns: u64) -> (Calib, f64) {
        let start = self.calib();
        if !self.tsc {
            return (start, 1.0);
        }
        loop {
            let now = self.calib();
            let waited = now.mono.saturating_sub(start.mono);
            if waited >= span_ns.max(10_000)
                && let Some(rate) = self.rate(start, now)
            {
                return (start, rate);
            }
            if waited > 50_000_000 {
                self.tsc = false;
                return (self.calib(), 1.0);
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_stamps_convert_to_themselves() {
        let mut clock = StampClock::monotonic();
        let t = clock.now();
        assert_eq!(Scale::NS.mono(t), t);
        let (start, rate) = clock.calibrate(50_000);
        assert_eq!(rate, 1.0);
        assert_eq!(start.ticks, start.mono);
    }

    #[test]
    fn scale_works_on_both_sides_of_its_anchor() {
        let anchor = Calib {
            ticks: 1_000,
            mono: 5_000,
        };
        let scale = Scale::new(anchor, 0.5);
        assert_eq!(scale.mono(3_000), 6_000);
        assert_eq!(scale.mono(800), 4_900);
        assert_eq!(scale.mono(0), 4_500);
        // Rounded to the nearest ns, either side.
        let third = Scale::new(anchor, 1.0 / 3.0);
        assert_eq!(third.mono(1_002), 5_001);
        assert_eq!(third.mono(998), 4_999);
        // Far from the anchor: an hour of ticks is off by under 20 ns.
        let rate = 0.3712;
        let far = 36_000_000_000_000u64; // an hour at 10 GHz
        let exact = 5_000.0 + (far - 1_000) as f64 * rate;
        let got = Scale::new(anchor, rate).mono(far) as f64;
        assert!((got - exact).abs() < 20.0, "{got} vs {exact}");
        // Out-of-range rates and stamps saturate instead of wrapping.
        assert_eq!(Scale::new(anchor, f64::NAN).mono(9_999), 5_000);
        assert_eq!(Scale::new(anchor, -1.0).mono(9_999), 5_000);
        assert_eq!(
            Scale::new(anchor, 1e30).mono(u64::MAX / 4),
            5_000 + i64::MAX as u64
        );
    }

    #[test]
    fn a_batch_scale_meets_both_of_its_pairs() {
        let tsc = StampClock { tsc: true };
        let (a, b) = (
            Calib {
                ticks: 1_000,
                mono: 10_000,
            },
            Calib {
                ticks: 5_000,
                mono: 12_000,
            },
        );
        let scale = tsc.scale(a, b, 9.0);
        assert_eq!((scale.mono(a.ticks), scale.mono(b.ticks)), (a.mono, b.mono));
        // Pairs too close to tell use the fallback rate; ns stamps always convert as ns.
        assert_eq!(tsc.scale(a, a, 9.0).ns_per_tick(), 9.0);
        assert_eq!(StampClock::monotonic().scale(a, b, 9.0).ns_per_tick(), 1.0);
    }

    #[test]
    fn stamps_land_where_the_monotonic_clock_does() {
        let mut clock = StampClock::detect();
        let (origin, rate) = clock.calibrate(200_000);
        // Stamps bracketed by clock reads, converted with an anchor taken later (as the
        // recorder does), must fall inside their brackets give or take a little.
        let anchor = clock.calib();
        let mut samples = Vec::new();
        for _ in 0..200 {
            let before = monotonic_ns();
            let stamp = clock.now();
            let after = monotonic_ns();
            samples.push((before, stamp, after));
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        let end = clock.calib();
        let scale = Scale::new(anchor, clock.rate(origin, end).unwrap_or(rate));
        for (before, stamp, after) in samples {
            let at = scale.mono(stamp);
            // 2 µs of slack: the anchor pair itself and a preemption between reads.
            assert!(
                at + 2_000 >= before && at <= after + 2_000,
                "stamp at {at} outside [{before}, {after}] (tsc: {})",
                clock.is_tsc()
            );
        }
    }
}
