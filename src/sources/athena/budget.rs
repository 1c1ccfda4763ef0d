//! `max_scanned`: how many bytes a source's Athena queries may scan in one run. Athena bills by
//! bytes scanned (at least 10 MB a query), so a run stops spending once the budget is gone:
//! a query that would start after it is refused, and one that passes it while running is
//! stopped (see `execution.rs`). Either way the check is an error, never a pass.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::format_size;

/// The bytes one source may still scan, and what it has scanned.
#[derive(Debug, Default)]
pub struct ScanBudget {
    /// `None`: no limit.
    pub limit: Option<u64>,
    spent: AtomicU64,
    queries: AtomicU64,
}

impl ScanBudget {
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// What may still be scanned: `None` without a limit, `Err` with the figures once spent.
    pub fn remaining(&self) -> Result<Option<u64>, String> {
        let Some(limit) = self.limit else {
            return Ok(None);
        };
        let spent = self.spent();
        if spent >= limit {
            return Err(format!(
                "its `max_scanned` of {} is spent ({} scanned by {} queries this run), so no \
                 more Athena queries start; raise `max_scanned`",
                format_size(limit),
                format_size(spent),
                self.queries.load(Ordering::Relaxed)
            ));
        }
        Ok(Some(limit - spent))
    }

    /// Counts a finished or stopped query's scanned bytes.
    pub fn spend(&self, scanned: u64) {
        self.spent.fetch_add(scanned, Ordering::Relaxed);
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_with_the_figures() {
        let budget = ScanBudget::new(Some(50_000_000));
        assert_eq!(budget.remaining(), Ok(Some(50_000_000)));
        budget.spend(30_000_000);
        assert_eq!(budget.remaining(), Ok(Some(20_000_000)));
        budget.spend(25_000_000);
        let error = budget.remaining().unwrap_err();
        assert!(
            error.contains("`max_scanned` of 50.0 MB is spent (55.0 MB scanned by 2 queries"),
            "{error}"
        );
    }

    #[test]
    fn without_a_limit_nothing_is_refused() {
        let budget = ScanBudget::new(None);
        budget.spend(u64::MAX / 2);
        assert_eq!(budget.remaining(), Ok(None));
    }
}
