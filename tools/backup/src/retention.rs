//! Which backups a retention policy keeps: the newest of each of the last
//! `BACKUP_KEEP_DAILY` days that have a backup, and the newest of each of the last
//! `BACKUP_KEEP_WEEKLY` ISO weeks that have one (grandfather-father-son without the
//! grandfather). The newest backup is always kept, whatever the policy says.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub keep_daily: usize,
    pub keep_weekly: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            keep_daily: 7,
            keep_weekly: 4,
        }
    }
}

/// The indexes (into `created`) of the backups to keep.
pub fn keep(policy: Policy, created: &[DateTime<Utc>]) -> BTreeSet<usize> {
    let mut newest_first: Vec<usize> = (0..created.len()).collect();
    newest_first.sort_by(|a, b| created[*b].cmp(&created[*a]));
    let mut kept = BTreeSet::new();
    if let Some(newest) = newest_first.first() {
        kept.insert(*newest);
    }
    let mut newest_of_each = |bucket: &dyn Fn(&DateTime<Utc>) -> (i32, u32), limit: usize| {
        let mut seen = BTreeSet::new();
        for &index in &newest_first {
            if seen.len() == limit {
                break;
            }
            if seen.insert(bucket(&created[index])) {
                kept.insert(index);
            }
        }
    };
    newest_of_each(&|at| (at.year(), at.ordinal()), policy.keep_daily);
    newest_of_each(
        &|at| {
            let week = at.iso_week();
            (week.year(), week.week())
        },
        policy.keep_weekly,
    );
    kept
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn keeps_the_newest_per_day_then_per_week() {
        // Two a day on the 1st to the 25th of November 2026 (a Sunday is the 1st).
        let created: Vec<_> = (1..=25).flat_map(|d| [at(d, 3), at(d, 15)]).collect();
        let kept: Vec<_> = keep(Policy::default(), &created)
            .into_iter()
            .map(|i| created[i])
            .collect();
        let mut expected: Vec<_> = (19..=25).map(|d| at(d, 15)).collect();
        // ISO weeks 48 (23–29) and 47 (16–22) already have their newest kept by day;
        // 46 (9–15) and 45 (2–8) add theirs.
        expected.extend([at(15, 15), at(8, 15)]);
        expected.sort();
        assert_eq!(kept, expected);
    }

    #[test]
    fn the_newest_survives_a_policy_of_nothing() {
        let created = vec![at(1, 1), at(3, 1), at(2, 1)];
        let nothing = Policy {
            keep_daily: 0,
            keep_weekly: 0,
        };
        assert_eq!(keep(nothing, &created), BTreeSet::from([1]));
        assert!(keep(nothing, &[]).is_empty());
    }
}
