//! Output: everything a person or a CI system reads — the one progress
//! printer (stderr), colour and `NO_COLOR`, and the plan's renderers
//! (human, JSON, JUnit, GitHub annotations, Graphviz DOT).
//!
//! Renders values; never reads the world or decides anything. Every text
//! leaves through the spec's redactor before it is written.

pub mod ci;
pub mod dot;
pub mod progress;
pub mod render;
pub mod style;

pub use progress::Progress;
pub use style::Style;
