//! `type: athena`: the lake side queried where AutoCorp queries it, in Amazon Athena (distributed
//! Trino) over the Glue Data Catalog. lakecheck sends SQL and reads back small answers; the
//! scanning happens in Athena.
//!
//! ```yaml
//! athena:
//!   type: athena
//!   region: us-east-1
//!   database: autocorp_curated       # the Glue database tables are named in
//!   workgroup: primary               # default `primary`
//!   catalog: AwsDataCatalog          # default
//!   output_location: s3://bucket/athena-results/   # default: the workgroup's
//!   max_scanned: 50GB                # optional budget for the whole run
//! ```
//!
//! Credentials come from the standard AWS chain (environment, profile, web identity, container,
//! instance metadata), never from the rule file. Every query is read-only by construction
//! (checks send SELECTs) and billed by bytes scanned, which each result reports with the
//! execution id.

mod budget;
mod canon;
pub(crate) mod client;
mod execution;
mod values;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use self::budget::ScanBudget;
use self::client::AwsClients;
use super::{ScanLimit, Source, SourceContext, SourceError, SourceKind};
use crate::model::columns::{self, Column, LogicalType};
use crate::model::sql::{quote_ident, quote_literal};
use crate::model::{Canon, MapReader, Rows, RuleError};

pub use execution::{ExecutionCost, Polling, QueryPlace};

pub const KIND: SourceKind = SourceKind {
    name: "athena",
    parse,
};

const DEFAULT_WORKGROUP: &str = "primary";
const DEFAULT_CATALOG: &str = "AwsDataCatalog";

/// Where an Athena source sends its queries, as its rule options say.
#[derive(Debug, Clone)]
pub struct AthenaSettings {
    pub region: String,
    /// An endpoint instead of the region's (a VPC endpoint, a local test server).
    pub endpoint: Option<String>,
    pub place: QueryPlace,
    pub polling: Polling,
    /// `max_scanned`: bytes the source's queries may scan in one run.
    pub max_scanned: Option<u64>,
}

pub struct AthenaSource {
    name: String,
    region: String,
    endpoint: Option<String>,
    place: QueryPlace,
    polling: Polling,
    budget: ScanBudget,
    stops: execution::PendingStops,
    clients: OnceCell<AwsClients>,
}

impl std::fmt::Debug for AthenaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AthenaSource")
            .field("name", &self.name)
            .field("target", &self.describe())
            .finish()
    }
}

fn parse(
    name: &str,
    options: &mut MapReader,
    _context: &SourceContext,
) -> Result<std::sync::Arc<dyn Source>, RuleError> {
    let region = options.required_string("region", "us-east-1")?.value;
    let database = options
        .required_string("database", "autocorp_curated")?
        .value;
    let endpoint = match options.string("endpoint")? {
        Some(endpoint) => Some(checked_endpoint(
            &format!("source `{name}`"),
            endpoint,
            "https://athena.us-east-1.amazonaws.com",
        )?),
        None => None,
    };
    let workgroup = options.string("workgroup")?.map(|w| w.value);
    let catalog = options.string("catalog")?.map(|c| c.value);
    let output_location = match options.string("output_location")? {
        Some(location) if !location.value.starts_with("s3://") => {
            return Err(RuleError::new(
                location.location.clone(),
                format!(
                    "`output_location` of source `{name}` is `{}`, not an S3 URL",
                    location.value
                ),
            )
            .with_help("write `output_location: s3://bucket/athena-results/`"))
        }
        other => other.map(|l| l.value),
    };
    let max_scanned = options.size("max_scanned")?.map(|s| s.value);
    let poll = options.duration("poll_interval")?.map(|d| d.value);
    options.finish()?;
    let polling = match poll {
        Some(first) => Polling {
            first,
            max: first.max(Polling::default().max),
        },
        None => Polling::default(),
    };
    let settings = AthenaSettings {
        region,
        endpoint,
        place: QueryPlace {
            workgroup: workgroup.unwrap_or_else(|| DEFAULT_WORKGROUP.into()),
            catalog: catalog.unwrap_or_else(|| DEFAULT_CATALOG.into()),
            database,
            output_location,
        },
        polling,
        max_scanned,
    };
    Ok(std::sync::Arc::new(AthenaSource::new(name, settings)))
}

