//! The first pass of the DMS rebuild: the last change of every key the CDC files touch.
//!
//! Only CDC rows are kept track of, one entry per distinct key (its row-format bytes, the
//! winning change's sequence value, file and row): the memory grows with the keys that changed,
//! never with the full load, which the second pass ([`super::scan`]) streams past this map.
//! Keys and sequence values live end to end in byte buffers (fixed-width while every value has
//! the same length, as row-format values of fixed-width types do), and the map holds 4-byte
//! indices into 8-byte changes: a changed `int` key costs ~20 bytes, not a heap allocation and
//! a map slot each. The buffers grow by an eighth, not by doubling, and once the pass is done
//! the changes become the winning rows of each file (4 bytes each) and the sequences are
//! dropped: the second pass holds the keys, their table and those rows.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::mem::size_of;

use hashbrown::HashTable;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};

/// Makes room in `vec` for `additional` more values, growing by an eighth of what it holds
/// rather than doubling it: doubling leaves up to half of a large buffer unused (a map of 1.3M
/// changed keys holds 2M slots) and, while it copies, holds the old buffer and the new at once.
fn reserve_an_eighth<T>(vec: &mut Vec<T>, additional: usize) {
    if vec.capacity() - vec.len() < additional {
        vec.reserve_exact(additional.max(vec.capacity() / 8).max(64));
    }
}

/// Byte strings stored end to end, addressed by their position: without any per-value
/// bookkeeping while they all have one width, with a (start, length) per value once one differs.
struct PackedBytes {
    bytes: Vec<u8>,
    layout: Layout,
}

enum Layout {
    /// Every value so far is `width` bytes long (`None` before the first).
    Fixed { width: Option<usize>, count: usize },
    /// Where each value starts, and its length.
    Slots(Vec<(usize, u32)>),
}

impl PackedBytes {
    fn new() -> Self {
        Self {
            bytes: Vec::new(),
            layout: Layout::Fixed {
                width: None,
                count: 0,
            },
        }
    }

    fn get(&self, index: usize) -> &[u8] {
        match &self.layout {
            Layout::Fixed { width, .. } => {
                let width = width.unwrap_or(0);
                &self.bytes[index * width..(index + 1) * width]
            }
            Layout::Slots(slots) => {
                let (start, len) = slots[index];
                &self.bytes[start..start + len as usize]
            }
        }
    }

    /// Leaves fixed width behind: every value so far gets its slot.
    fn slots_mut(&mut self) -> &mut Vec<(usize, u32)> {
        if let Layout::Fixed { width, count } = self.layout {
            let width = width.unwrap_or(0);
            self.layout = Layout::Slots((0..count).map(|i| (i * width, width as u32)).collect());
        }
        match &mut self.layout {
            Layout::Slots(slots) => slots,
            Layout::Fixed { .. } => unreachable!("converted above"),
        }
    }

    fn push(&mut self, value: &[u8]) {
        match &mut self.layout {
            Layout::Fixed { width, count } if width.is_none_or(|w| w == value.len()) => {
                *width = Some(value.len());
                *count += 1;
            }
            _ => {
                let start = self.bytes.len();
                // Row-format values of one column are far shorter than 4 GiB.
                let slots = self.slots_mut();
                reserve_an_eighth(slots, 1);
                slots.push((start, value.len() as u32));
            }
        }
        reserve_an_eighth(&mut self.bytes, value.len());
        self.bytes.extend_from_slice(value);
    }

    /// Replaces value `index`, in place when it keeps its length (row-format sequence values
    /// usually do), so replaced values do not pile up.
    fn replace(&mut self, index: usize, value: &[u8]) {
        let (start, len) = match &self.layout {
            Layout::Fixed {
                width: Some(width), ..
            } => (index * width, *width),
            Layout::Fixed { width: None, .. } => unreachable!("replacing a value never pushed"),
            Layout::Slots(slots) => (slots[index].0, slots[index].1 as usize),
        };
        if len == value.len() {
            self.bytes[start..start + len].copy_from_slice(value);
        } else {
            let start = self.bytes.len();
            reserve_an_eighth(&mut self.bytes, value.len());
            self.bytes.extend_from_slice(value);
            self.slots_mut()[index] = (start, value.len() as u32);
        }
    }

    fn bytes(&self) -> usize {
        self.bytes.capacity()
            + match &self.layout {
                Layout::Fixed { .. } => 0,
                Layout::Slots(slots) => slots.capacity() * size_of::<(usize, u32)>(),
            }
    }
}

