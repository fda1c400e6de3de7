//! One component per picture on the page.

pub mod compare;
pub mod controls;
pub mod cores;
pub mod event_loop;
pub mod gallery;
pub mod now_showing;
pub mod player;
pub mod run;
pub mod status;
pub mod summary;
pub mod timeline;
pub mod topology;
