//! Turns rule files into resolved sources and checks, collecting every error with its position.

use std::collections::hash_map::{Entry, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use marked_yaml::{LoadError, Node};

use crate::checks::{Check, CheckReader};
use crate::model::reader::node_kind;
use crate::model::{suggest, FileContext, Location, MapReader, RuleError, Spanned, Vars};
use crate::registry::{self, CHECK_KINDS};
use crate::sources::{RunResources, Source, SourceContext, SourceSet};

/// How much a failing check matters: `error` fails the run, `warn` is reported but passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warn,
}

/// One check as declared in a rule file, resolved and ready to run.
#[derive(Debug)]
pub struct CheckDecl {
    pub name: String,
    pub kind: &'static str,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub location: Location,
    /// When the runner stops the check as an error (`timeout:`, or the kind's default).
    pub time_limit: Duration,
    /// `max_scanned:` bytes the check's queries may scan where a source bills by bytes scanned
    /// (Athena): a query is refused once they are spent and stopped when it passes them.
    pub max_scanned: Option<u64>,
    pub check: Arc<dyn Check>,
}

/// A loaded rule file: its sources and its checks, in file order.
#[derive(Debug)]
pub struct RuleFile {
    pub path: PathBuf,
    pub sources: Arc<SourceSet>,
    pub checks: Vec<Arc<CheckDecl>>,
}

/// Loads rule files and folders (every `*.yml` / `*.yaml` inside, sorted). Returns every error
/// found in every file, not only the first. The sources of all files share one set of run
/// resources (see [`load_paths_with`]).
pub fn load_paths(paths: &[PathBuf], vars: &Arc<Vars>) -> Result<Vec<RuleFile>, Vec<RuleError>> {
    load_paths_with(paths, vars, &RunResources::default())
}

/// [`load_paths`] with the resources the run's sources share (connection pools, memory).
pub fn load_paths_with(
    paths: &[PathBuf],
    vars: &Arc<Vars>,
    resources: &RunResources,
) -> Result<Vec<RuleFile>, Vec<RuleError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match expand(path) {
            Ok(found) => files.extend(found),
            Err(e) => errors.push(e),
        }
    }
    let mut loaded = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse_rule_text_with(&file, &text, vars, resources) {
                Ok(rules) => loaded.push(rules),
                Err(mut e) => errors.append(&mut e),
            },
            Err(e) => errors.push(RuleError::new(
                Location::file_start(&file),
                format!("cannot read rule file: {e}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

fn expand(path: &Path) -> Result<Vec<PathBuf>, RuleError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(
            RuleError::new(Location::file_start(path), "no such rule file or folder")
                .with_help("pass rule files or folders; the default is `rules/`"),
        );
    }
    let mut found = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            RuleError::new(
                Location::file_start(&dir),
                format!("cannot read folder: {e}"),
            )
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
                found.push(p);
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(RuleError::new(
            Location::file_start(path),
            "folder holds no rule files (*.yml, *.yaml)",
        ));
    }
    Ok(found)
}

/// Parses one rule file's text, its sources sharing nothing with other files. `path` is used for
/// messages only.
pub fn parse_rule_text(
    path: &Path,
    text: &str,
    vars: &Arc<Vars>,
) -> Result<RuleFile, Vec<RuleError>> {
    parse_rule_text_with(path, text, vars, &RunResources::default())
}

