//! Learn: the concepts taught step by step by real runs, on the learner's machine when an
//! agent is there, else on runs recorded on a 2- and a 16-hardware-thread machine.
//!
//! Each lesson: a short text (every term explained by the glossary), a prediction asked
//! before the run, the run, the pictures it needs with what to look at and a "next
//! interesting moment" step, and an explanation chosen from the run's own figures.
//!
//! - [`lessons`]: the lessons' content and what each runs on a given machine.
//! - [`glossary`]: the terms and their meanings.
//! - [`outcome`]: the answer a run bore out and the sentences explaining it (pure, tested for
//!   1 to 64 hardware threads, idle and busy).
//! - [`progress`]: lessons finished, in `localStorage`.
//! - [`page`]: the components.

pub mod glossary;
pub mod lessons;
pub mod outcome;
pub mod page;
pub mod progress;

pub use lessons::LessonId;
