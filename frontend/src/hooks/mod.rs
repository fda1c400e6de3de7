//! The page's hooks, one file each: each ties one source of change outside the components
//! (the animation clock, the keyboard, the embedding page's messages, the agent's
//! connection, the theme, the recorded runs a page opens by itself, an embed's frame) to the
//! store or the page.

mod clock;
mod connection;
mod fit;
mod keyboard;
mod messages;
mod recorded;
mod theme;

pub use clock::use_animation_clock;
pub use connection::use_connection;
pub use fit::use_fit_to_frame;
pub use keyboard::{key_command, use_keyboard};
pub use messages::use_embed_messages;
pub use recorded::use_recorded_runs;
pub use theme::{prefers, use_theme};
