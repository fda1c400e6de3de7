//! The compute-bound job every compute scenario shares: counting primes by trial division.
//!
//! Work unit `i` tests [`NUMBERS_PER_UNIT`] odd numbers of a fixed range just above 10⁹, about
//! 50 µs of one core on average. Units are independent, so any split over threads or processes
//! does the same total work and must find the same count, which the tests check.

/// Odd numbers tested per unit.
pub const NUMBERS_PER_UNIT: u32 = 12;
const BASE: u32 = 1_000_000_001;

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u32;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Runs work unit `index` and returns how many primes it found.
#[inline(never)]
pub fn unit(index: u32) -> u32 {
    let start = BASE.saturating_add(index.saturating_mul(2 * NUMBERS_PER_UNIT));
    (0..NUMBERS_PER_UNIT)
        .filter(|k| is_prime(start.saturating_add(2 * k)))
        .count() as u32
}

/// Splits `work` units over `parts` parts as evenly as possible: part `i` gets `range(i)`.
pub fn split(work: u32, parts: u32, i: u32) -> std::ops::Range<u32> {
    let parts = parts.max(1);
    let per = work / parts;
    let extra = work % parts;
    let start = i * per + i.min(extra);
    let len = per + u32::from(i < extra);
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_are_primes() {
        let small: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(1_000_000_007));
        assert!(!is_prime(1_000_000_011));
    }

    #[test]
    fn splits_cover_the_work_exactly_once() {
        for (work, parts) in [(10, 3), (7, 7), (5, 8), (10_000, 64)] {
            let mut covered = Vec::new();
            for i in 0..parts {
                covered.extend(split(work, parts, i));
            }
            assert_eq!(covered, (0..work).collect::<Vec<_>>(), "{work}/{parts}");
        }
    }

    #[test]
    fn the_count_does_not_depend_on_the_split() {
        let whole: u32 = (0..200).map(unit).sum();
        let parts: u32 = (0..7)
            .map(|i| split(200, 7, i).map(unit).sum::<u32>())
            .sum();
        assert_eq!(whole, parts);
        assert!(whole > 0);
    }
}
