//! Typed, position-aware reading of YAML mappings.
//!
//! Every check kind and source kind reads its options through [`MapReader`]: asking for a key
//! records it as known, so `finish` can reject anything else with the valid choices listed.

use std::path::Path;
use std::sync::Arc;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{Node, Span};

use super::interpolate::{interpolate, InterpolationError};
use super::location::{suggest, Location, RuleError};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub location: Location,
}

impl<T> Spanned<T> {
    pub fn new(value: T, location: Location) -> Self {
        Self { value, location }
    }
}

/// A scalar written in a rule file, kept with the type YAML gave it so it can become a SQL
/// literal of the right kind (`5` is a number, `"5"` a string).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Literal {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Literal {
    /// The literal as SQL understood by both Postgres and DataFusion.
    pub fn to_sql(&self) -> String {
        match self {
            Literal::Int(v) => v.to_string(),
            Literal::Float(v) => format!("{v:?}"),
            Literal::Bool(v) => if *v { "TRUE" } else { "FALSE" }.to_string(),
            Literal::Text(v) => super::sql::quote_literal(v),
        }
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float(v) => write!(f, "{v}"),
            Literal::Bool(v) => write!(f, "{v}"),
            Literal::Text(v) => write!(f, "{v:?}"),
        }
    }
}

/// Where a rule file came from, shared by everything read out of it.
#[derive(Debug, Clone)]
pub struct FileContext {
    pub path: Arc<Path>,
    vars: Arc<Vars>,
}

/// Variables for `${VAR}` that take precedence over the process environment (the demo sets its
/// throwaway endpoints this way instead of mutating the environment).
pub type Vars = std::collections::BTreeMap<String, String>;

impl FileContext {
    pub fn new(path: &Path, vars: Arc<Vars>) -> Self {
        Self {
            path: Arc::from(path),
            vars,
        }
    }

    pub fn location(&self, span: &Span) -> Location {
        match span.start() {
            Some(marker) => Location {
                file: self.path.clone(),
                line: marker.line(),
                column: marker.column(),
            },
            None => Location {
                file: self.path.clone(),
                line: 1,
                column: 1,
            },
        }
    }

    pub fn error(&self, span: &Span, message: impl Into<String>) -> RuleError {
        RuleError::new(self.location(span), message)
    }

    /// The string content of a scalar with `${VAR}` interpolated.
    pub fn scalar_text(&self, scalar: &MarkedScalarNode, what: &str) -> Result<String, RuleError> {
        interpolate(scalar.as_str(), |name| {
            self.vars
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        })
        .map_err(|e| match e {
            InterpolationError::Missing(name) => self
                .error(
                    scalar.span(),
                    format!("environment variable `{name}` is not set (used in {what})"),
                )
                .with_help(format!(
                    "export {name}=..., or give a fallback with `${{{name}:-value}}`"
                )),
            InterpolationError::Malformed(text) => self
                .error(
                    scalar.span(),
                    format!("malformed variable reference `{text}` in {what}"),
                )
                .with_help(
                    "write `${NAME}` or `${NAME:-fallback}`, the name of letters, digits and `_`, closed with `}`; use `$${` for a literal `${`",
                ),
        })
    }
}

/// Describes a YAML node's kind for messages ("a list", "a mapping").
pub fn node_kind(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) => "a scalar",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// Reads the keys of one mapping, remembering which were asked for.
pub struct MapReader<'a> {
    ctx: &'a FileContext,
    map: &'a MarkedMappingNode,
    /// What this mapping is, for messages: "check `orders exist`", "source `pg`".
    what: String,
    known: Vec<&'static str>,
}

impl<'a> MapReader<'a> {
    pub fn new(
        ctx: &'a FileContext,
        node: &'a Node,
        what: impl Into<String>,
    ) -> Result<Self, RuleError> {
        let what = what.into();
        match node {
            Node::Mapping(map) => Ok(Self {
                ctx,
                map,
                what,
                known: Vec::new(),
            }),
            other => Err(ctx.error(
                other.span(),
                format!(
                    "{what} must be a mapping of keys to values, found {}",
                    node_kind(other)
                ),
            )),
        }
    }

    pub fn context(&self) -> &'a FileContext {
        self.ctx
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// Where the mapping starts: the place to point at for a missing key.
    pub fn location(&self) -> Location {
        self.ctx.location(self.map.span())
    }

    /// Position of a key's value, or of the mapping when the key is absent.
    pub fn location_of(&self, key: &str) -> Location {
        self.map
            .get_node(key)
            .map(|n| self.ctx.location(n.span()))
            .unwrap_or_else(|| self.location())
    }

