//! The one interpretation of a run's events. Events are checked once ([`validate`]), become
//! facts once ([`replay`]: who runs where, who holds and who waits for each process's lock,
//! every thread's one state, the task lifecycle, hand-overs, latest names, and the totals a
//! summary reports), and are drawn from those facts ([`frame`]). Nothing else — summary,
//! export, render, the page's views — derives a fact from raw events.

pub mod columns;
pub mod frame;
pub mod replay;
pub mod validate;
