//! The first pass of the DMS rebuild: the last change of every key the CDC files touch.
//!
//! Only CDC rows are kept track of, one entry per distinct key (its row-format bytes, the
//! winning change's sequence value, file and row): the memory grows with the keys that changed,
//! never with the full load, which the second pass ([`super::scan`]) streams past this map.
//! The keys live in one byte buffer and the map holds 4-byte indices into a table of changes,
//! so a changed key costs its bytes plus ~25 bytes, not a heap allocation and a map slot each.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::mem::size_of;

use hashbrown::HashTable;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};

/// One key's last change so far.
#[derive(Clone, Copy)]
struct LastChange {
    /// Where the key's row-format bytes end in [`KeyIndex::key_bytes`] (they start where the
    /// previous key's end).
    key_end: usize,
    /// The change's sequence value in row format (which compares as the values do): its start
    /// in [`KeyIndex::sequence_bytes`] and length, [`NO_SEQUENCE`] for NULL or a file without
    /// the column, older than every value.
    sequence_start: usize,
    sequence_len: u32,
    /// Index of the CDC file among the table's files, and the row within it (from 0).
    file: u32,
    row: u32,
    delete: bool,
}

/// The `sequence_len` of a change without a sequence value.
const NO_SEQUENCE: u32 = u32::MAX;

/// Distinct keys in row format and each one's last change, compactly.
struct KeyIndex {
    hasher: RandomState,
    /// Indices into `changes`, by the hash of the key's bytes.
    table: HashTable<u32>,
    changes: Vec<LastChange>,
    key_bytes: Vec<u8>,
    sequence_bytes: Vec<u8>,
}

impl KeyIndex {
    fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            table: HashTable::new(),
            changes: Vec::new(),
            key_bytes: Vec::new(),
            sequence_bytes: Vec::new(),
        }
    }

    fn key(&self, index: usize) -> &[u8] {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.changes[previous].key_end);
        &self.key_bytes[start..self.changes[index].key_end]
    }

    fn sequence(&self, change: &LastChange) -> Option<&[u8]> {
        (change.sequence_len != NO_SEQUENCE).then(|| {
            &self.sequence_bytes
                [change.sequence_start..change.sequence_start + change.sequence_len as usize]
        })
    }

    /// The index of `key`'s change, if the key is known.
    fn find(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |index| self.key(*index as usize) == key)
            .map(|index| *index as usize)
    }

    /// Keeps `sequence` for a change as (start, length), reusing `replacing`'s bytes when it
    /// has the same length (row-format sequences usually do), so replaced values do not pile up.
    fn store_sequence(
        &mut self,
        sequence: Option<&[u8]>,
        replacing: Option<&LastChange>,
    ) -> (usize, u32) {
        let Some(sequence) = sequence else {
            return (0, NO_SEQUENCE);
        };
        // Longer values than NO_SEQUENCE cannot occur: row-format values of one column are short.
        let len = sequence.len().min(NO_SEQUENCE as usize - 1) as u32;
        match replacing {
            Some(current) if current.sequence_len == len => {
                let start = current.sequence_start;
                self.sequence_bytes[start..start + len as usize].copy_from_slice(sequence);
                (start, len)
            }
            _ => {
                let start = self.sequence_bytes.len();
                self.sequence_bytes.extend_from_slice(sequence);
                (start, len)
            }
        }
    }

    /// Records a change of `key`: a new key, or a later change of a known one when its sequence
    /// is at least the current winner's.
    fn observe(&mut self, key: &[u8], sequence: Option<&[u8]>, file: u32, row: u32, delete: bool) {
        match self.find(key) {
            Some(index) => {
                let current = self.changes[index];
                if sequence >= self.sequence(&current) {
                    let (sequence_start, sequence_len) =
                        self.store_sequence(sequence, Some(&current));
                    self.changes[index] = LastChange {
                        sequence_start,
                        sequence_len,
                        file,
                        row,
                        delete,
                        ..current
                    };
                }
            }
            None => {
                let (sequence_start, sequence_len) = self.store_sequence(sequence, None);
                self.key_bytes.extend_from_slice(key);
                let index = self.changes.len() as u32;
                self.changes.push(LastChange {
                    key_end: self.key_bytes.len(),
                    sequence_start,
                    sequence_len,
                    file,
                    row,
                    delete,
                });
                let hash = self.hasher.hash_one(key);
                let (changes, key_bytes, hasher) = (&self.changes, &self.key_bytes, &self.hasher);
                let key_of = |i: usize| {
                    let start = i.checked_sub(1).map_or(0, |p| changes[p].key_end);
                    &key_bytes[start..changes[i].key_end]
                };
                self.table
                    .insert_unique(hash, index, |i| hasher.hash_one(key_of(*i as usize)));
            }
        }
    }

    fn bytes(&self) -> usize {
        self.table.capacity() * (size_of::<u32>() + 1)
            + self.changes.capacity() * size_of::<LastChange>()
            + self.key_bytes.capacity()
            + self.sequence_bytes.capacity()
    }
}

