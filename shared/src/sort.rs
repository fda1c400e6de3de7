//! Sorting that the page compiles once. Every call of std's `sort_by_key`, `sort_unstable`, …
//! monomorphises a whole sorting algorithm (driftsort or ipnsort, 3–5 kB of WebAssembly) for
//! its element type and comparison: about 45 call sites made 108 kB of the page's code. In the
//! page (wasm32) these functions find the order with one sort of `u32` positions through a
//! `&dyn` comparison, compiled once, then move the elements into place by following the
//! permutation's cycles (a few hundred bytes per type). Natively, where code size does not
//! matter and speed does, they are std's own sorts.
//!
//! [`Grown`] is a list sorted again each time it grows (the replay's indexes, every frame of a
//! live run): it sorts only what came since its last sort, after the part of that which is
//! already in order (usually all of it), and merges it in. That is less work than std's sort,
//! which passes over the whole list each time, and compiles small. It works the same way on
//! both sides, so the agent's replay (summaries, exports, the tests) runs the page's code.
//!
//! The page's sorts are stable (equal elements keep their order). Natively [`natural`] is
//! std's unstable sort, which orders the same wherever equal elements are identical, as they
//! are for the plain tuples and numbers it sorts here.

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

/// The `k` smallest of `items`, in order; of equal ones, those that come first. One pass that
/// keeps the `k` found so far in order (a binary search and an insert each): linear in the items
/// for the small `k` of a view (the front of a queue), and one small function, where
/// `select_nth_unstable` compiles a quickselect and a median-of-medians into the page.
pub fn smallest<T: Ord>(items: impl IntoIterator<Item = T>, k: usize) -> Vec<T> {
    let mut best: Vec<T> = Vec::with_capacity(k.saturating_add(1).min(1024));
    if k == 0 {
        return best;
    }
    for x in items {
        if best.len() == k && best.last().is_some_and(|last| x >= *last) {
            continue;
        }
        let at = best.partition_point(|y| *y <= x);
        best.insert(at, x);
        best.truncate(k);
    }
    best
}

/// A list kept in order as it grows: elements are pushed in any order, and [`Grown::sort_by_key`]
/// or [`Grown::sort`] put it in order again, sorting only what came since the last time.
/// Reading goes through the slice it derefs to.
#[derive(Debug, Clone)]
pub struct Grown<T> {
    items: Vec<T>,
    /// How many of the first items are known to be in order.
    sorted: usize,
}

impl<T> Default for Grown<T> {
    fn default() -> Self {
        Grown {
            items: Vec::new(),
            sorted: 0,
        }
    }
}

/// Two lists are equal when their items are, however far each was sorted.
impl<T: PartialEq> PartialEq for Grown<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T> std::ops::Deref for Grown<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<'a, T> IntoIterator for &'a Grown<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> Grown<T> {
    /// Adds an element (at the end, until the next sort puts it in place).
    pub fn push(&mut self, item: T) {
        self.items.push(item);
    }

    /// Puts the list in order by `key` (stable: equal keys keep the order they came in).
    pub fn sort_by_key<K: Ord>(&mut self, key: impl Fn(&T) -> K) {
        grown(&mut self.items, self.sorted, &|a: &T, b: &T| {
            key(a).cmp(&key(b))
        });
        self.sorted = self.items.len();
    }

    /// Puts the list in its natural order.
    pub fn sort(&mut self)
    where
        T: Ord,
    {
        grown(&mut self.items, self.sorted, &T::cmp);
        self.sorted = self.items.len();
    }
}

/// Sorts `v`, whose first `sorted` elements are in order: skips what follows them in order
/// already, sorts the rest on its own and merges it into the part of the sorted run it reaches.
fn grown<T>(v: &mut [T], sorted: usize, cmp: &dyn Fn(&T, &T) -> Ordering) {
    let n = v.len();
    let mut s = sorted.clamp(1, n.max(1));
    while s < n && cmp(&v[s - 1], &v[s]) != Ordering::Greater {
        s += 1;
    }
    if s >= n {
        return;
    }
    compact(&mut v[s..], cmp);
    // Everything in the sorted run up to the new part's first element stays where it is.
    let cut = v[..s].partition_point(|x| cmp(x, &v[s]) != Ordering::Greater);
    if cut == s {
        return;
    }
    let perm = {
        let items: &[T] = v;
        merge(s - cut, n - s, &|a, b| cmp(&items[cut + a], &items[s + b]))
    };
    apply(&mut v[cut..], &perm);
}

