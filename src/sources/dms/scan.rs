//! The second pass of the DMS rebuild: a DataFusion scan that streams the table's current state
//! batch by batch, so a check holds one batch per partition, never the table.
//!
//! Each file yields its rows: a full-load file those whose key has no CDC change, a CDC file
//! those that hold a key's last change (read through a row selection, so nothing else is
//! decoded), every row cut by `as_of` where commit times decide it, aligned to the table's
//! unified columns and projected. The files are dealt out to at most the session's
//! `target_partitions` partitions, each reading its files one after another: DataFusion runs
//! all partitions at once, so a partition per file would hold a reader's buffers (its fetched
//! column chunks, its row selection) for every file of the table at the same time. Filters are not pushed down: DataFusion applies a
//! `where:` after the rebuild, so a row updated or deleted out of a filter never reappears in it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::{and, filter_record_batch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, RowSelection, RowSelector};
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};
use datafusion::parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, EmptyRecordBatchStream, ExecutionPlan,
    Partitioning, PlanProperties, ReplaceChildrenOptions,
};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore};

use super::changed::ChangedKeys;
use super::{align, committed_by};
use crate::sources::table_format::TableError;

/// One Parquet file of the table, its footer read once when the table is opened.
pub(super) struct DmsFile {
    pub path: StorePath,
    pub is_full_load: bool,
    metadata: ArrowReaderMetadata,
}

impl DmsFile {
    /// Reads the footer of the file `meta` lists.
    pub(super) async fn open(
        store: &Arc<dyn ObjectStore>,
        meta: ObjectMeta,
        is_full_load: bool,
    ) -> Result<Self, String> {
        let mut file = StoreFile {
            store: store.clone(),
            path: meta.location.clone(),
            metadata: None,
        };
        let footer = ParquetMetaDataReader::new()
            .load_and_finish(&mut file, meta.size)
            .await
            .map_err(|e| format!("{}: {e}", meta.location))?;
        let metadata = ArrowReaderMetadata::try_new(Arc::new(footer), Default::default())
            .map_err(|e| format!("{}: {e}", meta.location))?;
        Ok(Self {
            path: meta.location,
            is_full_load,
            metadata,
        })
    }

    /// The file's columns, as Arrow reads them.
    pub(super) fn schema(&self) -> &SchemaRef {
        self.metadata.schema()
    }

    /// The file's batches holding those of `columns` it has (in the file's order), only the
    /// rows `rows` (ascending, from 0) when given.
    pub(super) fn read(
        &self,
        store: &Arc<dyn ObjectStore>,
        columns: &[&str],
        rows: Option<&[u32]>,
        batch_size: usize,
    ) -> Result<ParquetRecordBatchStream<StoreFile>, String> {
        let schema = self.schema();
        let roots = columns.iter().filter_map(|c| schema.index_of(c).ok());
        let mask = ProjectionMask::roots(self.metadata.parquet_schema(), roots);
        let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(
            StoreFile {
                store: store.clone(),
                path: self.path.clone(),
                metadata: Some(self.metadata.metadata().clone()),
            },
            self.metadata.clone(),
        )
        .with_projection(mask)
        .with_batch_size(batch_size);
        if let Some(rows) = rows {
            let total = usize::try_from(self.metadata.metadata().file_metadata().num_rows())
                .unwrap_or_default();
            builder = builder.with_row_selection(selection(rows, total));
        }
        builder.build().map_err(|e| self.error(e))
    }

    /// An error reading the file, naming it.
    pub(super) fn error(&self, cause: impl fmt::Display) -> String {
        format!("{}: {cause}", self.path)
    }
}

/// The selection of `rows` (ascending, from 0) among a file's `total` rows: a skip and a select
/// for each run of consecutive rows. (`RowSelection::from_consecutive_ranges` handed a range
/// per row reserves a selector for every row: 19 MB for a CDC file of 1.2M winning rows.)
fn selection(rows: &[u32], total: usize) -> RowSelection {
    let mut selectors: Vec<RowSelector> = Vec::new();
    // The row after the last one selected.
    let mut next = 0;
    for row in rows.iter().map(|r| *r as usize) {
        match selectors.last_mut() {
            Some(last) if row == next && !last.skip => last.row_count += 1,
            _ => {
                if row > next {
                    selectors.push(RowSelector::skip(row - next));
                }
                selectors.push(RowSelector::select(1));
            }
        }
        next = row + 1;
    }
    if next < total {
        selectors.push(RowSelector::skip(total - next));
    }
    RowSelection::from(selectors)
}

