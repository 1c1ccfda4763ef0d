//! Rule files: loading YAML, resolving sources and checks, and pointing at mistakes.

mod diagnostic;
mod interpolate;
mod load;
mod reader;

pub use diagnostic::{suggest, Location, RuleError};
pub use interpolate::{interpolate, InterpolationError};
pub use load::{load_paths, parse_rule_text, CheckDecl, RuleFile, Severity};
pub use reader::{parse_duration, FileContext, Literal, MapReader, Spanned, Vars};
