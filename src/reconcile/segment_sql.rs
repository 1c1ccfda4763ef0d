//! The SQL a reconcile sends, built from a [`Plan`] and each side's own SQL for canonical
//! fields and row hashes (`Source::canonical_sql`, `Source::row_hash_sql`): key bounds, segment
//! checksums, the rows of differing segments, the rows of differing keys again (`settle`), the
//! values of changed rows, NULL and repeated keys. Text only: `segments` runs it.

use super::plan::{Plan, Segmenter, Side, SEGMENTS};
use crate::model::canon::Canon;
use crate::model::row_hash::Hashing;
use crate::model::sql::{quote_ident, quote_literal};
use crate::model::{Column, LogicalType};

impl Side {
    fn field_sql(&self, index: usize, canon: Canon) -> String {
        self.source.canonical_sql(&self.columns[index], canon)
    }

    fn key_fields_sql(&self, plan: &Plan) -> Vec<String> {
        (0..plan.key_len)
            .map(|i| format!("{} AS lakecheck_k{i}", self.field_sql(i, plan.canons[i])))
            .collect()
    }

    /// The row hash: typed, seeded by the key hash `lakecheck_kh` of `keyed_rows_sql`, or
    /// of the row's canonical text.
    fn row_hash_sql(&self, plan: &Plan) -> String {
        self.hash_sql(plan, self.columns.len(), "lakecheck_kh")
    }

    fn key_hash_sql(&self, plan: &Plan) -> String {
        self.hash_sql(plan, plan.key_len, "0")
    }

    /// The hash of the first `len` compared columns (`model::row_hash`).
    fn hash_sql(&self, plan: &Plan, len: usize, seed: &str) -> String {
        match plan.hashing {
            Hashing::Typed => {
                let columns: Vec<(&Column, Canon)> = self.columns[..len]
                    .iter()
                    .zip(plan.canons.iter().copied())
                    .collect();
                self.source.row_hash_sql(&columns, seed)
            }
            Hashing::Text => {
                let fields: Vec<String> = (0..len)
                    .map(|i| self.field_sql(i, plan.canons[i]))
                    .collect();
                self.source.md5_int64_sql(&fields.join(" || '|' || "))
            }
        }
    }

    fn key_idents(&self, plan: &Plan) -> Vec<String> {
        (0..plan.key_len)
            .map(|i| quote_ident(&self.columns[i].name))
            .collect()
    }

    /// `TRUE` for rows whose key has no NULL: the only rows paired by key.
    fn key_present_sql(&self, plan: &Plan) -> String {
        let parts: Vec<String> = self
            .key_idents(plan)
            .iter()
            .map(|k| format!("{k} IS NOT NULL"))
            .collect();
        format!("({})", parts.join(" AND "))
    }

    /// The table, kept to the rule's `filter` and `condition` when given.
    fn filtered_table_sql(&self, condition: Option<&str>) -> String {
        let from = self.source.table_sql(&self.read_as);
        let conditions: Vec<String> = self
            .filter
            .as_deref()
            .into_iter()
            .chain(condition)
            .map(|c| format!("({c})"))
            .collect();
        if conditions.is_empty() {
            from
        } else {
            format!("{from} WHERE {}", conditions.join(" AND "))
        }
    }

    /// The table's rows with a complete key (all columns) and their key hash `lakecheck_kh`,
    /// kept to those that satisfy `filter` (a condition on the key columns for key ranges, on
    /// `lakecheck_kh` for key-hash buckets).
    fn keyed_rows_sql(&self, plan: &Plan, filter: Option<&str>) -> String {
        match plan.segmenter {
            Segmenter::KeyRange { .. } => self.keyed_rows_where_sql(plan, filter, None),
            Segmenter::KeyHash => self.keyed_rows_where_sql(plan, None, filter),
        }
    }

