//! Rule files: loading YAML and resolving sources and checks, pointing at every mistake.
//!
//! The reading machinery rule files share with check and source kinds (locations, errors, the
//! map reader, `${VAR}` interpolation) lives in `model`, below every feature module.

mod load;

pub use crate::model::Vars;
pub use load::{
    load_paths, load_paths_with, parse_rule_text, parse_rule_text_with, CheckDecl, RuleFile,
    Severity,
};
