//! The learner's progress: which lessons they have run to the end, and what they predicted,
//! kept in the browser's `localStorage` (nothing leaves the page). A page that cannot store
//! (private mode, storage off) still works; it only forgets.

use std::collections::BTreeSet;

use super::lessons::LessonId;

const KEY: &str = "coreplay.lessons.done";

/// Lessons finished, read from `text` (names separated by commas; unknown names ignored).
pub fn parse(text: &str) -> BTreeSet<&'static str> {
    // Inserted one by one: collecting into a set sorts first (a sort compiled for it).
    let mut done = BTreeSet::new();
    for id in text
        .split(',')
        .filter_map(|n| LessonId::from_name(n.trim()))
    {
        done.insert(id.name());
    }
    done
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The lessons this browser has finished.
pub fn load() -> BTreeSet<&'static str> {
    storage()
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// Marks `lesson` finished; returns the new set.
pub fn finish(lesson: LessonId) -> BTreeSet<&'static str> {
    let mut done = load();
    done.insert(lesson.name());
    if let Some(s) = storage() {
        let text = done.iter().copied().collect::<Vec<_>>().join(",");
        // Storage full or refused: the page goes on, it only forgets.
        let _ = s.set_item(KEY, &text);
    }
    done
}

/// The first lesson not finished yet (the last one when all are).
pub fn next_to_do(done: &BTreeSet<&'static str>) -> LessonId {
    LessonId::ALL
        .into_iter()
        .find(|l| !done.contains(l.name()))
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
        assert_eq!(next_to_do(&BTreeSet::new()), LessonId::Machine);
        let all = LessonId::ALL
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(next_to_do(&parse(&all)), LessonId::Watch);
    }
}
