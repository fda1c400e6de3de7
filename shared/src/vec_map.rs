//! Role: a small ordered map kept as a sorted `Vec` of pairs, for the model's maps keyed by a
//! CPU, a thread or a process (a few to a few hundred keys, looked up per event, new keys rare).
//!
//! `BTreeMap` would do the same job, but each of its key-value types compiles its own node,
//! search, insert, merge and drop code into the page (about 4 kB of WebAssembly per type);
//! this compiles to a binary search and a `Vec` insert. Lookups are as fast for these sizes;
//! inserting a new key moves the keys after it, so it is not for maps that grow large out of
//! order.

/// A map ordered by key, on a sorted `Vec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecMap<K, V> {
    items: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap { items: Vec::new() }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map.
    pub const fn new() -> Self {
        VecMap { items: Vec::new() }
    }

    fn find(&self, key: &K) -> Result<usize, usize> {
        self.items.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.items[i].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.items[i].1)
    }

    /// The value of `key`, made by `make` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.items.insert(i, (key, make()));
                i
            }
        };
        &mut self.items[i].1
    }

    /// The value of `key`, the default first if there is none.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.get_or_insert_with(key, V::default)
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, value)),
            Err(i) => {
                self.items.insert(i, (key, value));
                None
            }
        }
    }
}

/// Pairs collected: one pass when they come in key order (a later pair of the same key
/// replaces the earlier one, as in `insert`).
impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut map = VecMap::new();
        for (k, v) in pairs {
            match map.items.last() {
                Some((last, _)) if *last < k => map.items.push((k, v)),
                None => map.items.push((k, v)),
                Some(_) => {
                    map.insert(k, v);
                }
            }
        }
        map
    }
}

/// The value of a key that is there (panics otherwise, as `HashMap`'s does).
impl<K: Ord, V> std::ops::Index<&K> for VecMap<K, V> {
    type Output = V;

    fn index(&self, key: &K) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no such key in the VecMap"),
        }
    }
}

impl<K, V> VecMap<K, V> {
    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.items.iter().map(|(k, _)| k)
    }

    /// Values in the order of their keys.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.items.iter().map(|(_, v)| v)
    }

    /// Values in the order of their keys, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.items.iter_mut().map(|(_, v)| v)
    }

    /// Pairs in the order of their keys.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    /// Pairs in the order of their keys, taken out.
    pub fn into_values(self) -> impl Iterator<Item = V> {
        self.items.into_iter().map(|(_, v)| v)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::VecMap;
    use std::collections::BTreeMap;

    #[test]
    fn collects_in_or_out_of_order_as_a_btree_map() {
        let pairs = [(3, 'a'), (1, 'b'), (7, 'c'), (3, 'd'), (9, 'e'), (0, 'f')];
        let ours: VecMap<_, _> = pairs.into_iter().collect();
        let theirs: BTreeMap<_, _> = pairs.into_iter().collect();
        assert!(ours.iter().eq(theirs.iter()));
        assert_eq!(ours[&3], 'd');
    }

    #[test]
    fn behaves_as_a_btree_map() {
        // Keys in a scrambled order, repeated: every step agrees with BTreeMap's.
        let mut ours = VecMap::new();
        let mut theirs = BTreeMap::new();
        for step in 0..500u32 {
            let key = (step * 37) % 61;
            match step % 4 {
                0 => assert_eq!(ours.insert(key, step), theirs.insert(key, step)),
                1 => *ours.get_or_default(key) += 1,
                2 => *ours.get_or_insert_with(key, || 7) += 2,
                _ => {
                    if let Some(v) = ours.get_mut(&key) {
                        *v += 3;
                    }
                }
            }
            match step % 4 {
                1 => *theirs.entry(key).or_default() += 1,
                2 => *theirs.entry(key).or_insert(7) += 2,
                3 => {
                    if let Some(v) = theirs.get_mut(&key) {
                        *v += 3;
                    }
                }
                _ => {}
            }
            assert_eq!(ours.get(&key), theirs.get(&key), "step {step}");
        }
        assert_eq!(ours.len(), theirs.len());
        assert!(ours.iter().eq(theirs.iter()), "in key order");
        assert!(ours.keys().eq(theirs.keys()));
        assert!(ours.values().eq(theirs.values()));
        assert_eq!(ours.get(&1000), None);
        ours.clear();
        assert!(ours.is_empty());
    }
}