    /// The table's rows with a complete key and their key hash `lakecheck_kh`, kept to those
    /// that satisfy `on_columns` (a condition on the table's columns) and `on_key_hash` (one on
    /// `lakecheck_kh`). `OFFSET 0` keeps PostgreSQL from inlining the key hash into every
    /// column's seed (it would compute it once per column); column conditions stay inside,
    /// next to the table, so an index can serve them.
    fn keyed_rows_where_sql(
        &self,
        plan: &Plan,
        on_columns: Option<&str>,
        on_key_hash: Option<&str>,
    ) -> String {
        let present = self.key_present_sql(plan);
        let inner = match on_columns {
            Some(f) => format!("{present} AND ({f})"),
            None => present,
        };
        let rows = format!(
            "SELECT {} AS lakecheck_kh, * FROM {} OFFSET 0",
            self.key_hash_sql(plan),
            self.filtered_table_sql(Some(&inner))
        );
        match on_key_hash {
            Some(f) => format!("SELECT * FROM ({rows}) AS unfiltered WHERE {f}"),
            None => rows,
        }
    }

    fn key_ident(&self) -> String {
        quote_ident(&self.columns[0].name)
    }

    /// SQL giving a row's segment number.
    fn segment_sql(&self, plan: &Plan) -> String {
        match plan.segmenter {
            Segmenter::KeyRange { min, width } => {
                format!("(({} - {min}) / {width})", self.key_ident())
            }
            Segmenter::KeyHash => format!(
                "({})",
                self.source
                    .bitwise_and_sql("lakecheck_kh", &(SEGMENTS - 1).to_string())
            ),
        }
    }

    /// SQL keeping rows of segments `lo..=hi` (a key range scan when segments are key ranges).
    fn segment_range_sql(&self, plan: &Plan, lo: i64, hi: i64) -> String {
        match plan.segmenter {
            Segmenter::KeyRange { min, width } => {
                let (low, high) = key_range(min, width, lo, hi);
                format!("{} BETWEEN {low} AND {high}", self.key_ident())
            }
            Segmenter::KeyHash => format!("{} BETWEEN {lo} AND {hi}", self.segment_sql(plan)),
        }
    }

    /// SQL keeping rows of the listed segments.
    fn segments_sql(&self, plan: &Plan, segments: &[i64]) -> String {
        match plan.segmenter {
            Segmenter::KeyRange { .. } => {
                let mut ranges: Vec<(i64, i64)> = Vec::new();
                for &segment in segments {
                    match ranges.last_mut() {
                        Some((_, hi)) if *hi + 1 == segment => *hi = segment,
                        _ => ranges.push((segment, segment)),
                    }
                }
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|(lo, hi)| self.segment_range_sql(plan, *lo, *hi))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            Segmenter::KeyHash => {
                let list = segments
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{} IN ({list})", self.segment_sql(plan))
            }
        }
    }

    /// Per-segment row count and multiset checksum (see the module doc). `OFFSET 0` hides the
    /// segment expression from PostgreSQL's group-count estimate (otherwise one group per key):
    /// with the default guess it hashes the few thousand segments instead of sorting every row
    /// by segment on disk. Each half is summed as a 32-bit integer, which both engines sum into
    /// a 64-bit one without overflow below 2^32 rows a segment.
    fn checksums_sql(&self, plan: &Plan, segments: Option<(i64, i64)>) -> String {
        let range = segments.map(|(lo, hi)| self.segment_range_sql(plan, lo, hi));
        format!(
            "SELECT segment, count(*) AS row_count, \
             sum(CAST({high} AS INTEGER)) AS sum_high, \
             sum(CAST(({low}) - 2147483648 AS INTEGER)) AS sum_low FROM (\
             SELECT {segment} AS segment, {row_hash} AS row_hash FROM ({rows}) AS keyed OFFSET 0\
             ) AS hashed GROUP BY segment",
            high = self.source.shift_right_sql("row_hash", 32),
            low = self.source.bitwise_and_sql("row_hash", "4294967295"),
            segment = self.segment_sql(plan),
            row_hash = self.row_hash_sql(plan),
            rows = self.keyed_rows_sql(plan, range.as_deref()),
        )
    }

