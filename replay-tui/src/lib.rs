//! `tapline replay`: a terminal viewer that steps through recorded sessions command
//! by command.
//!
//! - `source`: the archive reads (windows of a session by seq, never the whole session);
//! - `session_index`: every listed session held compactly, so the browser sorts and
//!   filters millions in memory;
//! - `detail_cache`: results read ahead of the player's cursor, bounded;
//! - `model`: what is shown, independent of where it came from;
//! - `browser` and `player`: state and keys; `draw_player` and `browser::draw_browser`:
//!   drawing; `result_view`: a result as table, error or hex;
//! - `app`: the terminal loop, restored on every exit path.

pub mod app;
pub mod browser;
mod columns;
mod detail_cache;
pub mod draw_player;
pub mod error;
pub mod model;
pub mod player;
pub mod result_view;
pub mod session_index;
pub mod source;
pub mod theme;
pub mod time;

pub use app::{ReplayOptions, run};
pub use error::ReplayError;
pub use source::ArchiveSource;