/// [`parse_rule_text`] with the resources its sources share with the rest of the run.
pub fn parse_rule_text_with(
    path: &Path,
    text: &str,
    vars: &Arc<Vars>,
    resources: &RunResources,
) -> Result<RuleFile, Vec<RuleError>> {
    let ctx = FileContext::new(path, vars.clone());
    if text.trim().is_empty() {
        return Err(vec![RuleError::new(
            Location::file_start(path),
            "rule file is empty",
        )
        .with_help("a rule file has `sources:` and `checks:`")]);
    }
    let options = marked_yaml::LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    let root = marked_yaml::parse_yaml_with_options(0, text, options)
        .map_err(|e| vec![yaml_error(path, e)])?;
    let mut errors = Vec::new();
    let mut top = MapReader::new(&ctx, &root, "the rule file").map_err(|e| vec![e])?;
    let sources_node = top.node("sources");
    let checks_node = top.node("checks");
    if let Err(e) = top.finish() {
        errors.push(e);
    }

    let mut sources = SourceSet::default();
    let source_context = registry::source_context(resources);
    match sources_node {
        None => errors.push(
            RuleError::new(Location::file_start(path), "rule file has no `sources:`")
                .with_help("declare where data lives, e.g. `sources: { pg: { type: postgres, url: \"${LAKECHECK_PG_URL}\" } }`"),
        ),
        Some(Node::Mapping(map)) => {
            for (name, node) in map.iter() {
                match parse_source(&ctx, &source_context, name.as_str(), name.span(), node) {
                    Ok(source) => sources.insert(source),
                    Err(e) => errors.push(e),
                }
            }
        }
        Some(other) => errors.push(ctx.error(
            other.span(),
            format!("`sources` must be a mapping of source names to settings, found {}", node_kind(other)),
        )),
    }

    let mut checks: Vec<Arc<CheckDecl>> = Vec::new();
    // The line each name was first used at: a map, so a file of thousands of checks is not
    // compared check by check (quadratic: 10,000 checks took seconds).
    let mut names: HashMap<String, usize> = HashMap::new();
    match checks_node {
        None => errors.push(
            RuleError::new(Location::file_start(path), "rule file has no `checks:`")
                .with_help("add a list of checks, e.g. `checks: [{ type: row_count, table: pg.orders, min: 1 }]`"),
        ),
        Some(Node::Sequence(items)) => {
            for (index, node) in items.iter().enumerate() {
                match parse_check(&ctx, &sources, index, node) {
                    Ok(decl) => match names.entry(decl.name.clone()) {
                        Entry::Occupied(previous) => errors.push(
                            RuleError::new(decl.location.clone(), format!("check name `{}` is already used at line {}", decl.name, previous.get()))
                                .with_help("give one of them a different `name:`"),
                        ),
                        Entry::Vacant(slot) => {
                            slot.insert(decl.location.line);
                            checks.push(Arc::new(decl));
                        }
                    },
                    Err(e) => errors.push(e),
                }
            }
        }
        Some(other) => errors.push(ctx.error(other.span(), format!("`checks` must be a list, found {}", node_kind(other)))),
    }

    if errors.is_empty() {
        Ok(RuleFile {
            path: path.to_path_buf(),
            sources: Arc::new(sources),
            checks,
        })
    } else {
        Err(errors)
    }
}

fn parse_source(
    ctx: &FileContext,
    source_context: &SourceContext,
    name: &str,
    name_span: &marked_yaml::Span,
    node: &Node,
) -> Result<Arc<dyn Source>, RuleError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ctx
            .error(
                name_span,
                format!("source name `{name}` may hold only letters, digits, `_` and `-`"),
            )
            .with_help(
                "checks refer to tables as `source.table`, so a source name cannot contain `.`",
            ));
    }
    let what = format!("source `{name}`");
    let mut reader = MapReader::new(ctx, node, what.clone())?;
    let kind_name = reader.required_string("type", "postgres")?;
    let (kind, context) =
        registry::source_kind(&kind_name.value, source_context).ok_or_else(|| {
            unknown_kind(
                "source type",
                &kind_name,
                &what,
                registry::source_type_names(),
            )
        })?;
    (kind.parse)(name, &mut reader, &context)
}

