//! Running time per pixel column, for the timelines (the page's canvas and `coreplay
//! render`'s pictures): a lane's spans summed into the columns they cover, so that a thread or
//! a CPU busy a few microseconds in every column is drawn that busy, not busy throughout (drawn
//! a column per span, the 64 threads of a busy `gil` run, each on a CPU 3 % of the time, looked
//! as if they all ran all the time, and so did both CPUs).

use crate::event::Ns;

/// A bar of a lane: `width` columns from `x`, each covered `share` (0–1) of its width by
/// running, in `colour`: the one whose spans covered most of the column (on a CPU's lane, the
/// thread that ran most of it). Full columns side by side in one colour come as one bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar<C> {
    /// Its left edge (a whole column).
    pub x: f64,
    /// Columns.
    pub width: f64,
    /// How much of each column was covered, 0–1.
    pub share: f64,
    /// The colour that covered most of it.
    pub colour: C,
}

impl<C> Bar<C> {
    /// Whether running covered all of it.
    pub fn full(&self) -> bool {
        self.share >= FULL
    }

    /// How tall it stands in a lane `lane` high: all of it when full, else its share, at
    /// least `least` (so that a little running still shows).
    pub fn height(&self, lane: f64, least: f64) -> f64 {
        if self.full() {
            lane
        } else {
            (lane * self.share).max(least)
        }
    }
}

/// A column covered this much counts as full (what rounding of positions leaves).
const FULL: f64 = 0.999;

/// The bars of `spans` (sorted by start, not overlapping), placed by `x_of` (a time's
/// position, in columns of width 1, kept within the window by the caller), each span in its
/// `colour`, given to `out` left to right.
pub fn bars<T, C: Copy + PartialEq>(
    spans: &[T],
    x_of: impl Fn(Ns) -> f64,
    bounds: impl Fn(&T) -> (Ns, Ns),
    colour: impl Fn(&T) -> C,
    mut out: impl FnMut(Bar<C>),
) {
    // The column being summed: its left edge, and each colour's part of it (a column holds
    // a few); and a run of full columns not given out yet.
    let mut column: Option<f64> = None;
    let mut parts: Vec<(C, f64)> = Vec::new();
    let mut full: Option<Bar<C>> = None;
    let mut close = |left: f64, parts: &mut Vec<(C, f64)>, full: &mut Option<Bar<C>>| {
        let Some(&first) = parts.first() else {
            return;
        };
        let covered: f64 = parts.iter().map(|p| p.1).sum();
        // The colour with the most of the column; among equals, the first.
        let mut most = first;
        for &p in parts.iter() {
            if p.1 > most.1 {
                most = p;
            }
        }
        parts.clear();
        let c = most.0;
        if covered >= FULL {
            match full {
                Some(b) if b.colour == c && (b.x + b.width - left).abs() < 0.01 => b.width += 1.0,
                _ => {
                    if let Some(b) = full.take() {
                        out(b);
                    }
                    *full = Some(Bar {
                        x: left,
                        width: 1.0,
                        share: 1.0,
                        colour: c,
                    });
                }
            }
        } else {
            if let Some(b) = full.take() {
                out(b);
            }
            out(Bar {
                x: left,
                width: 1.0,
                share: covered,
                colour: c,
            });
        }
    };
    for span in spans {
        let (start, end) = bounds(span);
        let (mut a, b) = (x_of(start), x_of(end));
        let c = colour(span);
        while a < b {
            let left = a.floor();
            let right = b.min(left + 1.0);
            if column != Some(left) {
                if let Some(l) = column {
                    close(l, &mut parts, &mut full);
                }
                column = Some(left);
            }
            match parts.iter_mut().find(|p| p.0 == c) {
                Some(p) => p.1 += right - a,
                None => parts.push((c, right - a)),
            }
            a = right;
        }
    }
    if let Some(l) = column {
        close(l, &mut parts, &mut full);
    }
    if let Some(b) = full {
        out(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (x, width, share, colour) of each bar, 1 column = 1 µs.
    fn of(spans: &[(Ns, Ns, u32)]) -> Vec<(f64, f64, f64, u32)> {
        let mut v = Vec::new();
        bars(
            spans,
            |t| (t.min(20_000)) as f64 / 1_000.0,
            |s| (s.0, s.1),
            |s| s.2,
            |b| v.push((b.x, b.width, b.share, b.colour)),
        );
        v
    }

    /// A thread that ran a sliver of each column is drawn that much; columns it ran all of
    /// are one full bar.
    #[test]
    fn a_lane_shows_how_much_of_each_column_ran() {
        // 125 ns in each of the first three columns, then 3 whole columns, then half of one
        // column in two pieces.
        let spans = [
            (0, 125, 0),
            (1_000, 1_125, 0),
            (2_000, 2_125, 0),
            (4_000, 7_000, 0),
            (8_000, 8_250, 0),
            (8_500, 8_750, 0),
        ];
        assert_eq!(
            of(&spans),
            vec![
                (0.0, 1.0, 0.125, 0),
                (1.0, 1.0, 0.125, 0),
                (2.0, 1.0, 0.125, 0),
                (4.0, 3.0, 1.0, 0),
                (8.0, 1.0, 0.5, 0),
            ]
        );
        // Nothing at all draws nothing; a span past the end stops at it.
        assert_eq!(of(&[(5, 5, 0)]), vec![]);
        assert_eq!(
            of(&[(18_500, 40_000, 0)]),
            vec![(18.0, 1.0, 0.5, 0), (19.0, 1.0, 1.0, 0)]
        );
    }

    /// A CPU's column is as busy as all its threads' time in it, in the colour of the thread
    /// that had most of it; full columns of different threads are separate bars.
    #[test]
    fn a_column_takes_the_colour_of_who_ran_most_of_it() {
        let spans = [
            (0, 125, 1),
            (250, 750, 2),
            (1_000, 3_000, 3),
            (3_000, 5_000, 4),
        ];
        assert_eq!(
            of(&spans),
            vec![(0.0, 1.0, 0.625, 2), (1.0, 2.0, 1.0, 3), (3.0, 2.0, 1.0, 4),]
        );
        // Thread 1 ran 250 + 250 ns of the column in two slices, thread 2 375 ns in one: the
        // column is thread 1's.
        let spans = [(0, 250, 1), (250, 625, 2), (625, 875, 1)];
        assert_eq!(of(&spans), vec![(0.0, 1.0, 0.875, 1)]);
    }
}
