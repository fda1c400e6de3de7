//! The learner's progress: which lessons they have run to the end, and what they predicted,
//! kept in the browser's `localStorage` (nothing leaves the page). A page that cannot store
//! (private mode, storage off) still works; it only forgets.

use super::lessons::LessonId;

const KEY: &str = "coreplay.lessons.done";

/// Lessons finished: a bit per lesson, in the order of [`LessonId::ALL`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Done(u32);

impl Done {
    fn bit(id: LessonId) -> u32 {
        let i = LessonId::ALL.iter().position(|l| *l == id).unwrap_or(31);
        1 << i.min(31)
    }

    /// Whether `id` was finished.
    pub fn contains(self, id: LessonId) -> bool {
        self.0 & Done::bit(id) != 0
    }

    /// Marks `id` finished.
    pub fn insert(&mut self, id: LessonId) {
        self.0 |= Done::bit(id);
    }

    /// How many were finished.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether none was.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// As stored: names separated by commas.
    fn text(self) -> String {
        LessonId::ALL
            .into_iter()
            .filter(|l| self.contains(*l))
            .map(LessonId::name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Lessons finished, read from `text` (names separated by commas; unknown names ignored).
pub fn parse(text: &str) -> Done {
    let mut done = Done::default();
    for id in text
        .split(',')
        .filter_map(|n| LessonId::from_name(n.trim()))
    {
        done.insert(id);
    }
    done
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The lessons this browser has finished.
pub fn load() -> Done {
    storage()
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// Marks `lesson` finished; returns the new set.
pub fn finish(lesson: LessonId) -> Done {
    let mut done = load();
    done.insert(lesson);
    if let Some(s) = storage() {
        // Storage full or refused: the page goes on, it only forgets.
        let _ = s.set_item(KEY, &done.text());
    }
    done
}

/// The first lesson not finished yet (the last one when all are).
pub fn next_to_do(done: &Done) -> LessonId {
    LessonId::ALL
        .into_iter()
        .find(|l| !done.contains(*l))
        .unwrap_or(LessonId::Watch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_back_and_ignores_junk() {
        let done = parse("machine, gil,<b>nope</b>,,parallel");
        assert_eq!(done.len(), 3);
        assert_eq!(next_to_do(&done), LessonId::Oversubscribed);
        assert_eq!(next_to_do(&Done::default()), LessonId::Machine);
        assert_eq!(parse(&done.text()), done, "written as it is read");
        assert_eq!(done.text(), "machine,parallel,gil");
        assert!(parse("").is_empty());
        let all = LessonId::ALL
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(next_to_do(&parse(&all)), LessonId::Watch);
    }
}
