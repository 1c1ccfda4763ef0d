//! Every kind lakecheck knows, in one place (as ruff's `codes.rs` lists every rule): the check
//! kinds, the source kinds, and the SQL functions a source is handed when it is built.
//!
//! A new check kind is one file in `checks/` plus one line in [`CHECK_KINDS`]; a new source kind
//! one file in `sources/` plus one line in [`SOURCE_KINDS`]; a new table format of lake sources
//! one file in `sources/` plus one line in [`TABLE_FORMATS`]. The registry sits above `checks`,
//! `sources` and `reconcile` and below `rules`, so none of those needs to know about the others
//! to be found by name.

use crate::checks::{
    accepted_values, aggregate_match, cdc_latency, condition, freshness, not_null, pattern, range,
    relationships, row_count, row_count_match, schema_match, sql, table_match, unique,
    volume_anomaly, CheckKind,
};
use crate::reconcile::udf;
use crate::sources::table_format::TableFormatKind;
use crate::sources::{
    athena, delta, dms, files, hudi, lake, postgres, RunResources, SourceContext, SourceKind,
};

/// Every check kind lakecheck knows, in the order the docs list them.
pub static CHECK_KINDS: &[CheckKind] = &[
    row_count::KIND,
    row_count_match::KIND,
    not_null::KIND,
    unique::KIND,
    accepted_values::KIND,
    range::KIND,
    condition::KIND,
    pattern::KIND,
    relationships::KIND,
    sql::KIND,
    schema_match::KIND,
    table_match::KIND,
    aggregate_match::KIND,
    freshness::KIND,
    freshness::COMMIT_FRESHNESS,
    cdc_latency::KIND,
    volume_anomaly::KIND,
    freshness::FRESHNESS_ANOMALY,
];

/// Every source kind lakecheck knows.
pub static SOURCE_KINDS: &[SourceKind] = &[postgres::KIND, lake::KIND, athena::KIND];

/// Every table format a lake source can read (`format: <name>`); those with a source type of
/// their own are also `type: <name>`.
pub static TABLE_FORMATS: &[TableFormatKind] = &[
    files::PARQUET,
    files::CSV,
    dms::FORMAT,
    delta::FORMAT,
    hudi::FORMAT,
];

/// The check kind a rule file names with `type: <name>`.
pub fn check_kind(name: &str) -> Option<&'static CheckKind> {
    CHECK_KINDS.iter().find(|k| k.name == name)
}

/// The source kind a rule file names with `type: <name>`, and the context to build it with:
/// a table format with a source type of its own (`type: delta`) is a lake source of that format.
pub fn source_kind(
    name: &str,
    context: &SourceContext,
) -> Option<(&'static SourceKind, SourceContext)> {
    if let Some(kind) = SOURCE_KINDS.iter().find(|k| k.name == name) {
        return Some((kind, context.clone()));
    }
    let format = TABLE_FORMATS
        .iter()
        .find(|f| f.own_source_type && f.name == name)?;
    let mut context = context.clone();
    context.format = Some(format);
    Some((&lake::KIND, context))
}

/// Every name `type:` of a source accepts.
pub fn source_type_names() -> impl Iterator<Item = &'static str> {
    SOURCE_KINDS.iter().map(|k| k.name).chain(
        TABLE_FORMATS
            .iter()
            .filter(|f| f.own_source_type)
            .map(|f| f.name),
    )
}

/// What every source is built with: lakecheck's canon and row-hash SQL functions
/// (`reconcile::udf`), which DataFusion sources register on their session, as DataFusion's
/// `SessionStateBuilder` takes functions. Handing them over here keeps `sources` below
/// `reconcile`. `resources` are shared by every source of the run.
pub fn source_context(resources: &RunResources) -> SourceContext {
    SourceContext {
        functions: udf::functions(),
        formats: TABLE_FORMATS,
        format: None,
        resources: resources.clone(),
    }
}
