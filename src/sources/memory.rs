//! The memory of one run: a single DataFusion memory pool and spill directory that every lake
//! source's session shares, so the run as a whole stays under `--memory-limit` however many
//! sources and checks it has. Sorts and aggregates that reach their share spill to the OS temp
//! directory; an operator that cannot spill (a hash join's build side, an aggregate without
//! groups) fails its check with [`MemoryLimit::exceeded`], and the run goes on.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::model::parse_bytes;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};

/// The share of physical memory a run may use unless `--memory-limit` says otherwise.
pub const DEFAULT_MEMORY_PERCENT: u64 = 50;

/// The limit assumed when physical memory cannot be read (no `/proc/meminfo`).
pub const FALLBACK_MEMORY_LIMIT: u64 = 4 << 30;

/// How many of the largest memory users an exhausted pool names in its error.
const CONSUMERS_NAMED: usize = 3;

/// The run's memory limit in bytes, and how it was chosen (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    /// Whether the user gave it (`--memory-limit`) rather than the default share of RAM.
    pub explicit: bool,
}

impl MemoryLimit {
    /// The default: [`DEFAULT_MEMORY_PERCENT`] of physical memory, or [`FALLBACK_MEMORY_LIMIT`]
    /// where physical memory cannot be read.
    pub fn default_share() -> Self {
        let bytes = physical_memory()
            .map(|total| total / 100 * DEFAULT_MEMORY_PERCENT)
            .unwrap_or(FALLBACK_MEMORY_LIMIT);
        Self {
            bytes,
            explicit: false,
        }
    }

    /// Reads `--memory-limit`: bytes with a unit (`512MiB`, `2GiB`, `1.5GB`, `800k`), a bare
    /// number of bytes, or a share of physical memory (`25%`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let help = "write a size such as `512MiB`, `2GiB`, `4GB`, or a share of RAM such as `25%`";
        let bytes = if let Some(percent) = text.strip_suffix('%') {
            let percent: f64 = percent
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
                .ok_or_else(|| format!("`{text}` is not a share of RAM between 0% and 100%"))?;
            let total = physical_memory()
                .ok_or("physical memory cannot be read here (no /proc/meminfo): give a size")?;
            (total as f64 * percent / 100.0) as u64
        } else {
            parse_bytes(text).ok_or_else(|| format!("`{text}` is not a memory size: {help}"))?
        };
        if bytes == 0 {
            return Err(format!("`{text}` leaves no memory at all: {help}"));
        }
        Ok(Self {
            bytes,
            explicit: true,
        })
    }

    /// What each sort keeps back for merging its spilled runs: a sixteenth of the limit, so
    /// several sorts running at once can still spill (DataFusion's 10 MiB caps it).
    pub fn sort_reserve(&self) -> usize {
        usize::try_from(self.bytes / 16).unwrap_or(usize::MAX)
    }

    /// The message of a query that reached the limit: what the limit is, where it came from,
    /// and how to raise it. `detail` is DataFusion's account of who asked for how much.
    pub fn exceeded(&self, detail: &str) -> String {
        let origin = if self.explicit {
            "set by --memory-limit".to_string()
        } else {
            format!("the default, {DEFAULT_MEMORY_PERCENT}% of RAM")
        };
        format!(
            "memory limit of {self} reached ({origin}): a query step that cannot spill to disk, or \
             could not spill enough, needed more: {detail}; \
             raise it with `lakecheck run --memory-limit <size>` (e.g. `--memory-limit 8GiB`), \
             run fewer checks at once (`--jobs`), or read less (a `where:` filter, fewer columns)"
        )
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_bytes(self.bytes))
    }
}

/// The memory every lake session of a run shares: one pool of [`MemoryLimit`] bytes, and one
/// spill directory (under the OS temp directory, created on first spill).
#[derive(Clone)]
pub struct RunMemory {
    pub limit: MemoryLimit,
    pub pool: Arc<dyn MemoryPool>,
    pub disk: Arc<DiskManager>,
}

impl RunMemory {
    pub fn new(limit: MemoryLimit) -> Self {
        // Fair: concurrent checks that spill each get an equal share, rather than the first
        // sort taking everything. Tracked: an exhausted pool names its largest users.
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(usize::try_from(limit.bytes).unwrap_or(usize::MAX)),
            NonZeroUsize::new(CONSUMERS_NAMED).unwrap_or(NonZeroUsize::MIN),
        );
        let disk = DiskManagerBuilder::default()
            .build()
            .expect("a disk manager in the OS temp directory is built without I/O");
        Self {
            limit,
            pool: Arc::new(pool),
            disk: Arc::new(disk),
        }
    }
}

impl Default for RunMemory {
    fn default() -> Self {
        Self::new(MemoryLimit::default_share())
    }
}

impl fmt::Debug for RunMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunMemory")
            .field("limit", &self.limit)
            .field("reserved", &self.pool.reserved())
            .finish()
    }
}

/// Total physical memory from `/proc/meminfo` (`MemTotal`), in bytes.
pub fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    mem_total(&info)
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// Bytes for a message: `1.0 MiB`, `7.8 GiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("1048576", 1 << 20)]
    #[case("1MiB", 1 << 20)]
    #[case("1 MiB", 1 << 20)]
    #[case("1MB", 1_000_000)]
    #[case("1.5GiB", 3 << 29)]
    #[case("800k", 800_000)]
    #[case("2g", 2_000_000_000)]
    #[case("4TiB", 4 << 40)]
    fn reads_sizes(#[case] text: &str, #[case] bytes: u64) {
        assert_eq!(MemoryLimit::parse(text).unwrap().bytes, bytes);
    }

    #[rstest]
    #[case("", "is not a memory size")]
    #[case("lots", "is not a memory size")]
    #[case("1XB", "is not a memory size")]
    #[case("1iB", "is not a memory size")]
    #[case("0", "leaves no memory")]
    #[case("150%", "between 0% and 100%")]
    #[case("-5%", "between 0% and 100%")]
    fn refuses_what_is_no_size(#[case] text: &str, #[case] message: &str) {
        let error = MemoryLimit::parse(text).unwrap_err();
        assert!(error.contains(message), "{error}");
    }

    #[test]
    fn a_share_of_ram_is_that_share_of_mem_total() {
        let Some(total) = physical_memory() else {
            return; // no /proc/meminfo here: `%` is refused and the fallback applies
        };
        let quarter = MemoryLimit::parse("25%").unwrap().bytes;
        assert_eq!(quarter, (total as f64 * 0.25) as u64);
        assert_eq!(
            MemoryLimit::default_share().bytes,
            total / 100 * DEFAULT_MEMORY_PERCENT
        );
    }

    #[test]
    fn reads_mem_total_from_meminfo() {
        let meminfo = "MemTotal:       16318480 kB\nMemFree:         1234 kB\n";
        assert_eq!(mem_total(meminfo), Some(16_318_480 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: 12 MB\n"), None);
    }

    #[test]
    fn formats_bytes_in_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1 << 20), "1.0 MiB");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn the_limit_message_says_how_to_raise_it() {
        let limit = MemoryLimit::parse("1MiB").unwrap();
        let message = limit.exceeded("Failed to allocate 2.0 MB for HashJoinInput");
        assert!(
            message.starts_with("memory limit of 1.0 MiB reached (set by --memory-limit)"),
            "{message}"
        );
        assert!(message.contains("--memory-limit 8GiB"), "{message}");
        let default = MemoryLimit::default_share().exceeded("x");
        assert!(default.contains("the default, 50% of RAM"), "{default}");
    }
}
