//! The AWS Glue Data Catalog: where a table named the way Athena users name it lives, and in
//! which format. Athena reads its column types from here (`athena/mod.rs`); a lake, Delta or
//! Hudi source with `catalog: { type: glue, database: autocorp_curated }` opens `sales_order`
//! at the S3 location Glue records for `autocorp_curated.sales_order`, in the format its entry
//! declares (each table format recognises its own entries: `TableFormatKind::in_catalog`).

use tokio::sync::OnceCell;

use super::athena::client::AwsClients;
pub use super::table_format::CatalogTable;
use crate::model::{MapReader, RuleError};

/// Reads `database.table` from Glue.
pub async fn get_table(
    client: &aws_sdk_glue::Client,
    database: &str,
    table: &str,
) -> Result<CatalogTable, String> {
    let answer = client
        .get_table()
        .database_name(database)
        .name(table)
        .send()
        .await
        .map_err(|e| {
            format!(
                "Glue GetTable `{database}.{table}` failed: {}",
                super::athena::client::describe_error(&e)
            )
        })?;
    let Some(found) = answer.table() else {
        return Err(format!("Glue has no table `{database}.{table}`"));
    };
    let descriptor = found.storage_descriptor();
    let serde = descriptor.and_then(|d| d.serde_info());
    let columns = descriptor
        .map(|s| s.columns())
        .unwrap_or_default()
        .iter()
        .chain(found.partition_keys())
        .map(|c| (c.name().to_string(), c.r#type().unwrap_or("").to_string()))
        .collect();
    Ok(CatalogTable {
        database: database.to_string(),
        name: found.name().to_string(),
        location: descriptor
            .and_then(|d| d.location())
            .filter(|l| !l.is_empty())
            .map(str::to_string),
        input_format: descriptor
            .and_then(|d| d.input_format())
            .map(str::to_string),
        serde: serde
            .and_then(|s| s.serialization_library())
            .map(str::to_string),
        serde_parameters: serde
            .and_then(|s| s.parameters())
            .cloned()
            .unwrap_or_default(),
        parameters: found.parameters().cloned().unwrap_or_default(),
        columns,
    })
}

/// `catalog: { type: glue, database: ..., region: ..., endpoint: ... }` of a lake source.
#[derive(Debug)]
pub struct GlueCatalog {
    pub database: String,
    region: String,
    endpoint: Option<String>,
    client: OnceCell<aws_sdk_glue::Client>,
}

impl GlueCatalog {
    /// The source's `catalog:` mapping, if it has one.
    pub fn parse(source: &str, options: &mut MapReader) -> Result<Option<Self>, RuleError> {
        let Some(node) = options.node("catalog") else {
            return Ok(None);
        };
        let mut catalog = MapReader::new(
            options.context(),
            node,
            format!("`catalog` of source `{source}`"),
        )?;
        let kind = catalog.required_string("type", "glue")?;
        if kind.value != "glue" {
            return Err(RuleError::new(
                kind.location,
                format!("unknown catalog type `{}` in source `{source}`", kind.value),
            )
            .with_help("expected `glue` (the AWS Glue Data Catalog)"));
        }
        let database = catalog.required_string("database", "autocorp_curated")?;
        let region = catalog.string("region")?;
        let endpoint = match catalog.string("endpoint")? {
            Some(endpoint) => Some(super::athena::checked_endpoint(
                &format!("the catalog of source `{source}`"),
                endpoint,
                "https://glue.us-east-1.amazonaws.com",
            )?),
            None => None,
        };
        catalog.finish()?;
        Ok(Some(Self {
            database: database.value,
            // The standard chain's region when none is written (AWS_REGION, the profile).
            region: region.map(|r| r.value).unwrap_or_default(),
            endpoint,
            client: OnceCell::new(),
        }))
    }

    /// The catalog answering through an SDK configuration built elsewhere (a test's).
    pub fn with_sdk_config(self, config: &aws_config::SdkConfig) -> Self {
        Self {
            client: OnceCell::new_with(Some(AwsClients::from_config(config).glue)),
            ..self
        }
    }

    /// `glue database autocorp_curated`, for messages.
    pub fn describe(&self) -> String {
        format!("Glue database `{}`", self.database)
    }

    /// The entry of table reference `name`: `sales_order` in the catalog's database,
    /// `other_db.sales_order` in another.
    pub async fn table(&self, name: &str) -> Result<CatalogTable, String> {
        let (database, table) = name
            .split_once('.')
            .unwrap_or((self.database.as_str(), name));
        let client = self
            .client
            .get_or_init(|| async {
                let region = (!self.region.is_empty()).then_some(self.region.as_str());
                AwsClients::new(region, self.endpoint.as_deref()).await.glue
            })
            .await;
        get_table(client, database, table).await
    }
}
