//! Run-wide ids (threads, tasks) to indices.

use std::collections::HashMap;

/// Run-wide ids (threads, tasks) to indices: a plain vector for the small dense ids the agent
/// hands out, a hash map for any others (a trace file may hold anything). Lookups run
/// thousands of times per animation frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct IdMap {
    pub(super) dense: Vec<u32>,
    pub(super) sparse: HashMap<u32, usize>,
}

/// Ids below this are kept in the vector.
pub(super) const DENSE_IDS: u32 = 1 << 20;

impl IdMap {
    pub(super) fn get(&self, id: u32) -> Option<usize> {
        if id < DENSE_IDS {
            self.dense
                .get(id as usize)
                .filter(|&&i| i != u32::MAX)
                .map(|&i| i as usize)
        } else {
            self.sparse.get(&id).copied()
        }
    }

    pub(super) fn insert(&mut self, id: u32, index: usize) {
        if id < DENSE_IDS {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, u32::MAX);
            }
            self.dense[i] = u32::try_from(index).unwrap_or(u32::MAX);
        } else {
            self.sparse.insert(id, index);
        }
    }
}