/// An endpoint override is a URL without credentials (they come from the AWS chain); `what`
/// names whose it is ("source `athena`"), `example` is a service's endpoint to suggest.
pub(crate) fn checked_endpoint(
    what: &str,
    endpoint: crate::model::Spanned<String>,
    example: &str,
) -> Result<String, RuleError> {
    match url::Url::parse(&endpoint.value) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Ok(endpoint.value)
        }
        _ => Err(RuleError::new(
            endpoint.location.clone(),
            format!("`endpoint` of {what} is not an http(s) URL without credentials"),
        )
        .with_help(format!(
            "write `endpoint: {example}` (credentials come from the AWS chain)"
        ))),
    }
}

impl AthenaSource {
    pub fn new(name: &str, settings: AthenaSettings) -> Self {
        Self {
            name: name.to_string(),
            region: settings.region,
            endpoint: settings.endpoint,
            place: settings.place,
            polling: settings.polling,
            budget: ScanBudget::new(settings.max_scanned),
            stops: execution::PendingStops::default(),
            clients: OnceCell::new(),
        }
    }

    /// The source with clients of `config` (an embedding program's credentials and HTTP
    /// client, or a test's recorded exchange) instead of the standard chain's.
    pub fn with_sdk_config(self, config: &aws_config::SdkConfig) -> Self {
        Self {
            clients: OnceCell::new_with(Some(AwsClients::from_config(config))),
            ..self
        }
    }

    /// Bytes this source's queries scanned so far in the run.
    pub fn scanned(&self) -> u64 {
        self.budget.spent()
    }

    async fn clients(&self) -> &AwsClients {
        self.clients
            .get_or_init(|| AwsClients::new(Some(&self.region), self.endpoint.as_deref()))
            .await
    }

    /// Runs `sql` and returns its rows with what it cost; a query the budget does not allow is
    /// refused before it starts, or stopped while it runs.
    pub async fn query_with_cost(
        &self,
        sql: &str,
        limit: Option<&ScanLimit>,
    ) -> Result<(Rows, ExecutionCost), SourceError> {
        let own = self
            .budget
            .remaining()
            .map_err(|e| SourceError::new(self, e))?
            .map(|bytes| ScanLimit {
                bytes,
                owner: format!("source `{}`'s `max_scanned`", self.name),
            });
        let budget = ScanLimit::tighter(own, limit.cloned());
        let clients = self.clients().await;
        match execution::run(
            &clients.athena,
            &self.place,
            self.polling,
            budget.as_ref(),
            &self.stops,
            sql,
        )
        .await
        {
            Ok((rows, cost)) => {
                self.budget.spend(cost.bytes_scanned);
                Ok((rows, cost))
            }
            Err((error, cost)) => {
                if let Some(cost) = cost {
                    self.budget.spend(cost.bytes_scanned);
                }
                Err(SourceError::new(self, error.to_string()))
            }
        }
    }

    /// The columns of `table` as the Glue Data Catalog declares them (Athena's own catalog),
    /// partition keys last as Athena lists them.
    async fn glue_columns(&self, database: &str, table: &str) -> Result<Vec<Column>, SourceError> {
        let clients = self.clients().await;
        let found = super::glue::get_table(&clients.glue, database, table)
            .await
            .map_err(|e| SourceError::new(self, e))?;
        Ok(found
            .columns
            .iter()
            .map(|(name, declared)| athena_column(name, declared))
            .collect())
    }

    /// `database` and `table` of a table reference: `customers` is in the source's database,
    /// `other_db.customers` names its own.
    fn split<'a>(&'a self, table: &'a str) -> (&'a str, &'a str) {
        table
            .split_once('.')
            .unwrap_or((self.place.database.as_str(), table))
    }
}

