//! Plain folders of files (`format: parquet`, `format: csv`): every file directly in a table's
//! folder is part of it, read through DataFusion's listing table.
//!
//! CSV keeps only text, so a CSV table also has an all-text twin (every column `Utf8`, as in the
//! file) that reconciling checks read instead of the inferred types.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use object_store::{ObjectMeta, ObjectStoreExt};

use super::table_format::{
    self, CatalogTable, OpenedTable, TableError, TableFolder, TableFormat, TableFormatKind,
};
use crate::model::{MapReader, RuleError};

pub const PARQUET: TableFormatKind = TableFormatKind {
    name: "parquet",
    own_source_type: false,
    options: &["extension"],
    parse: |_, options| {
        let extension = extension(options, ".parquet")?;
        Ok(Arc::new(Files {
            extension,
            kind: FileKind::Parquet,
        }))
    },
    in_catalog: |entry| {
        entry.mentions("parquet").then(|| {
            Ok(Arc::new(Files {
                extension: ".parquet".into(),
                kind: FileKind::Parquet,
            }) as Arc<dyn TableFormat>)
        })
    },
};

pub const CSV: TableFormatKind = TableFormatKind {
    name: "csv",
    own_source_type: false,
    options: &["extension", "delimiter", "header"],
    parse: |source, options| {
        let extension = extension(options, ".csv")?;
        let delimiter = match options.string("delimiter")? {
            None => b',',
            Some(d) if d.value.len() == 1 => d.value.as_bytes()[0],
            Some(d) => {
                return Err(RuleError::new(
                    d.location,
                    format!(
                        "`delimiter` of source `{source}` must be one character, found `{}`",
                        d.value
                    ),
                ))
            }
        };
        let header = options.bool("header")?.map(|h| h.value).unwrap_or(true);
        Ok(Arc::new(Files {
            extension,
            kind: FileKind::Csv { delimiter, header },
        }))
    },
    in_catalog: |entry| {
        let delimited = entry.mentions("csv")
            || entry.mentions("LazySimpleSerDe")
            || entry.mentions("TextInputFormat");
        delimited.then(|| csv_of_catalog(entry))
    },
};

/// A CSV table as its catalog entry describes it: Hive's delimiter (`field.delim`, OpenCSVSerde's
/// `separatorChar`; Hive's default is `\x01`, OpenCSVSerde's `,`) and header
/// (`skip.header.line.count`; none by default).
fn csv_of_catalog(entry: &CatalogTable) -> Result<Arc<dyn TableFormat>, String> {
    let parameter = |key: &str| entry.serde_parameters.get(key).map(String::as_str);
    let delimiter = match parameter("separatorChar").or(parameter("field.delim")) {
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => return Err(format!("its delimiter `{d}` is not one character")),
        None if entry.mentions("OpenCSVSerde") => b',',
        None => 0x01,
    };
    let header = match entry.parameter("skip.header.line.count").map(str::trim) {
        None | Some("0") => false,
        Some("1") => true,
        Some(n) => {
            return Err(format!(
                "it skips {n} header lines; lakecheck reads CSV with one header line or none"
            ))
        }
    };
    Ok(Arc::new(Files {
        extension: ".csv".into(),
        kind: FileKind::Csv { delimiter, header },
    }))
}

fn extension(options: &mut MapReader, default: &str) -> Result<String, RuleError> {
    Ok(options
        .string("extension")?
        .map(|e| e.value)
        .unwrap_or_else(|| default.to_string()))
}

#[derive(Debug, Clone, Copy)]
enum FileKind {
    Parquet,
    Csv { delimiter: u8, header: bool },
}

/// A folder of Parquet or CSV files with one extension.
#[derive(Debug)]
struct Files {
    extension: String,
    kind: FileKind,
}

impl Files {
    fn file_format(&self) -> Arc<dyn FileFormat> {
        match self.kind {
            FileKind::Parquet => Arc::new(ParquetFormat::default()),
            FileKind::Csv { delimiter, header } => Arc::new(
                CsvFormat::default()
                    .with_has_header(header)
                    .with_delimiter(delimiter),
            ),
        }
    }

    fn format_name(&self) -> &'static str {
        match self.kind {
            FileKind::Parquet => "Parquet",
            FileKind::Csv { .. } => "CSV",
        }
    }
}

#[async_trait]
impl TableFormat for Files {
    fn name(&self) -> &'static str {
        match self.kind {
            FileKind::Parquet => PARQUET.name,
            FileKind::Csv { .. } => CSV.name,
        }
    }

    fn marker(&self) -> String {
        format!("{} files", self.extension)
    }

    async fn exists(&self, folder: &TableFolder<'_>) -> Result<bool, TableError> {
        Ok(!folder.files(&self.extension).await?.is_empty())
    }

    async fn open(&self, folder: &TableFolder<'_>) -> Result<OpenedTable, TableError> {
        if folder.pin.is_some() {
            return Err(TableError::Unsupported {
                reference: folder.name.to_string(),
                reason: "plain Parquet/CSV folders have no versions; pins apply to Delta and Hudi tables and `layout: dms`".into(),
            });
        }
        let unreadable = |e: datafusion::error::DataFusionError| {
            folder.unreadable(self.format_name(), e.find_root().to_string())
        };
        let url = ListingTableUrl::parse(folder.url.as_str()).map_err(unreadable)?;
        let options =
            ListingOptions::new(self.file_format()).with_file_extension(self.extension.clone());
        let inferred = ListingTableConfig::new(url)
            .with_listing_options(options)
            .infer_schema(folder.state)
            .await;
        let mut config = match inferred {
            Ok(config) => config,
            Err(e) => return Err(self.name_file(folder, e).await),
        };
        if folder.as_text {
            if let Some(inferred) = &config.file_schema {
                // Every column as the text in the file: nothing is lost to inference.
                let text: Vec<Field> = inferred
                    .fields()
                    .iter()
                    .map(|f| Field::new(f.name(), DataType::Utf8, true))
                    .collect();
                config = config.with_schema(Arc::new(Schema::new(text)));
            }
        }
        let table = ListingTable::try_new(config).map_err(unreadable)?;
        Ok(OpenedTable::new(Arc::new(table)))
    }

    fn keeps_text_only(&self) -> bool {
        matches!(self.kind, FileKind::Csv { .. })
    }

    async fn find_unreadable_file(&self, folder: &TableFolder<'_>) -> Option<(String, String)> {
        for file in folder.files(&self.extension).await.ok()? {
            let error = match self.kind {
                FileKind::Parquet => read_parquet(folder, &file).await.err(),
                FileKind::Csv { delimiter, header } => {
                    read_csv(folder, &file, delimiter, header).await.err()
                }
            };
            if let Some(error) = error {
                return Some((folder.file_url(&file.location), error));
            }
        }
        None
    }
}