    /// The rows of the listed segments: canonical key fields `lakecheck_k<i>`, `row_hash` and
    /// the key hash `lakecheck_kh`.
    pub(super) fn rows_in_segments_sql(&self, plan: &Plan, segments: &[i64]) -> String {
        let rows = self.keyed_rows_sql(plan, Some(&self.segments_sql(plan, segments)));
        self.hashed_rows_sql(plan, &rows)
    }

    /// The rows of the listed keys (canonical key fields, key hash), in the columns of
    /// `rows_in_segments_sql`: what a settle re-reads. Each side is asked by key, never
    /// scanned: integer keys in key ranges by value; in key-hash buckets by key hash, and
    /// first by the values of every key column whose canonical text is its value (integers,
    /// text), so that an index (or Parquet statistics) can serve the read. Those lists keep a
    /// superset of the keys' rows; the rows are then matched by canonical key, exactly.
    pub(super) fn rows_of_keys_sql(&self, plan: &Plan, keys: &[(Vec<String>, i64)]) -> String {
        let rows = match plan.segmenter {
            Segmenter::KeyRange { .. } => {
                self.keyed_rows_where_sql(plan, Some(&self.integer_key_in_sql(keys)), None)
            }
            Segmenter::KeyHash => {
                let values: Vec<String> = (0..plan.key_len)
                    .filter_map(|i| self.key_values_in_sql(plan, i, keys))
                    .collect();
                let on_columns = (!values.is_empty()).then(|| values.join(" AND "));
                self.keyed_rows_where_sql(plan, on_columns.as_deref(), Some(&key_hash_in_sql(keys)))
            }
        };
        self.hashed_rows_sql(plan, &rows)
    }

    /// Canonical key fields `lakecheck_k<i>`, `row_hash` and `lakecheck_kh` of keyed `rows`.
    fn hashed_rows_sql(&self, plan: &Plan, rows: &str) -> String {
        format!(
            "SELECT {key_fields}, {row_hash} AS row_hash, lakecheck_kh FROM ({rows}) AS keyed",
            key_fields = self.key_fields_sql(plan).join(", "),
            row_hash = self.row_hash_sql(plan),
        )
    }

    /// `key IN (...)` for a single integer key: the canonical text of an integer is its digits.
    fn integer_key_in_sql(&self, keys: &[(Vec<String>, i64)]) -> String {
        let list: Vec<&str> = keys.iter().map(|(fields, _)| fields[0].as_str()).collect();
        format!("{} IN ({})", self.key_ident(), list.join(", "))
    }

    /// `column IN (...)` of key column `i`'s values in `keys`, when this side's column holds
    /// values whose canonical text gives them back exactly: integers (digits) and text
    /// (`length:text`). `None` otherwise (or for an integer beyond bigint): a list that could
    /// miss a row of a key must not be sent, since a key missing on both sides agrees.
    fn key_values_in_sql(
        &self,
        plan: &Plan,
        i: usize,
        keys: &[(Vec<String>, i64)],
    ) -> Option<String> {
        let column = &self.columns[i];
        let literal: fn(&str) -> Option<String> = match (plan.canons[i], column.logical) {
            (Canon::Int, LogicalType::Int { .. }) => {
                |f| f.parse::<i64>().ok().map(|n| n.to_string())
            }
            (Canon::Text, LogicalType::Text) => {
                |f| f.split_once(':').map(|(_, text)| quote_literal(text))
            }
            _ => return None,
        };
        let mut values = keys
            .iter()
            .map(|(fields, _)| literal(&fields[i]))
            .collect::<Option<Vec<String>>>()?;
        values.sort_unstable();
        values.dedup();
        Some(format!(
            "{} IN ({})",
            quote_ident(&column.name),
            values.join(", ")
        ))
    }