/// A column as Glue (Hive spelling: `string`, `int`, `decimal(12,2)`) or Athena
/// (`varchar`, `integer`, `timestamp(3)`) declares it. Athena reads timestamps to the
/// millisecond, whatever the files hold.
fn athena_column(name: &str, declared: &str) -> Column {
    let lower = declared.trim().to_ascii_lowercase();
    let (base, arguments) = match lower.split_once('(') {
        Some((base, rest)) => (base.trim(), rest.trim_end_matches(')')),
        None => (lower.as_str(), ""),
    };
    let numbers: Vec<i64> = arguments
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let postgres_spelling = match base {
        "tinyint" | "smallint" => "smallint",
        "int" | "integer" => "integer",
        "bigint" => "bigint",
        "decimal" => "numeric",
        "float" | "real" => "real",
        "double" => "double precision",
        "string" | "varchar" | "char" => "text",
        "boolean" => "boolean",
        "date" => "date",
        "timestamp" => "timestamp without time zone",
        "timestamp with time zone" => "timestamp with time zone",
        "binary" | "varbinary" => "bytea",
        _ if base.starts_with("array") => "ARRAY",
        _ => "",
    };
    let logical = match (postgres_spelling, base) {
        ("", _) if base.starts_with("struct") || base.starts_with("row") => LogicalType::Struct,
        ("", _) => LogicalType::Other,
        ("smallint", "tinyint") => LogicalType::Int {
            bits: 8,
            signed: true,
        },
        (spelling, _) => {
            columns::from_postgres(spelling, numbers.first().copied(), numbers.get(1).copied())
        }
    };
    Column {
        name: name.to_string(),
        engine_type: declared.to_string(),
        logical,
        millisecond_precision: matches!(logical, LogicalType::Timestamp | LogicalType::TimestampTz),
    }
}

#[async_trait]
impl Source for AthenaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        format!(
            "athena {} workgroup {}, {}.{}",
            self.region, self.place.workgroup, self.place.catalog, self.place.database
        )
    }

    fn table_sql(&self, table: &str) -> String {
        let (database, table) = self.split(table);
        format!("{}.{}", quote_ident(database), quote_ident(table))
    }

    async fn query(&self, sql: &str) -> Result<Rows, SourceError> {
        Ok(self.query_with_cost(sql, None).await?.0)
    }

    async fn costed_query(
        &self,
        sql: &str,
        limit: Option<&ScanLimit>,
    ) -> Result<(Rows, Option<ExecutionCost>), SourceError> {
        let (rows, cost) = self.query_with_cost(sql, limit).await?;
        Ok((rows, Some(cost)))
    }

    async fn columns(&self, table: &str) -> Result<Vec<Column>, SourceError> {
        let (database, name) = self.split(table);
        if self.place.catalog.eq_ignore_ascii_case(DEFAULT_CATALOG) {
            return self.glue_columns(database, name).await;
        }
        // A federated catalog: ask Athena itself.
        let rows = self
            .query(&format!(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
                quote_literal(database),
                quote_literal(name)
            ))
            .await?;
        if rows.rows.is_empty() {
            return Err(SourceError::new(
                self,
                format!(
                    "table `{database}.{name}` not found in catalog `{}`",
                    self.place.catalog
                ),
            ));
        }
        Ok(rows
            .rows
            .iter()
            .map(|row| {
                let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                athena_column(&text(0), &text(1))
            })
            .collect())
    }

    fn canonical_sql(&self, column: &Column, canon: Canon) -> String {
        canon::canonical_sql(column, canon)
    }

    /// Athena has no typed row hash: `typed_row_hash` is false, so reconciles hash canonical
    /// text on both sides and this is that text hash (the seed binds nothing it needs).
    fn row_hash_sql(&self, columns: &[(&Column, Canon)], _seed: &str) -> String {
        let fields: Vec<String> = columns
            .iter()
            .map(|(column, canon)| canon::canonical_sql(column, *canon))
            .collect();
        canon::md5_int64_sql(&fields.join(" || '|' || "))
    }

    fn typed_row_hash(&self) -> bool {
        false
    }

    async fn end_of_run(&self) {
        self.stops.wait(std::time::Duration::from_secs(10)).await;
    }

    fn md5_int64_sql(&self, text: &str) -> String {
        canon::md5_int64_sql(text)
    }

    fn bitwise_and_sql(&self, left: &str, right: &str) -> String {
        format!("bitwise_and({left}, {right})")
    }

    fn regex_match_sql(&self, text: &str, regex: &str) -> String {
        format!("regexp_like({text}, {regex})")
    }

    fn shift_right_sql(&self, value: &str, bits: u32) -> String {
        format!("bitwise_right_shift_arithmetic({value}, {bits})")
    }

    /// One query a side: Athena spreads a query over its own workers and bills at least
    /// 10 MB a query, so splitting the checksums into several would cost without speeding up.
    async fn parallel_queries(&self) -> usize {
        1
    }
}
