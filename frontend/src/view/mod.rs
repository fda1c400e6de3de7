//! One component per picture on the page.

pub mod status;
pub mod topology;
