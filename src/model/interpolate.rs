//! `${VAR}` interpolation from the environment, so secrets and endpoints stay out of rule files.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${NAME}` where NAME is not set; carries the variable name.
    Missing(String),
    /// `${` without a closing `}` or with an invalid name; carries the reference's start
    /// (`${NAME…`), never the text after the name, which can be a secret.
    Malformed(String),
}

/// Replaces `${NAME}` with the variable's value and `${NAME:-fallback}` with the value or the
/// fallback when unset or empty. `$${` yields a literal `${`. Any other `$` is left alone so SQL
/// such as Postgres dollar quoting passes through untouched.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or_else(|| malformed(tail, None))?;
            let inner = &tail[..end];
            let (name, fallback) = match inner.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(malformed(tail, Some(inner)));
            }
            match (
                lookup(name).filter(|v| !v.is_empty() || fallback.is_none()),
                fallback,
            ) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(fallback)) => out.push_str(fallback),
                (None, None) => return Err(InterpolationError::Missing(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The error for a malformed `${...}`: `${`, the name characters it starts with, and `…` for
/// the rest, never the rest itself: what follows the name (a fallback, or a value typed where
/// `:-` belongs, a missing `}`) can be a password, and the message is printed.
fn malformed(tail: &str, inner: Option<&str>) -> InterpolationError {
    let name: String = tail
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    InterpolationError::Malformed(match inner {
        Some(inner) if inner == name => format!("${{{name}}}"),
        _ => format!("${{{name}…"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.internal".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[rstest]
    #[case("postgres://${HOST}/x", Ok("postgres://db.internal/x"))]
    #[case("${MISSING:-local}", Ok("local"))]
    #[case("${EMPTY:-fallback}", Ok("fallback"))]
    #[case("${EMPTY}", Ok(""))]
    #[case("price > $1 and $$body$$", Ok("price > $1 and $$body$$"))]
    #[case("literal $${HOST}", Ok("literal ${HOST}"))]
    #[case("${MISSING}", Err(InterpolationError::Missing("MISSING".into())))]
    #[case("${HOST", Err(InterpolationError::Malformed("${HOST…".into())))]
    #[case("${1BAD}", Err(InterpolationError::Malformed("${1BAD}".into())))]
    #[case("u:${PASS:-s3cret@host", Err(InterpolationError::Malformed("${PASS…".into())))]
    #[case("${PG-PASS:-s3cret}", Err(InterpolationError::Malformed("${PG…".into())))]
    #[case("${user:s3cret}@host", Err(InterpolationError::Malformed("${user…".into())))]
    fn interpolates(#[case] input: &str, #[case] expected: Result<&str, InterpolationError>) {
        assert_eq!(interpolate(input, env), expected.map(str::to_string));
    }
}
