//! PURE: how a source maps onto a target. Today the built-in profiles (`alkemio`,
//! `kratos`) and plain databases, as data: never-copied tables, tables skipped when the
//! target lacks them, per-column encoding overrides, and the table selection.

pub mod profile;

pub use profile::{Profile, Selection};