/// Where one key's last change so far is: the CDC file (its index among the table's files,
/// with [`DELETE`] set for a delete) and the row within it (from 0).
#[derive(Clone, Copy)]
struct LastChange {
    file_and_delete: u32,
    row: u32,
}

/// The bit of [`LastChange::file_and_delete`] that marks a delete.
const DELETE: u32 = 1 << 31;

impl LastChange {
    fn file(self) -> usize {
        (self.file_and_delete & !DELETE) as usize
    }

    fn is_delete(self) -> bool {
        self.file_and_delete & DELETE != 0
    }
}

/// Distinct keys in row format, numbered from 0 in the order they were added.
struct KeySet {
    hasher: RandomState,
    /// Key numbers, by the hash of the key's bytes.
    table: HashTable<u32>,
    keys: PackedBytes,
}

impl KeySet {
    fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            table: HashTable::new(),
            keys: PackedBytes::new(),
        }
    }

    /// The number of `key`, if the key is known.
    fn find(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |index| self.keys.get(*index as usize) == key)
            .map(|index| *index as usize)
    }

    /// Adds `key`, which [`Self::find`] did not know, as number `index`.
    fn add(&mut self, key: &[u8], index: u32) {
        self.keys.push(key);
        let hash = self.hasher.hash_one(key);
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.table
            .insert_unique(hash, index, |i| hasher.hash_one(keys.get(*i as usize)));
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn bytes(&self) -> usize {
        self.table.capacity() * (size_of::<u32>() + 1) + self.keys.bytes()
    }
}

/// Distinct keys and each one's last change, compactly: key number `i`, entry `i` of `changes`
/// and value `i` of `sequences` belong together.
struct KeyIndex {
    keys: KeySet,
    changes: Vec<LastChange>,
    /// Each winning change's sequence value in row format (which compares as the values do);
    /// empty for NULL or a file without the column, older than every value.
    sequences: PackedBytes,
}

impl KeyIndex {
    fn new() -> Self {
        Self {
            keys: KeySet::new(),
            changes: Vec::new(),
            sequences: PackedBytes::new(),
        }
    }

    /// Records a change of `key`: a new key, or a later change of a known one when its sequence
    /// is at least the current winner's.
    fn observe(&mut self, key: &[u8], sequence: &[u8], change: LastChange) {
        match self.keys.find(key) {
            Some(index) => {
                if sequence >= self.sequences.get(index) {
                    self.sequences.replace(index, sequence);
                    self.changes[index] = change;
                }
            }
            None => {
                let index = self.changes.len() as u32;
                reserve_an_eighth(&mut self.changes, 1);
                self.changes.push(change);
                self.sequences.push(sequence);
                self.keys.add(key, index);
            }
        }
    }

    fn bytes(&self) -> usize {
        self.keys.bytes()
            + self.changes.capacity() * size_of::<LastChange>()
            + self.sequences.bytes()
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
        let file_number = u32::try_from(file)
            .ok()
            .filter(|f| f & DELETE == 0)
            .ok_or_else(|| {
                format!("a table of more than 2^31 files cannot be rebuilt here ({file})")
            })?;
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
            let change = LastChange {
                file_and_delete: file_number | if delete { DELETE } else { 0 },
                row,
            };
            self.by_key.observe(
                rows.row(i).as_ref(),
                sequence.as_ref().map_or(&[], |s| s.as_ref()),
                change,
            );
        }
        Ok(())
    }

    /// What the map holds, in bytes (its table and what its entries own on the heap).
    pub(super) fn bytes(&self) -> usize {
        self.by_key.bytes()
    }

    /// The changed keys, and for each of `files` files the rows (ascending) whose change is the
    /// last of its key and not a delete. The changes are sorted where they lie and become
    /// those rows; the sequences are dropped.
    pub(super) fn finish(self, files: usize) -> ChangedKeys {
        let KeyIndex {
            keys,
            mut changes,
            sequences,
        } = self.by_key;
        drop(sequences);
        changes.retain(|c| !c.is_delete());
        changes.sort_unstable_by_key(|c| (c.file(), c.row));
        // File `f`'s rows are `rows[starts[f]..starts[f + 1]]`.
        let mut starts = vec![0; files + 1];
        for change in &changes {
            starts[change.file() + 1] += 1;
        }
        for f in 0..files {
            starts[f + 1] += starts[f];
        }
        // Collected in the changes' own buffer, then its unused half given back.
        let mut rows: Vec<u32> = changes.into_iter().map(|c| c.row).collect();
        rows.shrink_to_fit();
        let bytes = keys.bytes()
            + rows.capacity() * size_of::<u32>()
            + starts.capacity() * size_of::<usize>();
        ChangedKeys {
            converter: self.keys,
            keys,
            rows,
            starts,
            bytes,
        }
    }
}