fn parse_check(
    ctx: &FileContext,
    sources: &SourceSet,
    index: usize,
    node: &Node,
) -> Result<CheckDecl, RuleError> {
    let mut reader = MapReader::new(ctx, node, format!("check #{}", index + 1))?;
    let location = reader.location();
    let name = reader.string("name")?;
    let what = match &name {
        Some(n) => format!("check `{}`", n.value),
        None => format!("check #{}", index + 1),
    };
    let kind_name = reader.required_string("type", "row_count")?;
    let kind = registry::check_kind(&kind_name.value).ok_or_else(|| {
        unknown_kind(
            "check type",
            &kind_name,
            &what,
            CHECK_KINDS.iter().map(|k| k.name),
        )
    })?;
    let severity = match reader.string("severity")? {
        None => Severity::Error,
        Some(s) => match s.value.as_str() {
            "error" => Severity::Error,
            "warn" | "warning" => Severity::Warn,
            other => {
                return Err(RuleError::new(
                    s.location,
                    format!("unknown severity `{other}` in {what}"),
                )
                .with_help("expected one of: `error`, `warn`"))
            }
        },
    };
    let tags = reader
        .string_list("tags")?
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.value)
        .collect();
    let description = reader.string("description")?.map(|d| d.value);
    let timeout = reader.duration("timeout")?;
    if let Some(zero) = timeout.as_ref().filter(|t| t.value.is_zero()) {
        return Err(RuleError::new(
            zero.location.clone(),
            format!("`timeout` of {what} is zero"),
        )
        .with_help("give the check time to run, e.g. `timeout: 10m`, or leave it out"));
    }
    let declared = timeout.as_ref().map(|t| t.value);
    let max_scanned = reader.size("max_scanned")?.map(|s| s.value);
    let mut check_reader = CheckReader::new(reader, timeout, sources, what);
    let check = (kind.parse)(&mut check_reader)?;
    check_reader.finish()?;
    Ok(CheckDecl {
        name: name
            .map(|n| n.value)
            .unwrap_or_else(|| check.default_name()),
        kind: kind.name,
        severity,
        tags,
        description,
        location,
        time_limit: check.time_limit(declared),
        max_scanned,
        check,
    })
}

/// `unknown check type `row_cont` in check #1` with the closest registered kind suggested.
fn unknown_kind<'a>(
    kind: &str,
    given: &Spanned<String>,
    what: &str,
    choices: impl Iterator<Item = &'a str>,
) -> RuleError {
    let err = RuleError::new(
        given.location.clone(),
        format!("unknown {kind} `{}` in {what}", given.value),
    );
    match suggest(&given.value, choices) {
        Some(help) => err.with_help(help),
        None => err,
    }
}

fn yaml_error(path: &Path, error: LoadError) -> RuleError {
    let at = |marker: &marked_yaml::Marker| Location {
        file: Arc::from(path),
        line: marker.line(),
        column: marker.column(),
    };
    match error {
        LoadError::ScanError(marker, scan) => {
            RuleError::new(at(&marker), format!("invalid YAML: {}", scan.info()))
                .with_help("check indentation, quotes and `:` after each key")
        }
        LoadError::TopLevelMustBeMapping(marker) | LoadError::TopLevelMustBeSequence(marker) => {
            RuleError::new(
                at(&marker),
                "a rule file must be a mapping with `sources:` and `checks:`",
            )
        }
        LoadError::UnexpectedAnchor(marker) => RuleError::new(
            at(&marker),
            "YAML anchors and aliases are not supported in rule files",
        )
        .with_help("write the values out"),
        LoadError::MappingKeyMustBeScalar(marker) => {
            RuleError::new(at(&marker), "mapping keys must be plain names")
        }
        LoadError::UnexpectedTag(marker) => RuleError::new(
            at(&marker),
            "YAML tags (`!name`) are not supported in rule files",
        ),
        LoadError::DuplicateKey(inner) => {
            let key = &inner.key;
            let mut err = RuleError::new(
                key.span()
                    .start()
                    .map(at)
                    .unwrap_or_else(|| Location::file_start(path)),
                format!("duplicate key `{}`", key.as_str()),
            );
            if let Some(first) = inner.prev_key.span().start() {
                err = err.with_help(format!(
                    "`{}` was first set at line {}; keep one",
                    key.as_str(),
                    first.line()
                ));
            }
            err
        }
        #[allow(unreachable_patterns)]
        other => RuleError::new(Location::file_start(path), format!("invalid YAML: {other}")),
    }
}