/// Collects, along the apply order, the last change of each key (see the module docs of
/// `dms`): a later change wins when its sequence value is at least the current winner's, so
/// equal values keep file/row order, as a stable sort followed by "last wins" would.
pub(super) struct LastChanges {
    keys: RowConverter,
    sequence: Option<RowConverter>,
    by_key: KeyIndex,
}

impl LastChanges {
    /// For keys of `key_types` (the table's unified types) and a sequence column of
    /// `sequence_type`, if there is one.
    pub(super) fn new(
        key_types: Vec<DataType>,
        sequence_type: Option<DataType>,
    ) -> Result<Self, String> {
        let fields = key_types.into_iter().map(SortField::new).collect();
        Ok(Self {
            keys: RowConverter::new(fields).map_err(|e| e.to_string())?,
            sequence: sequence_type
                .map(|t| RowConverter::new(vec![SortField::new(t)]))
                .transpose()
                .map_err(|e| e.to_string())?,
            by_key: KeyIndex::new(),
        })
    }

    /// Takes in the rows of one batch of CDC file `file` whose first row is row `first_row` of
    /// the file: `keys` (cast to the unified types), the sequence column and `Op` where the file
    /// has them, and `committed` (`as_of` with commit times) telling which rows count at all.
    pub(super) fn observe(
        &mut self,
        file: usize,
        first_row: usize,
        keys: &[ArrayRef],
        sequence: Option<&ArrayRef>,
        ops: Option<&ArrayRef>,
        committed: Option<&[bool]>,
    ) -> Result<(), String> {
        let rows = self.keys.convert_columns(keys).map_err(|e| e.to_string())?;
        let sequences = match (&self.sequence, sequence) {
            (Some(converter), Some(column)) => Some((
                converter
                    .convert_columns(std::slice::from_ref(column))
                    .map_err(|e| e.to_string())?,
                column,
            )),
            _ => None,
        };
        let ops = ops
            .map(|op| cast(op, &DataType::Utf8))
            .transpose()
            .map_err(|e| e.to_string())?;
        for i in 0..rows.num_rows() {
            if committed.is_some_and(|c| !c[i]) {
                continue;
            }
            let sequence = sequences
                .as_ref()
                .filter(|(_, column)| !column.is_null(i))
                .map(|(values, _)| values.row(i));
            let row = u32::try_from(first_row + i).map_err(|_| {
                format!(
                    "row {} is beyond the 2^32 rows a CDC file can hold here",
                    first_row + i + 1
                )
            })?;
            let delete = ops.as_ref().is_some_and(|op| {
                let op = op.as_string::<i32>();
                !op.is_null(i) && op.value(i) == "D"
            });
            self.by_key.observe(
                rows.row(i).as_ref(),
                sequence.as_ref().map(|s| s.as_ref()),
                file as u32,
                row,
                delete,
            );
        }
        Ok(())
    }

    /// What the map holds, in bytes (its table and what its entries own on the heap).
    pub(super) fn bytes(&self) -> usize {
        self.by_key.bytes()
    }

    /// The changed keys, and for each of `files` files the rows (ascending) whose change is the
    /// last of its key and not a delete.
    pub(super) fn finish(self, files: usize) -> ChangedKeys {
        let mut upserts = vec![Vec::new(); files];
        for change in self.by_key.changes.iter().filter(|c| !c.delete) {
            upserts[change.file as usize].push(change.row);
        }
        for rows in &mut upserts {
            rows.sort_unstable();
        }
        let bytes = self.bytes()
            + upserts
                .iter()
                .map(|r| r.len() * size_of::<u32>())
                .sum::<usize>();
        ChangedKeys {
            converter: self.keys,
            keys: self.by_key,
            upserts,
            bytes,
        }
    }
}

/// The outcome of the first pass: which keys changed, and which CDC rows hold their state.
pub(super) struct ChangedKeys {
    converter: RowConverter,
    keys: KeyIndex,
    upserts: Vec<Vec<u32>>,
    bytes: usize,
}