/// The stable merge of two sorted runs of `left` and `right` elements, as positions in the
/// two runs laid end to end (`cmp(a, b)` compares the left run's `a` with the right run's `b`).
fn merge(left: usize, right: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<u32> {
    let mut out = Vec::with_capacity(left + right);
    let (mut a, mut b) = (0, 0);
    while a < left && b < right {
        if cmp(a, b) == Ordering::Greater {
            out.push((left + b) as u32);
            b += 1;
        } else {
            out.push(a as u32);
            a += 1;
        }
    }
    out.extend((a..left).map(|i| i as u32));
    out.extend((left + b..left + right).map(|i| i as u32));
    out
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

    /// Ordered by its key only: which of equal keys comes first shows stability.
    #[derive(Clone, Copy, Debug)]
    struct Keyed(u64, usize);
    impl PartialEq for Keyed {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Keyed {}
    impl PartialOrd for Keyed {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Keyed {
        fn cmp(&self, other: &Self) -> Ordering {
            self.0.cmp(&other.0)
        }
    }

    #[test]
    fn smallest_is_the_front_of_a_stable_sort() {
        for seed in 0..40 {
            for k in [0, 1, 3, 8, 100] {
                let n = (seed as usize * 7) % 60;
                let items: Vec<Keyed> = numbers(seed, n, 10)
                    .into_iter()
                    .enumerate()
                    .map(|(i, key)| Keyed(key, i))
                    .collect();
                let mut expected = items.clone();
                expected.sort_by_key(|x| x.0);
                expected.truncate(k);
                let tags = |v: Vec<Keyed>| v.into_iter().map(|x| (x.0, x.1)).collect::<Vec<_>>();
                assert_eq!(
                    tags(smallest(items, k)),
                    tags(expected),
                    "seed {seed}, k {k}"
                );
            }
        }
        // Descending input: every item goes to the front.
        assert_eq!(smallest((0..1000).rev(), 3), vec![0, 1, 2]);
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
    fn a_grown_list_sorts_what_came_and_merges_it_in_stably() {
        // Batches as a live run sends them: mostly later than what came before, some earlier,
        // some out of order among themselves; keys repeat (stability shows in the positions).
        let mut v: Vec<(u64, usize)> = Vec::new();
        let mut expected: Vec<(u64, usize)> = Vec::new();
        let mut sorted = 0;
        let mut at = 0;
        for (batch, seed) in (0..40).zip(1u64..) {
            let n = (numbers(seed, 1, 60)[0] + 1) as usize;
            let base = numbers(seed + 100, 1, 4)[0];
            for k in numbers(seed + 200, n, 50) {
                // Mostly around `base`, a few far back.
                let key = if k < 5 { k } else { base * 10 + batch * 20 + k };
                v.push((key, at));
                expected.push((key, at));
                at += 1;
            }
            grown(&mut v, sorted, &|a: &(u64, usize), b: &(u64, usize)| {
                a.0.cmp(&b.0)
            });
            sorted = v.len();
            expected.sort_by_key(|p| p.0);
            assert_eq!(v, expected, "after batch {batch}");
        }
        // An already sorted tail, an empty list, one element.
        let mut w = vec![1, 2, 3, 4, 5];
        grown(&mut w, 2, &u32::cmp);
        assert_eq!(w, [1, 2, 3, 4, 5]);
        let mut e: Vec<u32> = Vec::new();
        grown(&mut e, 0, &u32::cmp);
        let mut one = vec![7];
        grown(&mut one, 0, &u32::cmp);
        assert_eq!(one, [7]);
        // A claimed sorted part longer than the list is clamped.
        let mut w = vec![3, 1, 2];
        grown(&mut w, 9, &u32::cmp);
        assert_eq!(w, [3, 1, 2], "it trusts the caller about the sorted part");
        grown(&mut w, 1, &u32::cmp);
        assert_eq!(w, [1, 2, 3]);
    }

    #[test]
    fn grown_lists_compare_by_items_and_sort_as_std_does() {
        let mut a: Grown<(u32, char)> = Grown::default();
        let mut b: Grown<(u32, char)> = Grown::default();
        for p in [(3, 'a'), (1, 'b'), (3, 'c')] {
            a.push(p);
            b.push(p);
        }
        a.sort_by_key(|p| p.0);
        assert_eq!(&a[..], [(1, 'b'), (3, 'a'), (3, 'c')]);
        a.push((0, 'd'));
        a.sort();
        assert_eq!(&a[..], [(0, 'd'), (1, 'b'), (3, 'a'), (3, 'c')]);
        b.push((0, 'd'));
        b.sort();
        assert_eq!(a, b, "equal items, however they were sorted on the way");
        assert_eq!((&a).into_iter().count(), 4);
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
