//! One component per picture on the page.

pub mod event_loop;
pub mod run;
pub mod status;
pub mod summary;
pub mod topology;
