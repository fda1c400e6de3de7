//! How much of the run ran at once: the most hardware threads busy at the same instant, and
//! how long the run spent with each number of them busy.

use super::Replay;
use crate::event::Ns;

impl Replay {
    /// Where each hardware thread becomes busy (`true`) and idle again: the union of its
    /// slices, so that a hardware thread counts once even where two slices on it overlap (a
    /// sampled run's slices can: its times are known to a sampling period).
    fn busy_edges(&self) -> Vec<(Ns, bool)> {
        let mut edges = Vec::new();
        for lane in self.lanes.values() {
            let mut open: Option<(Ns, Ns)> = None;
            for s in lane.slices.iter().filter(|s| s.end > s.start) {
                open = match open {
                    Some((a, b)) if s.start <= b => Some((a, b.max(s.end))),
                    Some((a, b)) => {
                        edges.extend([(a, true), (b, false)]);
                        Some((s.start, s.end))
                    }
                    None => Some((s.start, s.end)),
                };
            }
            if let Some((a, b)) = open {
                edges.extend([(a, true), (b, false)]);
            }
        }
        edges
    }

    /// The most hardware threads that ran a thread of the run at the same instant, and the
    /// first instant it happened (`None` when nothing ran). A slice ending when another
    /// starts does not overlap it.
    pub fn peak_running(&self) -> Option<(u32, Ns)> {
        let mut edges = self.busy_edges();
        // Ends before starts at the same time.
        crate::sort::by_key(&mut edges, |&(t, start)| (t, start));
        let (mut now, mut best) = (0u32, None::<(u32, Ns)>);
        for (t, start) in edges {
            if start {
                now += 1;
                if best.is_none_or(|(n, _)| now > n) {
                    best = Some((now, t));
                }
            } else {
                now = now.saturating_sub(1);
            }
        }
        best
    }

    /// How long the run had each number of hardware threads busy with its threads:
    /// `[k]` is the time exactly `k` ran at once, from the first slice's start to the last
    /// one's end (so `[0]` is the time none ran in between). Empty when nothing ran.
    pub fn time_by_running(&self) -> Vec<Ns> {
        let mut edges = self.busy_edges();
        crate::sort::by_key(&mut edges, |&(t, start)| (t, start));
        let mut out: Vec<Ns> = Vec::new();
        let (mut now, mut last) = (0usize, None::<Ns>);
        for (t, start) in edges {
            if let Some(l) = last {
                if out.len() <= now {
                    out.resize(now + 1, 0);
                }
                out[now] += t - l;
            }
            last = Some(t);
            if start {
                now += 1;
            } else {
                now = now.saturating_sub(1);
            }
        }
        out
    }
}
