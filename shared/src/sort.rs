//! Sorting that the page compiles once. Every call of std's `sort_by_key`, `sort_unstable`, …
//! monomorphises a whole sorting algorithm (driftsort or ipnsort, 3–5 kB of WebAssembly) for
//! its element type and comparison: about 35 call sites made 108 kB of the page's code. In the
//! page (wasm32) these functions find the order with one sort of `u32` positions through a
//! `&dyn` comparison, compiled once, then move the elements into place by following the
//! permutation's cycles (a few hundred bytes per type). Natively, where code size does not
//! matter and speed does, they are std's own sorts.
//!
//! The replay's indexes, sorted again every time they grow (each frame of a live run), keep
//! std's sorts (`Replay::prepare`): those find the part already sorted in one inlined pass,
//! where this sort would pay a call through a pointer per element and two allocations each
//! frame (following a live `gil` run fell from 34 to 20 fps with them here).
//!
//! All of them are stable (equal elements keep their order), so `unstable` is a promise kept
//! more strictly than asked, and the two builds sort to the same result.

use std::cmp::Ordering;

/// Sorts `v` by the key `key` gives each element (stable).
pub fn by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    if cfg!(target_arch = "wasm32") {
        compact(v, &|a: &T, b: &T| key(a).cmp(&key(b)));
    } else {
        v.sort_by_key(key);
    }
}

/// Sorts `v` with the comparison `cmp` (stable).
pub fn by<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    if cfg!(target_arch = "wasm32") {
        compact(v, &cmp);
    } else {
        v.sort_by(cmp);
    }
}

/// Sorts `v` in its natural order.
pub fn natural<T: Ord>(v: &mut [T]) {
    if cfg!(target_arch = "wasm32") {
        compact(v, &T::cmp);
    } else {
        v.sort_unstable();
    }
}

/// The page's sort: the order from [`order`] (not generic), then the moves.
fn compact<T>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let perm = {
        let items: &[T] = v;
        order(items.len(), &|a, b| cmp(&items[a], &items[b]))
    };
    apply(v, &perm);
}

/// The stable order of `n` elements under `cmp` (by position): `result[i]` is the position of
/// the element that belongs at `i`. The one place a sorting algorithm is compiled for the page.
fn order(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.sort_by(|&a, &b| cmp(a as usize, b as usize));
    perm
}

/// Puts the element at `perm[i]` at `i`, for every `i`, by swaps along each cycle.
fn apply<T>(v: &mut [T], perm: &[u32]) {
    let mut done = vec![false; v.len()];
    for start in 0..v.len() {
        if done[start] {
            continue;
        }
        // Position `at` holds the element that started at `start`; it takes the one that
        // belongs there and passes the start's element on, until the cycle closes.
        let mut at = start;
        loop {
            done[at] = true;
            let from = perm[at] as usize;
            if from == start {
                break;
            }
            v.swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependencies in `shared`).
    fn numbers(seed: u64, n: usize, range: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % range
            })
            .collect()
    }

    #[test]
    fn the_compact_sort_agrees_with_std_and_is_stable() {
        for (seed, n, range) in [
            (1, 0, 5),
            (2, 1, 5),
            (3, 2, 2),
            (4, 17, 4),
            (5, 1000, 30),
            (6, 5000, 1 << 40),
        ] {
            let keys = numbers(seed, n, range);
            // Pairs (key, original position): stability shows as positions rising within a key.
            let mut ours: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
            let mut std_sorted = ours.clone();
            compact(&mut ours, &|a: &(u64, usize), b: &(u64, usize)| {
                a.0.cmp(&b.0)
            });
            std_sorted.sort_by_key(|p| p.0);
            assert_eq!(ours, std_sorted, "seed {seed}, {n} elements");
        }
    }

    #[test]
    fn moves_owned_elements_without_losing_or_doubling_any() {
        let keys = numbers(9, 300, 50);
        let mut strings: Vec<String> = keys.iter().map(|k| format!("{k:03}")).collect();
        let mut expected = strings.clone();
        compact(&mut strings, &String::cmp);
        expected.sort();
        assert_eq!(strings, expected);
    }

    #[test]
    fn the_public_sorts_order_as_asked() {
        let mut v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd')];
        by_key(&mut v, |p| std::cmp::Reverse(p.0));
        assert_eq!(v, [(3, 'a'), (3, 'c'), (2, 'd'), (1, 'b')]);
        by(&mut v, |a, b| a.1.cmp(&b.1));
        assert_eq!(v, [(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd')]);
        natural(&mut v);
        assert_eq!(v, [(1, 'b'), (2, 'd'), (3, 'a'), (3, 'c')]);
    }
}
