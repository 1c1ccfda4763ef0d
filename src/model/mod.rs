//! The shared vocabulary every layer speaks, and nothing else: where a rule file says something
//! and what is wrong with it ([`Location`], [`RuleError`]), how options are read ([`MapReader`]),
//! columns and their logical types (and how time columns are dated), query rows, the canon that
//! makes values comparable across engines (and its pure text and hash encodings), table
//! references and SQL quoting.
//!
//! This module is the bottom layer: it imports nothing from the rest of the crate, so any
//! feature module (rules, sources, reconcile, checks, reports) can use it without an import
//! circle. A type belongs here when two feature modules need it and neither owns it.

pub mod canon;
pub mod columns;
pub mod dating;
pub mod figure;
pub mod hash;
pub mod interpolate;
pub mod location;
pub mod reader;
pub mod row_hash;
pub mod rows;
pub mod sql;
pub mod table_ref;

pub use canon::{Canon, Mismatch};
pub use columns::{Column, LogicalType};
pub use figure::{Figure, Unit};
pub use interpolate::{interpolate, InterpolationError};
pub use location::{suggest, Location, RuleError};
pub use reader::{
    format_duration, format_size, parse_bytes, parse_duration, FileContext, Literal, MapReader,
    Spanned, Vars,
};
pub use rows::Rows;
pub use table_ref::TableRef;

/// `1 column`, `2 columns`: a count with its noun, for messages.
pub fn plural(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}