impl Files {
    /// A schema inference error, naming the file that cannot be read when one can be found.
    async fn name_file(
        &self,
        folder: &TableFolder<'_>,
        error: datafusion::error::DataFusionError,
    ) -> TableError {
        let cause = error.find_root().to_string();
        let file = self
            .find_unreadable_file(folder)
            .await
            .map(|(file, _)| file);
        TableError::Unreadable {
            format: self.format_name(),
            table: folder.name.to_string(),
            file,
            cause,
        }
    }
}

/// The bytes of one file.
async fn fetch(folder: &TableFolder<'_>, file: &ObjectMeta) -> Result<bytes::Bytes, String> {
    folder
        .store
        .get(&file.location)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())
}

/// Decodes every row group of a Parquet file, so a damaged page fails as a damaged footer does.
async fn read_parquet(folder: &TableFolder<'_>, file: &ObjectMeta) -> Result<(), String> {
    table_format::read_parquet(folder.store.as_ref(), &file.location)
        .await
        .map(|_| ())
}

/// Parses a CSV file with the table's options, every column as text.
async fn read_csv(
    folder: &TableFolder<'_>,
    file: &ObjectMeta,
    delimiter: u8,
    header: bool,
) -> Result<(), String> {
    use datafusion::arrow::csv::reader::Format;
    let bytes = fetch(folder, file).await?;
    let format = Format::default()
        .with_header(header)
        .with_delimiter(delimiter);
    let (schema, _) = format
        .infer_schema(std::io::Cursor::new(&bytes), Some(1))
        .map_err(|e| e.to_string())?;
    let text = Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let reader = datafusion::arrow::csv::ReaderBuilder::new(Arc::new(text))
        .with_format(format)
        .build(std::io::Cursor::new(&bytes))
        .map_err(|e| e.to_string())?;
    for batch in reader {
        batch.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn entry(serde: &str, serde_parameters: &[(&str, &str)], skip: Option<&str>) -> CatalogTable {
        CatalogTable {
            input_format: Some("org.apache.hadoop.mapred.TextInputFormat".into()),
            serde: Some(serde.into()),
            serde_parameters: serde_parameters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            parameters: skip
                .map(|n| [("skip.header.line.count".to_string(), n.to_string())].into())
                .unwrap_or_default(),
            ..CatalogTable::default()
        }
    }

    const OPEN_CSV: &str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
    const LAZY: &str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";

    #[rstest]
    #[case::open_csv_default(OPEN_CSV, &[], None, b',', false)]
    #[case::open_csv_separator(OPEN_CSV, &[("separatorChar", ";")], Some("1"), b';', true)]
    #[case::hive_default_ctrl_a(LAZY, &[], Some("0"), 0x01, false)]
    #[case::hive_field_delim(LAZY, &[("field.delim", "|")], Some("1"), b'|', true)]
    fn csv_entries_give_their_delimiter_and_header(
        #[case] serde: &str,
        #[case] parameters: &[(&str, &str)],
        #[case] skip: Option<&str>,
        #[case] delimiter: u8,
        #[case] header: bool,
    ) {
        let format = (CSV.in_catalog)(&entry(serde, parameters, skip))
            .expect("a CSV entry")
            .unwrap();
        let shown = format!("{format:?}");
        assert!(
            shown.contains(&format!("delimiter: {delimiter}, header: {header}")),
            "{shown}"
        );
    }

    #[rstest]
    #[case::two_header_lines(&[], Some("2"), "it skips 2 header lines")]
    #[case::long_delimiter(&[("field.delim", "||")], None, "its delimiter `||` is not one character")]
    fn csv_entries_lakecheck_cannot_read_are_refused(
        #[case] parameters: &[(&str, &str)],
        #[case] skip: Option<&str>,
        #[case] expected: &str,
    ) {
        let refused = (CSV.in_catalog)(&entry(LAZY, parameters, skip))
            .expect("a CSV entry")
            .unwrap_err();
        assert!(refused.starts_with(expected), "{refused}");
    }

    #[test]
    fn parquet_entries_are_not_csv() {
        let parquet = CatalogTable {
            input_format: Some(
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into(),
            ),
            ..CatalogTable::default()
        };
        assert!((CSV.in_catalog)(&parquet).is_none());
        assert!((PARQUET.in_catalog)(&parquet).is_some());
    }
}
