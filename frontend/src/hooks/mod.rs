//! The page's hooks, one file each: each ties one source of change outside the components
//! (the animation clock, the keyboard, the embedding page's messages, the agent's
//! connection, the theme, the recorded runs a page opens by itself) to the store.

mod clock;
mod connection;
mod keyboard;
mod messages;
mod recorded;
mod theme;

pub use clock::use_animation_clock;
pub use connection::use_connection;
pub use keyboard::{key_command, use_keyboard};
pub use messages::use_embed_messages;
pub use recorded::use_recorded_runs;
pub use theme::{prefers, use_theme};
