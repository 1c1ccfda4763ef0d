//! Rule-file errors that point at `file:line:col`, say what is wrong and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position inside a rule file. Lines and columns count from 1, as editors show them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The start of a file: used when an error has no better position (e.g. an unreadable file).
    pub fn file_start(file: &Path) -> Self {
        Self {
            file: Arc::from(file),
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in a rule file, with the place it was found and, where we can, a suggested fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    pub location: Location,
    pub message: String,
    pub help: Option<String>,
}

impl RuleError {
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The file this error belongs to.
    pub fn file(&self) -> PathBuf {
        self.location.file.to_path_buf()
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.location, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// `did you mean `x`?` for a misspelt name, or the list of valid choices when nothing is close.
pub fn suggest<'a>(given: &str, choices: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let choices: Vec<&str> = choices.into_iter().collect();
    if choices.is_empty() {
        return None;
    }
    let closest = choices
        .iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), *c))
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((distance, choice)) if distance <= 2.max(given.len() / 3) => {
            Some(format!("did you mean `{choice}`?"))
        }
        _ => Some(format!(
            "expected one of: {}",
            choices
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("row_cont", Some("did you mean `row_count`?"))]
    #[case("uniq", Some("did you mean `unique`?"))]
    #[case("zzzzzzzzzz", Some("expected one of: `row_count`, `unique`"))]
    fn suggests_closest_or_lists_choices(#[case] given: &str, #[case] expected: Option<&str>) {
        assert_eq!(suggest(given, ["row_count", "unique"]).as_deref(), expected);
    }
}
