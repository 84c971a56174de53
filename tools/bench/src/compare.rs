//! Side-by-side measurement: contenders take turns (A, B, A, B, …) so drift in the
//! machine — another process, thermal throttling, the page cache — lands on all of
//! them alike, and each figure is the median of its rounds with the spread shown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::load::{self, Measured};

/// One server under test and what it is asked for.
#[derive(Clone)]
pub struct Contender<'a> {
    pub name: &'a str,
    pub base_url: &'a str,
    pub work: load::Workload,
}

/// The rounds of one contender.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub rounds: Vec<Measured>,
}

impl Series {
    pub fn rps(&self) -> Vec<f64> {
        self.rounds.iter().map(Measured::rps).collect()
    }

    pub fn p99_ms(&self) -> Vec<f64> {
        self.rounds.iter().map(Measured::p99_ms).collect()
    }

    pub fn median_rps(&self) -> f64 {
        median(&self.rps())
    }

    pub fn median_p99_ms(&self) -> f64 {
        median(&self.p99_ms())
    }

    pub fn errors(&self) -> u64 {
        self.rounds.iter().map(|r| r.errors).sum()
    }

    /// `"2431 req/s (2390–2470), p99 6.1 ms (5.9–6.4)"`.
    pub fn describe(&self) -> String {
        let (rps, p99) = (self.rps(), self.p99_ms());
        format!(
            "{:>8.0} req/s ({:.0}–{:.0}), p99 {:>6.2} ms ({:.2}–{:.2}){}",
            median(&rps),
            min(&rps),
            max(&rps),
            median(&p99),
            min(&p99),
            max(&p99),
            match self.errors() {
                0 => String::new(),
                n => format!(", {n} ERRORS"),
            }
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rps_median": round(self.median_rps()),
            "rps_rounds": self.rps().iter().map(|v| round(*v)).collect::<Vec<_>>(),
            "p99_ms_median": round(self.median_p99_ms()),
            "p99_ms_rounds": self.p99_ms().iter().map(|v| round(*v)).collect::<Vec<_>>(),
            "errors": self.errors(),
        })
    }
}

/// Runs every contender `rounds` times in turn, `duration` each, after one short
/// warm-up apiece.
pub async fn interleaved(
    contenders: &[Contender<'_>],
    connections: usize,
    rounds: usize,
    duration: Duration,
) -> Vec<Series> {
    interleaved_sweep(&[(connections, contenders)], rounds, duration)
        .await
        .pop()
        .expect("one step")
}

/// [`interleaved`] across client counts too: each round measures every count in turn,
/// all of its contenders before the next count's. A machine that slows down then moves
/// every count's figures together, and a ratio between two counts compares rounds
/// seconds apart, not the minutes a count-by-count sweep puts between them. Returns
/// each step's series, in the order of `steps`.
pub async fn interleaved_sweep(
    steps: &[(usize, &[Contender<'_>])],
    rounds: usize,
    duration: Duration,
) -> Vec<Vec<Series>> {
    for &(connections, contenders) in steps {
        for c in contenders {
            load::run_workload(c.base_url, c.work.clone(), connections, duration / 4).await;
        }
    }
    let mut series: Vec<Vec<Series>> = steps
        .iter()
        .map(|(_, contenders)| {
            contenders
                .iter()
                .map(|c| Series {
                    name: c.name.to_owned(),
                    rounds: Vec::new(),
                })
                .collect()
        })
        .collect();
    for _ in 0..rounds {
        for (&(connections, contenders), step) in steps.iter().zip(series.iter_mut()) {
            for (c, s) in contenders.iter().zip(step.iter_mut()) {
                s.rounds
                    .push(load::run_workload(c.base_url, c.work.clone(), connections, duration).await);
            }
        }
    }
    series
}

/// The median over rounds of `more`'s throughput as a share of `fewer`'s in the same
/// round: how throughput holds as clients are added, from rounds measured side by side.
pub fn per_round_share(more: &Series, fewer: &Series) -> f64 {
    let shares: Vec<f64> = more.rps().iter().zip(fewer.rps()).map(|(m, f)| m / f).collect();
    median(&shares)
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

pub fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Three decimals: enough for a ratio, short enough to read in JSON.
pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rps: &[u64]) -> Series {
        let rounds = rps
            .iter()
            .map(|&requests| Measured {
                requests,
                errors: 0,
                elapsed: Duration::from_secs(1),
                histogram: hdrhistogram::Histogram::new(3).expect("histogram"),
            })
            .collect();
        Series {
            name: "s".into(),
            rounds,
        }
    }

    #[test]
    fn a_round_that_slowed_both_counts_does_not_count_against_the_larger() {
        // The first round ran on a machine slowed for both counts, the third caught the
        // larger count stalling. Each count's median alone gives 60 ÷ 100; side by
        // side, the rounds say 95 %.
        let fewer = series(&[60, 100, 100]);
        let more = series(&[57, 96, 60]);
        assert_eq!(more.median_rps() / fewer.median_rps(), 0.6);
        assert_eq!(per_round_share(&more, &fewer), 0.95);
    }
}