/// A Parquet file in the object store, read by byte range; once its footer is read
/// ([`DmsFile::open`]) every later read is handed it instead of fetching it again.
pub(super) struct StoreFile {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    metadata: Option<Arc<ParquetMetaData>>,
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        Box::pin(async move {
            object_store::ObjectStoreExt::get_range(self.store.as_ref(), &self.path, range)
                .await
                .map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>>
    {
        Box::pin(async move {
            match &self.metadata {
                Some(metadata) => Ok(metadata.clone()),
                None => Err(datafusion::parquet::errors::ParquetError::General(format!(
                    "{}: footer not read yet",
                    self.path
                ))),
            }
        })
    }
}

/// `as_of` with `timestamp_column`: rows committed after `as_of` are cut.
pub(super) struct CommitCut {
    pub column: String,
    pub as_of: DateTime<Utc>,
}

/// Everything the scan reads: the files that apply (CDC files after an `as_of` by file time
/// already left out), in apply order, and the outcome of the first pass.
pub(super) struct Rebuild {
    /// The table's name, for errors.
    pub table: String,
    pub store: Arc<dyn ObjectStore>,
    /// The unified columns of all files (`Op` dropped).
    pub schema: SchemaRef,
    pub files: Vec<DmsFile>,
    /// The key columns with their unified types; empty for a table read without a key.
    pub key: SchemaRef,
    /// The last change of each changed key; `None` when no key is given or no CDC file applies.
    pub changed: Option<ChangedKeys>,
    pub cut: Option<CommitCut>,
}

/// How one file is read.
#[derive(Debug, Clone, Copy)]
enum FileRows {
    /// Every row, cut by commit time; a full-load row whose key changed is dropped.
    Every,
    /// Only the rows that hold a changed key's current state.
    Upserts,
}

impl Rebuild {
    /// The reads of the scan, one per file that can yield rows.
    fn reads(&self) -> Vec<(usize, FileRows)> {
        self.files
            .iter()
            .enumerate()
            .filter_map(|(index, file)| match &self.changed {
                Some(changed) if !file.is_full_load => {
                    (!changed.upserts(index).is_empty()).then_some((index, FileRows::Upserts))
                }
                _ => Some((index, FileRows::Every)),
            })
            .collect()
    }

    /// The changed keys a full-load file's rows are checked against, if any.
    fn changed_for(&self, file: &DmsFile, rows: FileRows) -> Option<&ChangedKeys> {
        match rows {
            FileRows::Every if file.is_full_load => self.changed.as_ref().filter(|c| !c.is_empty()),
            _ => None,
        }
    }

    /// The batches of file `index` as `rows` says, with the columns of `output`.
    fn stream(
        self: &Arc<Self>,
        index: usize,
        rows: FileRows,
        output: SchemaRef,
        batch_size: usize,
    ) -> Result<impl futures::Stream<Item = Result<RecordBatch, String>> + Send + 'static, String>
    {
        let file = &self.files[index];
        let mut columns: Vec<&str> = output.fields().iter().map(|f| f.name().as_str()).collect();
        if self.changed_for(file, rows).is_some() {
            columns.extend(self.key.fields().iter().map(|f| f.name().as_str()));
        }
        let cut = matches!(rows, FileRows::Every)
            .then_some(self.cut.as_ref())
            .flatten();
        if let Some(cut) = cut {
            columns.push(&cut.column);
        }
        let selection = match rows {
            FileRows::Upserts => self.changed.as_ref().map(|c| c.upserts(index)),
            FileRows::Every => None,
        };
        let batches = file.read(&self.store, &columns, selection, batch_size)?;
        let rebuild = self.clone();
        let mut first_row = 0;
        Ok(batches.map(move |batch| {
            let file = &rebuild.files[index];
            let batch = batch.map_err(|e| file.error(e))?;
            let rows_before = first_row;
            first_row += batch.num_rows();
            rebuild.current_rows(index, rows, batch, rows_before, &output)
        }))
    }

    /// The rows of one batch of file `index` that belong to the current state, aligned to
    /// `output`; `first_row` is the batch's first row within the file (from 0).
    fn current_rows(
        &self,
        index: usize,
        rows: FileRows,
        batch: RecordBatch,
        first_row: usize,
        output: &SchemaRef,
    ) -> Result<RecordBatch, String> {
        let file = &self.files[index];
        let mut keep: Option<BooleanArray> = None;
        if let (FileRows::Every, Some(cut)) = (rows, &self.cut) {
            let committed = committed_by(&batch, &file.path, first_row, &cut.column, cut.as_of)?;
            keep = Some(BooleanArray::from(committed));
        }
        if let Some(changed) = self.changed_for(file, rows) {
            let keys = align(&batch, &self.key).map_err(|e| file.error(e))?;
            let unchanged = changed.unchanged(keys.columns())?;
            keep = Some(match keep {
                Some(committed) => and(&committed, &unchanged).map_err(|e| e.to_string())?,
                None => unchanged,
            });
        }
        let batch = match keep {
            Some(keep) => filter_record_batch(&batch, &keep).map_err(|e| e.to_string())?,
            None => batch,
        };
        align(&batch, output).map_err(|e| file.error(e))
    }

    /// An error of the scan, as the lake source reports a table that cannot be read.
    fn error(&self, cause: String) -> DataFusionError {
        DataFusionError::External(Box::new(TableError::Unreadable {
            format: "DMS",
            table: self.table.clone(),
            file: None,
            cause,
        }))
    }
}

/// The rebuilt DMS table as DataFusion sees it.
pub(super) struct DmsTable(pub Arc<Rebuild>);

impl fmt::Debug for DmsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmsTable")
            .field("table", &self.0.table)
            .field("files", &self.0.files.len())
            .finish()
    }
}

