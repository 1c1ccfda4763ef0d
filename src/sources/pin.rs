//! Table references pinned to a version or a time (`orders@3`), shared by the lake source and
//! the table formats it opens (Delta, Hudi), which must not depend on the lake source itself.

/// A table reference pinned to a version or a point in time: `orders@3`, `orders@2026-11-22T00:00:00Z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    Version(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pin::Version(v) => write!(f, "version {v}"),
            Pin::Time(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

impl Pin {
    /// Splits `name@pin` into the table name and its pin.
    pub fn split(reference: &str) -> Result<(&str, Option<Pin>), String> {
        let Some((name, pin)) = reference.split_once('@') else {
            return Ok((reference, None));
        };
        let pin = match pin.parse::<u64>() {
            Ok(version) => Pin::Version(version),
            Err(_) => Pin::Time(
                chrono::DateTime::parse_from_rfc3339(pin)
                    .map_err(|_| format!("`{reference}`: after `@` give a version number or an RFC 3339 time (2026-11-22T00:00:00Z)"))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        Ok((name, Some(pin)))
    }
}