impl ChangedKeys {
    /// Which rows of `keys` (full-load key columns, cast to the unified types) belong to no
    /// changed key: their full-load state stands.
    pub(super) fn unchanged(&self, keys: &[ArrayRef]) -> Result<BooleanArray, String> {
        if self.is_empty() {
            return Ok(BooleanArray::from(vec![
                true;
                keys.first().map_or(0, |k| k.len())
            ]));
        }
        let rows = self
            .converter
            .convert_columns(keys)
            .map_err(|e| e.to_string())?;
        Ok(rows
            .iter()
            .map(|row| Some(self.keys.find(row.as_ref()).is_none()))
            .collect())
    }

    /// Whether any key changed at all (else the full load stands as it is).
    pub(super) fn is_empty(&self) -> bool {
        self.keys.changes.is_empty()
    }

    /// The rows of file `file` that hold a key's current state, ascending.
    pub(super) fn upserts(&self, file: usize) -> &[u32] {
        &self.upserts[file]
    }

    /// What the first pass keeps in memory, in bytes.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use rstest::rstest;

    /// The winning (file, row) of key 1 when one file holds `sequence.len()` changes of it.
    fn winner(sequence: Option<ArrayRef>, ops: &[&str]) -> Option<(usize, u32)> {
        let rows = ops.len();
        let mut changes = LastChanges::new(
            vec![DataType::Int32],
            sequence.as_ref().map(|s| s.data_type().clone()),
        )
        .unwrap();
        let keys: ArrayRef = Arc::new(Int32Array::from(vec![1; rows]));
        let ops: ArrayRef = Arc::new(StringArray::from(ops.to_vec()));
        changes
            .observe(3, 0, &[keys], sequence.as_ref(), Some(&ops), None)
            .unwrap();
        let changed = changes.finish(4);
        assert!(!changed.is_empty());
        changed.upserts(3).first().map(|row| (3, *row))
    }

    #[rstest]
    #[case::sequence_beats_file_order(vec![Some("3"), Some("2"), Some("1")], 0)]
    #[case::ties_keep_file_order(vec![Some("2"), Some("1"), Some("2")], 2)]
    #[case::null_is_oldest(vec![Some("2"), None, Some("1")], 0)]
    #[case::ar_h_change_seq(vec![Some("20261121080000000000000000000000002"), Some("20261121080000000000000000000000001")], 0)]
    fn the_greatest_sequence_wins_and_ties_keep_file_order(
        #[case] sequence: Vec<Option<&str>>,
        #[case] expected_row: u32,
    ) {
        let ops = vec!["U"; sequence.len()];
        let sequence: ArrayRef = Arc::new(StringArray::from(sequence));
        assert_eq!(winner(Some(sequence), &ops), Some((3, expected_row)));
    }

    #[test]
    fn without_a_sequence_the_last_row_wins_and_numbers_compare_as_numbers() {
        assert_eq!(winner(None, &["I", "U", "U"]), Some((3, 2)));
        // 10 > 9 as numbers (as text it would not be).
        let numbers: ArrayRef = Arc::new(Int64Array::from(vec![Some(10), Some(9), None]));
        assert_eq!(winner(Some(numbers), &["U", "U", "U"]), Some((3, 0)));
    }

    #[test]
    fn a_deleted_key_is_changed_but_has_no_upsert() {
        assert_eq!(winner(None, &["I", "U", "D"]), None);
    }

    #[test]
    fn rows_not_committed_by_as_of_are_ignored_and_memory_follows_the_keys() {
        let mut changes = LastChanges::new(vec![DataType::Int32], None).unwrap();
        let keys: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 1]));
        changes
            .observe(0, 10, &[keys], None, None, Some(&[true, false, true]))
            .unwrap();
        let small = changes.bytes();
        let many: ArrayRef = Arc::new(Int32Array::from((100..10_100).collect::<Vec<_>>()));
        changes.observe(1, 0, &[many], None, None, None).unwrap();
        assert!(
            changes.bytes() > small * 100,
            "{} vs {small}",
            changes.bytes()
        );
        let changed = changes.finish(2);
        assert_eq!(changed.upserts(0), &[12]);
        // Key 2's only change came after `as_of`: its full-load row stands.
        let full_load: ArrayRef = Arc::new(Int32Array::from(vec![2, 1, 500, 20_000]));
        assert_eq!(
            changed.unchanged(&[full_load]).unwrap(),
            BooleanArray::from(vec![true, false, false, true])
        );
    }
}