#[async_trait]
impl TableProvider for DmsTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(columns) => Arc::new(self.0.schema.project(columns)?),
            None => self.0.schema.clone(),
        };
        Ok(Arc::new(DmsScan::new(
            self.0.clone(),
            schema,
            state.config().batch_size(),
            state.config().target_partitions(),
        )))
    }

    /// Filters apply to the rebuilt state, never to the files: a filter on a file's rows would
    /// let a row whose key changed out of the filter (`Austin` updated to `Reno`) keep its old
    /// full-load state.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }
}

/// The scan of a rebuilt DMS table: the files that yield rows, dealt out to partitions.
#[derive(Debug)]
struct DmsScan {
    rebuild: Arc<Rebuild>,
    /// The reads of each partition, in the order it makes them.
    partitions: Vec<Vec<(usize, FileRows)>>,
    schema: SchemaRef,
    batch_size: usize,
    properties: Arc<PlanProperties>,
}

/// `reads` dealt out in turn to at most `partitions` partitions (at least one).
fn deal<T>(reads: Vec<T>, partitions: usize) -> Vec<Vec<T>> {
    let count = partitions.clamp(1, reads.len().max(1));
    let mut dealt: Vec<Vec<T>> = (0..count).map(|_| Vec::new()).collect();
    for (n, read) in reads.into_iter().enumerate() {
        dealt[n % count].push(read);
    }
    dealt
}

impl DmsScan {
    fn new(
        rebuild: Arc<Rebuild>,
        schema: SchemaRef,
        batch_size: usize,
        target_partitions: usize,
    ) -> Self {
        let partitions = deal(rebuild.reads(), target_partitions);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            rebuild,
            partitions,
            schema,
            batch_size,
            properties: Arc::new(properties),
        }
    }
}

impl fmt::Debug for Rebuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rebuild")
            .field("table", &self.table)
            .finish()
    }
}

impl DisplayAs for DmsScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "DmsScan: table={}, files={}, partitions={}",
            self.rebuild.table,
            self.rebuild.files.len(),
            self.partitions.len()
        )
    }
}

impl ExecutionPlan for DmsScan {
    fn name(&self) -> &'static str {
        "DmsScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let Some(reads) = self.partitions.get(partition).cloned() else {
            return Ok(Box::pin(EmptyRecordBatchStream::new(self.schema.clone())));
        };
        // A file's reader is made when the partition reaches it, after the one before is done.
        let (rebuild, schema, batch_size) =
            (self.rebuild.clone(), self.schema.clone(), self.batch_size);
        let batches = futures::stream::iter(reads)
            .map(move |(index, rows)| rebuild.stream(index, rows, schema.clone(), batch_size))
            .try_flatten();
        let rebuild = self.rebuild.clone();
        let batches = batches.map_err(move |e| rebuild.error(e));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}

/// The key columns of `schema` named by `key`, for [`Rebuild::key`].
pub(super) fn key_schema(
    schema: &Schema,
    key: &[String],
    table: &str,
) -> Result<SchemaRef, String> {
    let fields = key
        .iter()
        .map(|k| {
            schema
                .field_with_name(k)
                .cloned()
                .map_err(|_| format!("key column `{k}` is not in the files of `{table}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::{deal, selection};
    use datafusion::parquet::arrow::arrow_reader::RowSelection;
    use rstest::rstest;

    /// The same selection as a range per row, in far fewer selectors.
    #[rstest]
    #[case::runs(&[0, 1, 2, 5, 6, 9], 12, 6)]
    #[case::to_the_end(&[3, 4], 5, 2)]
    #[case::every_row(&[0, 1, 2], 3, 1)]
    #[case::none(&[], 4, 1)]
    fn a_selection_is_a_skip_and_a_select_per_run_of_rows(
        #[case] rows: &[u32],
        #[case] total: usize,
        #[case] selectors: usize,
    ) {
        let per_row = rows.iter().map(|r| *r as usize..*r as usize + 1);
        let chosen = selection(rows, total);
        assert_eq!(
            chosen,
            RowSelection::from_consecutive_ranges(per_row, total)
        );
        assert_eq!(chosen.iter().count(), selectors);
        assert_eq!(chosen.row_count(), rows.len());
    }

    #[test]
    fn files_are_dealt_in_turn_to_at_most_the_partitions_asked_for() {
        assert_eq!(
            deal(vec![1, 2, 3, 4, 5], 2),
            vec![vec![1, 3, 5], vec![2, 4]]
        );
        assert_eq!(deal(vec![1, 2], 4), vec![vec![1], vec![2]]);
        assert_eq!(deal(vec![1, 2], 0), vec![vec![1, 2]]);
        assert_eq!(deal(Vec::<u8>::new(), 2), vec![Vec::<u8>::new()]);
    }
}