    /// Canonical values of the rows with these keys (canonical key fields, key hash).
    pub(super) fn values_sql(&self, plan: &Plan, keys: &[(Vec<String>, i64)]) -> String {
        let fields: Vec<String> = plan
            .canons
            .iter()
            .enumerate()
            .map(|(i, c)| self.field_sql(i, *c))
            .collect();
        let filter = match plan.segmenter {
            Segmenter::KeyRange { .. } => self.integer_key_in_sql(keys),
            Segmenter::KeyHash => key_hash_in_sql(keys),
        };
        format!(
            "SELECT {fields} FROM ({rows}) AS keyed",
            fields = fields.join(", "),
            rows = self.keyed_rows_sql(plan, Some(&filter)),
        )
    }

    /// Rows with a NULL in the key: how many, and the first few in canonical order.
    pub(super) fn null_keys_sql(&self, plan: &Plan) -> String {
        let fields: Vec<String> = plan
            .canons
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS lakecheck_f{i}", self.field_sql(i, *c)))
            .collect();
        let order: Vec<String> = (0..fields.len())
            .map(|i| format!("lakecheck_f{i}"))
            .collect();
        format!(
            "SELECT {fields}, count(*) OVER () AS lakecheck_total FROM {rows} \
             ORDER BY {order} LIMIT {limit}",
            fields = fields.join(", "),
            rows = self.filtered_table_sql(Some(&format!("NOT {}", self.key_present_sql(plan)))),
            order = order.join(", "),
            limit = plan.samples.max(1),
        )
    }

    /// Keys held by more than one row: how many, and the first few with their row counts.
    pub(super) fn duplicate_keys_sql(&self, plan: &Plan) -> String {
        let keys = self.key_idents(plan);
        let order: Vec<String> = (0..plan.key_len)
            .map(|i| format!("lakecheck_k{i}"))
            .collect();
        format!(
            "SELECT {fields}, lakecheck_rows, count(*) OVER () AS lakecheck_total FROM (\
             SELECT {keys}, count(*) AS lakecheck_rows FROM {rows} GROUP BY {keys} \
             HAVING count(*) > 1) AS repeated ORDER BY {order} LIMIT {limit}",
            fields = self.key_fields_sql(plan).join(", "),
            keys = keys.join(", "),
            rows = self.filtered_table_sql(Some(&self.key_present_sql(plan))),
            order = order.join(", "),
            limit = plan.samples.max(1),
        )
    }

    /// The smallest and largest key (`lo`, `hi`), for key-range segments.
    pub(super) fn key_bounds_sql(&self) -> String {
        let key = self.key_ident();
        format!(
            "SELECT min({key}) AS lo, max({key}) AS hi FROM {}",
            self.filtered_table_sql(None)
        )
    }

    /// The checksum queries of this side: one over every segment, or `parallel` over disjoint
    /// ranges of segments that together cover them all.
    pub(super) fn checksums_queries(&self, plan: &Plan, parallel: usize) -> Vec<String> {
        match checksum_ranges(parallel) {
            None => vec![self.checksums_sql(plan, None)],
            Some(ranges) => ranges
                .into_iter()
                .map(|range| self.checksums_sql(plan, Some(range)))
                .collect(),
        }
    }
}

/// `lakecheck_kh IN (...)`: the rows of these keys and of any other key with the same hash.
fn key_hash_in_sql(keys: &[(Vec<String>, i64)]) -> String {
    let hashes: Vec<String> = keys.iter().map(|(_, hash)| hash.to_string()).collect();
    format!("lakecheck_kh IN ({})", hashes.join(", "))
}

/// `parallel` disjoint, ascending ranges of segments covering `0..SEGMENTS`, or `None` for a
/// single query over all of them.
fn checksum_ranges(parallel: usize) -> Option<Vec<(i64, i64)>> {
    let parallel = parallel.max(1) as i64;
    if parallel == 1 {
        return None;
    }
    let width = (SEGMENTS + parallel - 1) / parallel;
    Some(
        (0..parallel)
            .map(|p| {
                let hi = if p == parallel - 1 {
                    SEGMENTS - 1
                } else {
                    (p + 1) * width - 1
                };
                (p * width, hi)
            })
            .collect(),
    )
}

