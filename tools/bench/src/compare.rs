//! Side-by-side measurement: contenders take turns (A, B, A, B, …) so drift in the
//! machine — another process, thermal throttling, the page cache — lands on all of
//! them alike, and each figure is the median of its rounds with the spread shown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::load::{self, Measured};

/// One server under test and what it is asked for.
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
    for c in contenders {
        load::run_workload(c.base_url, c.work.clone(), connections, duration / 4).await;
    }
    let mut series: Vec<Series> = contenders
        .iter()
        .map(|c| Series {
            name: c.name.to_owned(),
            rounds: Vec::new(),
        })
        .collect();
    for _ in 0..rounds {
        for (c, s) in contenders.iter().zip(series.iter_mut()) {
            s.rounds
                .push(load::run_workload(c.base_url, c.work.clone(), connections, duration).await);
        }
    }
    series
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