    /// The raw node for `key`, marking the key as known.
    pub fn node(&mut self, key: &'static str) -> Option<&'a Node> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.map.get_node(key)
    }

    fn missing(&self, key: &str, hint: &str) -> RuleError {
        // A misspelt key is the likeliest reason a required one is missing: point at it.
        let misspelt = self.map.keys().find(|k| {
            !self.known.contains(&k.as_str())
                && strsim::damerau_levenshtein(k.as_str(), key) <= 2.max(key.len() / 3)
        });
        if let Some(k) = misspelt {
            return self
                .ctx
                .error(
                    k.span(),
                    format!("unknown key `{}` in {}", k.as_str(), self.what),
                )
                .with_help(format!("did you mean `{key}`?"));
        }
        let err = RuleError::new(
            self.location(),
            format!("{} is missing required field `{key}`", self.what),
        );
        if hint.is_empty() {
            err.with_help(format!("add `{key}: ...`"))
        } else {
            err.with_help(format!("add `{key}: {hint}`"))
        }
    }

    fn scalar(&self, key: &str, node: &'a Node) -> Result<&'a MarkedScalarNode, RuleError> {
        node.as_scalar().ok_or_else(|| {
            self.ctx.error(
                node.span(),
                format!(
                    "`{key}` in {} must be a single value, found {}",
                    self.what,
                    node_kind(node)
                ),
            )
        })
    }

    /// An optional string (interpolated).
    pub fn string(&mut self, key: &'static str) -> Result<Option<Spanned<String>>, RuleError> {
        let Some(node) = self.node(key) else {
            return Ok(None);
        };
        let scalar = self.scalar(key, node)?;
        let what = format!("`{key}` of {}", self.what);
        let text = self.ctx.scalar_text(scalar, &what)?;
        Ok(Some(Spanned::new(text, self.ctx.location(scalar.span()))))
    }

    /// A required string; `hint` shows an example value in the help text.
    pub fn required_string(
        &mut self,
        key: &'static str,
        hint: &str,
    ) -> Result<Spanned<String>, RuleError> {
        match self.string(key)? {
            Some(value) if !value.value.trim().is_empty() => Ok(value),
            Some(value) => Err(RuleError::new(
                value.location,
                format!("`{key}` in {} is empty", self.what),
            )
            .with_help(format!("give a value, e.g. `{key}: {hint}`"))),
            None => Err(self.missing(key, hint)),
        }
    }

    /// A list of strings; a single scalar counts as a list of one.
    pub fn string_list(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Vec<Spanned<String>>>, RuleError> {
        let Some(node) = self.node(key) else {
            return Ok(None);
        };
        let items: Vec<&Node> = match node {
            Node::Sequence(seq) => seq.iter().collect(),
            Node::Scalar(_) => vec![node],
            Node::Mapping(_) => {
                return Err(self.ctx.error(
                    node.span(),
                    format!("`{key}` in {} must be a list, found a mapping", self.what),
                ))
            }
        };
        let what = format!("`{key}` of {}", self.what);
        items
            .into_iter()
            .map(|item| {
                let scalar = self.scalar(key, item)?;
                Ok(Spanned::new(
                    self.ctx.scalar_text(scalar, &what)?,
                    self.ctx.location(scalar.span()),
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A non-empty list of strings.
    pub fn required_string_list(
        &mut self,
        key: &'static str,
        hint: &str,
    ) -> Result<Vec<Spanned<String>>, RuleError> {
        match self.string_list(key)? {
            Some(list) if !list.is_empty() => Ok(list),
            Some(_) => Err(RuleError::new(
                self.location_of(key),
                format!("`{key}` in {} is an empty list", self.what),
            )
            .with_help(format!("name at least one, e.g. `{key}: {hint}`"))),
            None => Err(self.missing(key, hint)),
        }
    }

    /// An optional scalar as a typed literal.
    pub fn literal(&mut self, key: &'static str) -> Result<Option<Spanned<Literal>>, RuleError> {
        let Some(node) = self.node(key) else {
            return Ok(None);
        };
        let scalar = self.scalar(key, node)?;
        Ok(Some(self.to_literal(key, scalar)?))
    }

    /// A list of typed literals (e.g. accepted values).
    pub fn literal_list(
        &mut self,
        key: &'static str,
        hint: &str,
    ) -> Result<Vec<Spanned<Literal>>, RuleError> {
        let Some(node) = self.node(key) else {
            return Err(self.missing(key, hint));
        };
        let Node::Sequence(seq) = node else {
            return Err(self
                .ctx
                .error(
                    node.span(),
                    format!(
                        "`{key}` in {} must be a list, found {}",
                        self.what,
                        node_kind(node)
                    ),
                )
                .with_help(format!("write `{key}: {hint}`")));
        };
        if seq.is_empty() {
            return Err(self
                .ctx
                .error(
                    node.span(),
                    format!("`{key}` in {} is an empty list", self.what),
                )
                .with_help(format!("write `{key}: {hint}`")));
        }
        seq.iter()
            .map(|item| {
                let scalar = self.scalar(key, item)?;
                self.to_literal(key, scalar)
            })
            .collect()
    }

    fn to_literal(
        &self,
        key: &str,
        scalar: &MarkedScalarNode,
    ) -> Result<Spanned<Literal>, RuleError> {
        let location = self.ctx.location(scalar.span());
        // Quoted scalars are never coerced by the YAML loader, so `"5"` stays text.
        let literal = if let Some(v) = scalar.as_i64() {
            Literal::Int(v)
        } else if let Some(v) = scalar.as_f64().filter(|_| looks_numeric(scalar.as_str())) {
            Literal::Float(v)
        } else if let Some(v) = scalar.as_bool() {
            Literal::Bool(v)
        } else {
            Literal::Text(
                self.ctx
                    .scalar_text(scalar, &format!("`{key}` of {}", self.what))?,
            )
        };
        Ok(Spanned::new(literal, location))
    }

    /// An optional non-negative integer.
    pub fn u64(&mut self, key: &'static str) -> Result<Option<Spanned<u64>>, RuleError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        let parsed = value.value.trim().parse::<u64>().map_err(|_| {
            RuleError::new(
                value.location.clone(),
                format!(
                    "`{key}` in {} must be a whole number, found `{}`",
                    self.what, value.value
                ),
            )
        })?;
        Ok(Some(Spanned::new(parsed, value.location)))
    }

    /// An optional boolean.
    pub fn bool(&mut self, key: &'static str) -> Result<Option<Spanned<bool>>, RuleError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        let parsed = match value.value.trim() {
            "true" | "yes" | "on" => true,
            "false" | "no" | "off" => false,
            other => {
                return Err(RuleError::new(
                    value.location.clone(),
                    format!(
                        "`{key}` in {} must be true or false, found `{other}`",
                        self.what
                    ),
                ))
            }
        };
        Ok(Some(Spanned::new(parsed, value.location)))
    }

    /// An optional duration written as `30s`, `500ms`, `5m`, `2h`, compound (`1h30m`) or a bare
    /// number of seconds.
    pub fn duration(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Spanned<std::time::Duration>>, RuleError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        let parsed = parse_duration(&value.value).ok_or_else(|| {
            RuleError::new(
                value.location.clone(),
                format!(
                    "`{key}` in {} is not a duration: `{}`",
                    self.what, value.value
                ),
            )
            .with_help(
                "write numbers with units, largest first: `500ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`",
            )
        })?;
        Ok(Some(Spanned::new(parsed, value.location)))
    }

    /// An optional size in bytes written as `50GB`, `500MB`, `1TiB` (see [`parse_bytes`]).
    pub fn size(&mut self, key: &'static str) -> Result<Option<Spanned<u64>>, RuleError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        let parsed = parse_bytes(value.value.trim()).ok_or_else(|| {
            RuleError::new(
                value.location.clone(),
                format!("`{key}` in {} is `{}`, not a size", self.what, value.value),
            )
            .with_help("write a size such as `50GB`, `500MB` or `1TB`")
        })?;
        Ok(Some(Spanned::new(parsed, value.location)))
    }

    /// Nested mapping of free-form string options (e.g. object store settings).
    pub fn string_map(&mut self, key: &'static str) -> Result<Vec<(String, String)>, RuleError> {
        let Some(node) = self.node(key) else {
            return Ok(Vec::new());
        };
        let Node::Mapping(map) = node else {
            return Err(self.ctx.error(
                node.span(),
                format!(
                    "`{key}` in {} must be a mapping, found {}",
                    self.what,
                    node_kind(node)
                ),
            ));
        };
        let what = format!("`{key}` of {}", self.what);
        map.iter()
            .map(|(k, v)| {
                let scalar = self.scalar(k.as_str(), v)?;
                Ok((k.as_str().to_string(), self.ctx.scalar_text(scalar, &what)?))
            })
            .collect()
    }

    /// Nested mapping of names to lists of strings (`{ orders: [order_id], parts: id }`).
    pub fn string_list_map(
        &mut self,
        key: &'static str,
    ) -> Result<Vec<(String, Vec<String>)>, RuleError> {
        let Some(node) = self.node(key) else {
            return Ok(Vec::new());
        };
        let Node::Mapping(map) = node else {
            return Err(self.ctx.error(
                node.span(),
                format!(
                    "`{key}` in {} must be a mapping, found {}",
                    self.what,
                    node_kind(node)
                ),
            ));
        };
        let what = format!("`{key}` of {}", self.what);
        let mut out = Vec::new();
        for (name, value) in map.iter() {
            let items: Vec<&Node> = match value {
                Node::Sequence(seq) => seq.iter().collect(),
                other => vec![other],
            };
            let values = items
                .into_iter()
                .map(|item| {
                    let scalar = self.scalar(name.as_str(), item)?;
                    self.ctx.scalar_text(scalar, &what)
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push((name.as_str().to_string(), values));
        }
        Ok(out)
    }

    /// An optional RFC 3339 time (`2026-11-22T00:00:00Z`), as UTC.
    pub fn time(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Spanned<chrono::DateTime<chrono::Utc>>>, RuleError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        let time = chrono::DateTime::parse_from_rfc3339(&text.value).map_err(|e| {
            RuleError::new(
                text.location.clone(),
                format!("`{key}` of {} is not an RFC 3339 time: {e}", self.what),
            )
            .with_help(format!("write e.g. `{key}: \"2026-11-22T00:00:00Z\"`"))
        })?;
        Ok(Some(Spanned::new(
            time.with_timezone(&chrono::Utc),
            text.location,
        )))
    }

    /// Whether `key` is present and nobody has read it yet.
    pub fn is_unread(&self, key: &str) -> bool {
        self.map.get_node(key).is_some() && !self.known.contains(&key)
    }

    /// Rejects keys nobody asked for, naming the closest known key.
    pub fn finish(&self) -> Result<(), RuleError> {
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                let err = self.ctx.error(
                    key.span(),
                    format!("unknown key `{}` in {}", key.as_str(), self.what),
                );
                return Err(match suggest(key.as_str(), self.known.iter().copied()) {
                    Some(help) => err.with_help(help),
                    None => err,
                });
            }
        }
        Ok(())
    }
}

fn looks_numeric(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
}

/// A duration unit a rule may write, with its length in nanoseconds. Listed largest first: a
/// compound duration names its units in this order, each once (`1h30m`, `2m30.5s`).
const DURATION_UNITS: [(&[&str], u128); 5] = [
    (&["d", "day", "days"], 86_400 * NANOS_PER_SECOND),
    (&["h", "hour", "hours"], 3_600 * NANOS_PER_SECOND),
    (
        &["m", "min", "mins", "minute", "minutes"],
        60 * NANOS_PER_SECOND,
    ),
    (&["s", "sec", "secs", "second", "seconds"], NANOS_PER_SECOND),
    (&["ms"], 1_000_000),
];

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d`, compound forms with each unit once and largest
/// first (`1h30m`, `1d 2h`, `2m30.5s`) or bare seconds (`45`, `1.5`). Decimal fractions are
/// exact to the nanosecond; `None` for anything else (a unit out of order or repeated, a
/// negative number, a number without a unit inside a compound).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return to_duration(decimal_nanos(text, NANOS_PER_SECOND)?);
    }
    let mut rest = text;
    let mut total: u128 = 0;
    // Units already used: the next one must be smaller than every one of them.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let index = DURATION_UNITS
            .iter()
            .position(|(names, _)| names.contains(&unit))?;
        if number.is_empty() || index < next_unit {
            return None;
        }
        total = total.checked_add(decimal_nanos(number, DURATION_UNITS[index].1)?)?;
        next_unit = index + 1;
        rest = after.trim_start();
    }
    if next_unit == 0 {
        return None;
    }
    to_duration(total)
}

/// `number` (digits, at most one `.`) times `unit` nanoseconds, exactly; a fraction finer than
/// a nanosecond is cut.
fn decimal_nanos(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 18 {
        return None;
    }
    let digits = |s: &str| -> Option<u128> {
        if s.is_empty() {
            Some(0)
        } else {
            s.parse::<u128>().ok()
        }
    };
    let whole = digits(whole)?.checked_mul(unit)?;
    let scale = 10u128.pow(fraction.len() as u32);
    Some(whole + digits(fraction)? * unit / scale)
}

fn to_duration(nanos: u128) -> Option<std::time::Duration> {
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).ok()?;
    Some(std::time::Duration::new(
        seconds,
        (nanos % NANOS_PER_SECOND) as u32,
    ))
}

/// A duration as a rule writes it and [`parse_duration`] reads it back: units largest first,
/// zero units left out (`1h30m`, `2d3s`, `1m30.5s`, `500ms`, `0s`).
pub fn format_duration(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    let mut text = String::new();
    for (value, unit) in [
        (seconds / 86_400, "d"),
        (seconds / 3_600 % 24, "h"),
        (seconds / 60 % 60, "m"),
    ] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    let whole = seconds % 60;
    if nanos == 0 {
        if whole > 0 || text.is_empty() {
            text.push_str(&format!("{whole}s"));
        }
    } else if whole == 0 && nanos.is_multiple_of(1_000_000) {
        text.push_str(&format!("{}ms", nanos / 1_000_000));
    } else {
        let fraction = format!("{nanos:09}");
        text.push_str(&format!("{whole}.{}s", fraction.trim_end_matches('0')));
    }
    text
}

/// Bytes written with an optional unit: `k`/`KB` (1000), `KiB` (1024), and likewise M, G, T.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok().filter(|n: &f64| n.is_finite())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let (prefix, binary) = match unit.strip_suffix('i') {
        Some(prefix) => (prefix, true),
        None => (unit, false),
    };
    let power = ["", "k", "m", "g", "t"].iter().position(|p| *p == prefix)?;
    if binary && power == 0 {
        return None;
    }
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let bytes = number * base.powi(power as i32);
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Bytes as people read them: `10.0 MB`, `1.5 GB`, in decimal units as [`parse_bytes`] reads
/// `50GB` and as Athena bills.
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::time::Duration;

    #[rstest]
    #[case("500ms", Some(Duration::from_millis(500)))]
    #[case("30s", Some(Duration::from_secs(30)))]
    #[case("5m", Some(Duration::from_secs(300)))]
    #[case("2h", Some(Duration::from_secs(7200)))]
    #[case("45", Some(Duration::from_secs(45)))]
    #[case("1.5s", Some(Duration::from_millis(1500)))]
    #[case("1.5", Some(Duration::from_millis(1500)))]
    #[case("90s", Some(Duration::from_secs(90)))]
    #[case("1d", Some(Duration::from_secs(86_400)))]
    #[case("15 minutes", Some(Duration::from_secs(900)))]
    #[case::compound("1h30m", Some(Duration::from_secs(5400)))]
    #[case::compound_spaced("1h 30m", Some(Duration::from_secs(5400)))]
    #[case::every_unit("1d2h3m4s5ms", Some(Duration::new(93_784, 5_000_000)))]
    #[case::fraction_in_compound("2m30.5s", Some(Duration::from_millis(150_500)))]
    #[case::nanosecond("0.000000001s", Some(Duration::new(0, 1)))]
    #[case::below_a_nanosecond("0.0000000001s", Some(Duration::ZERO))]
    #[case::padded(" 5m ", Some(Duration::from_secs(300)))]
    #[case::smaller_unit_first("30m1h", None)]
    #[case::unit_twice("5m5m", None)]
    #[case::trailing_number("1h30", None)]
    #[case::no_number("h", None)]
    #[case::two_points("1.2.3s", None)]
    #[case::lone_point(".s", None)]
    #[case::negative("-5m", None)]
    #[case::months("1mo", None)]
    #[case("5 parsecs", None)]
    #[case("", None)]
    fn parses_durations(#[case] text: &str, #[case] expected: Option<Duration>) {
        assert_eq!(parse_duration(text), expected);
    }

    #[rstest]
    #[case(Duration::ZERO, "0s")]
    #[case(Duration::from_secs(90), "1m30s")]
    #[case(Duration::from_secs(5400), "1h30m")]
    #[case(Duration::from_secs(2 * 86_400 + 3), "2d3s")]
    #[case(Duration::from_millis(500), "500ms")]
    #[case(Duration::from_millis(90_500), "1m30.5s")]
    #[case(Duration::new(0, 1), "0.000000001s")]
    fn formats_durations_as_rules_write_them(#[case] duration: Duration, #[case] text: &str) {
        assert_eq!(format_duration(duration), text);
    }

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(format_size(999), "999 B");
        assert_eq!(format_size(10_485_760), "10.5 MB");
        assert_eq!(format_size(50_000_000_000), "50.0 GB");
    }

    proptest::proptest! {
        /// Every duration reads back as itself from its written form.
        #[test]
        fn formatted_durations_read_back(seconds in 0u64..10_000_000_000_000, nanos in 0u32..1_000_000_000) {
            let duration = Duration::new(seconds, nanos);
            let text = format_duration(duration);
            proptest::prop_assert_eq!(parse_duration(&text), Some(duration), "{}", text);
        }
    }
}