/// The inclusive key bounds of segments `lo..=hi`, clamped to bigint.
fn key_range(min: i64, width: i64, lo: i64, hi: i64) -> (i64, i64) {
    let clamp = |v: i128| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    let (min, width) = (min as i128, width as i128);
    (
        clamp(min + lo as i128 * width),
        clamp(min + (hi as i128 + 1) * width - 1),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use rstest::rstest;

    use super::*;
    use crate::model::{FileContext, LogicalType, MapReader, TableRef};
    use crate::sources::{files, lake, postgres, Source, SourceContext, SourceKind};

    /// A source of `kind` built from rule-file `options` as `rules` builds it (which connects
    /// to nothing).
    fn source(kind: &SourceKind, name: &str, options: &str) -> Arc<dyn Source> {
        let ctx = FileContext::new(Path::new("sql.yml"), Arc::default());
        let node = marked_yaml::parse_yaml(0, options).unwrap();
        let mut reader = MapReader::new(&ctx, &node, name).unwrap();
        let context = SourceContext {
            functions: Vec::new(),
            formats: &[files::PARQUET],
            format: None,
            resources: Default::default(),
        };
        (kind.parse)(name, &mut reader, &context).unwrap()
    }

    fn column(name: &str, logical: LogicalType, engine_type: &str) -> Column {
        Column {
            name: name.into(),
            engine_type: engine_type.into(),
            logical,
            millisecond_precision: false,
        }
    }

    fn side(
        source: Arc<dyn Source>,
        table: &str,
        filter: Option<&str>,
        columns: &[Column],
    ) -> Side {
        Side {
            table: TableRef {
                source: source.name().to_string(),
                table: table.to_string(),
            },
            read_as: table.to_string(),
            source,
            filter: filter.map(str::to_string),
            columns: columns.to_vec(),
            key_enforced: false,
        }
    }

    const INT: LogicalType = LogicalType::Int {
        bits: 32,
        signed: true,
    };

    /// PostgreSQL `customers` (kept to one state) against the lake's, by one integer key.
    fn key_range_plan() -> Plan {
        let pg = source(
            &postgres::KIND,
            "pg",
            "url: postgres://lakecheck@localhost/shop",
        );
        let lake = source(&lake::KIND, "lake", "url: /lake");
        let columns = [
            column("customer_id", INT, "integer"),
            column("email", LogicalType::Text, "text"),
        ];
        Plan {
            left: side(pg, "customers", Some("state = 'CA'"), &columns),
            right: side(lake, "customers", None, &columns),
            canons: vec![Canon::Int, Canon::Text],
            hashing: Hashing::Typed,
            key_len: 1,
            samples: 5,
            segmenter: Segmenter::KeyRange { min: 100, width: 3 },
            allow_duplicates: false,
            settle: None,
            max_differences: crate::reconcile::MAX_DIFFERENCES,
        }
    }

    /// Two lake tables by a key of two columns, in key-hash buckets.
    fn key_hash_plan() -> Plan {
        let raw = source(&lake::KIND, "raw", "url: /raw");
        let curated = source(&lake::KIND, "curated", "url: /curated");
        let columns = [
            column("order_id", INT, "Int32"),
            column("line", INT, "Int32"),
            column(
                "total",
                LogicalType::Decimal {
                    precision: 10,
                    scale: 2,
                },
                "Decimal128(10, 2)",
            ),
        ];
        Plan {
            left: side(raw, "order_lines", None, &columns),
            right: side(curated, "order_lines", Some("total > 0"), &columns),
            canons: vec![Canon::Int, Canon::Int, Canon::Decimal],
            hashing: Hashing::Typed,
            key_len: 2,
            samples: 10,
            segmenter: Segmenter::KeyHash,
            allow_duplicates: false,
            settle: None,
            max_differences: crate::reconcile::MAX_DIFFERENCES,
        }
    }

    /// PostgreSQL against Athena, which has no typed hash: both sides hash canonical text, one
    /// column of each canon Athena can hold.
    fn text_hash_plan() -> Plan {
        let pg = source(
            &postgres::KIND,
            "pg",
            "url: postgres://lakecheck@localhost/shop",
        );
        let athena = source(
            &crate::sources::athena::KIND,
            "athena",
            "region: us-east-1\ndatabase: autocorp_curated",
        );
        let decimal = LogicalType::Decimal {
            precision: 12,
            scale: 2,
        };
        let left = [
            column("customer_id", LogicalType::Text, "text"),
            column("email", LogicalType::Text, "text"),
            column("lifetime_value", decimal, "numeric(12,2)"),
            column("score", LogicalType::Float { bits: 64 }, "double precision"),
            column("active", LogicalType::Bool, "boolean"),
            column("born", LogicalType::Date, "date"),
            column(
                "updated_at",
                LogicalType::TimestampTz,
                "timestamp with time zone",
            ),
            column("country", LogicalType::PaddedText, "character(2)"),
            column("photo", LogicalType::Binary, "bytea"),
            column("token", LogicalType::Uuid, "uuid"),
        ];
        let mut right = left.clone();
        for (column, declared) in right.iter_mut().zip([
            "varchar",
            "varchar",
            "decimal(12,2)",
            "double",
            "boolean",
            "date",
            "timestamp(3)",
            "char(2)",
            "varbinary",
            "varchar",
        ]) {
            column.engine_type = declared.to_string();
        }
        right[6].logical = LogicalType::Timestamp;
        Plan {
            left: side(pg, "customers", None, &left),
            right: side(athena, "customers", Some("state = 'TX'"), &right),
            canons: vec![
                Canon::Text,
                Canon::Text,
                Canon::Decimal,
                Canon::Float,
                Canon::Bool,
                Canon::Date,
                Canon::Millis,
                Canon::Padded,
                Canon::Binary,
                Canon::Uuid,
            ],
            hashing: Hashing::Text,
            key_len: 1,
            samples: 5,
            segmenter: Segmenter::KeyHash,
            allow_duplicates: false,
            settle: None,
            max_differences: crate::reconcile::MAX_DIFFERENCES,
        }
    }

    /// Every query of a plan, both sides, labelled: what a reviewer reads to see what is sent.
    fn queries(plan: &Plan) -> String {
        let changed = vec![
            (vec!["101".to_string(), "1".to_string()], -42),
            (vec!["205".to_string(), "2".to_string()], 7),
        ];
        let mut out = String::new();
        for (name, side) in [("left", &plan.left), ("right", &plan.right)] {
            let mut add = |what: &str, sql: String| {
                out.push_str(&format!("-- {name}: {what}\n{sql}\n\n"));
            };
            add("key bounds", side.key_bounds_sql());
            add("checksums, one query", side.checksums_sql(plan, None));
            add(
                "checksums, segments 0-2047",
                side.checksums_sql(plan, Some((0, 2047))),
            );
            add(
                "rows of segments 1, 2, 3 and 7",
                side.rows_in_segments_sql(plan, &[1, 2, 3, 7]),
            );
            add("values of changed keys", side.values_sql(plan, &changed));
            add("NULL keys", side.null_keys_sql(plan));
            add("duplicate keys", side.duplicate_keys_sql(plan));
        }
        out
    }

    #[rstest]
    #[case::key_range_postgres_and_lake("key_range", key_range_plan())]
    #[case::key_hash_two_column_key("key_hash", key_hash_plan())]
    #[case::text_hash_postgres_and_athena("text_hash_athena", text_hash_plan())]
    fn reconcile_sql(#[case] name: &str, #[case] plan: Plan) {
        insta::assert_snapshot!(format!("reconcile_sql_{name}"), queries(&plan));
    }

    /// What a settle re-reads: the rows of two keys on each side, by key.
    #[rstest]
    #[case::key_range_postgres_and_lake(key_range_plan())]
    #[case::key_hash_two_column_key(key_hash_plan())]
    fn settle_rereads_by_key(#[case] plan: Plan) {
        let keys = vec![
            (vec!["101".to_string(), "1".to_string()], -42),
            (vec!["205".to_string(), "2".to_string()], 7),
        ];
        let name = match plan.segmenter {
            Segmenter::KeyRange { .. } => "key_range",
            Segmenter::KeyHash => "key_hash",
        };
        let sql = format!(
            "-- left\n{}\n\n-- right\n{}\n",
            plan.left.rows_of_keys_sql(&plan, &keys),
            plan.right.rows_of_keys_sql(&plan, &keys)
        );
        insta::assert_snapshot!(format!("settle_rereads_{name}"), sql);
    }

    /// Text keys are listed by value (quotes doubled); keys of other types by key hash alone,
    /// and an integer beyond bigint drops its column's list rather than miss the key.
    #[rstest]
    #[case::text(LogicalType::Text, Canon::Text, &["5:O'Hara", "0:"], Some("\"k\" IN ('', 'O''Hara')"))]
    #[case::integers(INT, Canon::Int, &["-3", "12"], Some("\"k\" IN (-3, 12)"))]
    #[case::integer_beyond_bigint(INT, Canon::Int, &["1", "18446744073709551615"], None)]
    #[case::integers_read_as_text(LogicalType::Text, Canon::Int, &["1"], None)]
    #[case::padded_text(LogicalType::PaddedText, Canon::Padded, &["1:a"], None)]
    #[case::uuid(LogicalType::Uuid, Canon::Uuid, &["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], None)]
    fn key_columns_are_listed_only_when_their_canon_gives_the_value_back(
        #[case] logical: LogicalType,
        #[case] canon: Canon,
        #[case] fields: &[&str],
        #[case] expected: Option<&str>,
    ) {
        let mut plan = key_hash_plan();
        plan.left.columns[0] = column("k", logical, "t");
        plan.canons[0] = canon;
        let keys: Vec<(Vec<String>, i64)> = fields
            .iter()
            .map(|f| (vec![f.to_string(), "1".to_string()], 0))
            .collect();
        assert_eq!(
            plan.left.key_values_in_sql(&plan, 0, &keys).as_deref(),
            expected
        );
    }

    #[rstest]
    #[case::one_query(1, None)]
    #[case::zero_is_one(0, None)]
    #[case::two(2, Some(vec![(0, 4095), (4096, 8191)]))]
    #[case::uneven(3, Some(vec![(0, 2730), (2731, 5461), (5462, 8191)]))]
    fn checksum_queries_cover_every_segment_once(
        #[case] parallel: usize,
        #[case] expected: Option<Vec<(i64, i64)>>,
    ) {
        assert_eq!(checksum_ranges(parallel), expected);
    }

    #[test]
    fn parallel_checksums_cover_all_segments_without_overlap() {
        for parallel in 2..=16 {
            let ranges = checksum_ranges(parallel).unwrap();
            assert_eq!(ranges.len(), parallel);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges[parallel - 1].1, SEGMENTS - 1);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0, "{ranges:?}");
                assert!(pair[0].0 <= pair[0].1, "{ranges:?}");
            }
        }
    }

    #[test]
    fn one_checksum_query_per_range() {
        let plan = key_hash_plan();
        assert_eq!(plan.left.checksums_queries(&plan, 1).len(), 1);
        let four = plan.left.checksums_queries(&plan, 4);
        assert_eq!(four.len(), 4);
        assert!(four[3].contains("BETWEEN 6144 AND 8191"), "{}", four[3]);
    }

    #[rstest]
    #[case::first_segment(0, 10, 0, 0, (0, 9))]
    #[case::last_segment_near_max(i64::MAX - 100, 60, 1, 1, (i64::MAX - 40, i64::MAX))]
    #[case::negative(-100, 10, 0, 1, (-100, -81))]
    fn key_ranges_stay_inside_bigint(
        #[case] min: i64,
        #[case] width: i64,
        #[case] lo: i64,
        #[case] hi: i64,
        #[case] expected: (i64, i64),
    ) {
        assert_eq!(key_range(min, width, lo, hi), expected);
    }
}