/// The outcome of the first pass: which keys changed, and which CDC rows hold their state.
pub(super) struct ChangedKeys {
    converter: RowConverter,
    keys: KeySet,
    /// The rows holding a changed key's state, by file, each file's ascending.
    rows: Vec<u32>,
    /// Where each file's rows start in `rows`, and (last) where the rows end.
    starts: Vec<usize>,
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
        self.keys.is_empty()
    }

    /// The rows of file `file` that hold a key's current state, ascending.
    pub(super) fn upserts(&self, file: usize) -> &[u32] {
        &self.rows[self.starts[file]..self.starts[file + 1]]
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

    #[rstest]
    #[case::one_width(&["ab", "cd", "ef"], &[(1, "xy")])]
    #[case::widths_differ(&["ab", "c", "def"], &[(0, "z")])]
    #[case::replaced_by_another_width(&["ab", "cd"], &[(1, "long"), (0, ""), (1, "qq")])]
    #[case::empty_values(&["", "", "x"], &[(2, "")])]
    fn packed_bytes_keep_every_value_through_pushes_and_replacements(
        #[case] pushed: &[&str],
        #[case] replacements: &[(usize, &str)],
    ) {
        let mut packed = PackedBytes::new();
        let mut expected: Vec<Vec<u8>> = Vec::new();
        for value in pushed {
            packed.push(value.as_bytes());
            expected.push(value.as_bytes().to_vec());
        }
        for (index, value) in replacements {
            packed.replace(*index, value.as_bytes());
            expected[*index] = value.as_bytes().to_vec();
        }
        for (index, value) in expected.iter().enumerate() {
            assert_eq!(packed.get(index), value.as_slice(), "value {index}");
        }
    }

    #[test]
    fn keys_of_varying_length_are_told_apart() {
        let mut changes = LastChanges::new(vec![DataType::Utf8], None).unwrap();
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["a", "bb", "a", "ccc", "bb"]));
        let ops: ArrayRef = Arc::new(StringArray::from(vec!["I", "I", "U", "I", "D"]));
        changes
            .observe(0, 0, &[keys], None, Some(&ops), None)
            .unwrap();
        let changed = changes.finish(1);
        assert_eq!(changed.upserts(0), &[2, 3]);
        let full_load: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "bb", "cc"]));
        assert_eq!(
            changed.unchanged(&[full_load]).unwrap(),
            BooleanArray::from(vec![false, true, false, true])
        );
    }

    #[test]
    fn each_file_keeps_its_own_winning_rows_ascending() {
        let mut changes = LastChanges::new(vec![DataType::Int32], None).unwrap();
        let ops = |ops: &[&str]| -> ArrayRef { Arc::new(StringArray::from(ops.to_vec())) };
        // File 1: keys 5, 6, 7; file 3 then updates 6, deletes 7 and inserts 8.
        let keys: ArrayRef = Arc::new(Int32Array::from(vec![7, 5, 6]));
        changes
            .observe(1, 0, &[keys], None, Some(&ops(&["I", "I", "I"])), None)
            .unwrap();
        let keys: ArrayRef = Arc::new(Int32Array::from(vec![8, 7, 6]));
        changes
            .observe(3, 100, &[keys], None, Some(&ops(&["I", "D", "U"])), None)
            .unwrap();
        let changed = changes.finish(5);
        let upserts: Vec<&[u32]> = (0..5).map(|f| changed.upserts(f)).collect();
        assert_eq!(upserts, [&[][..], &[1], &[], &[100, 102], &[]]);
    }

    #[test]
    fn buffers_hold_at_most_an_eighth_more_than_their_values() {
        let mut changes = LastChanges::new(vec![DataType::Int32], None).unwrap();
        let keys: ArrayRef = Arc::new(Int32Array::from((0..100_000).collect::<Vec<_>>()));
        changes.observe(0, 0, &[keys], None, None, None).unwrap();
        let index = &changes.by_key;
        let (values, changes_held) = (index.changes.len(), index.changes.capacity());
        assert!(
            changes_held <= values + values / 8,
            "{changes_held} for {values}"
        );
        // A row-format `int` is 5 bytes: a null marker and the value.
        let key_bytes = index.keys.keys.bytes.capacity();
        assert!(
            key_bytes <= 5 * (values + values / 8),
            "{key_bytes} for {values}"
        );
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
