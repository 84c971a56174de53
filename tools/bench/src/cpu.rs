//! Where a soak's CPU goes (`--soak`): the CPU time each part of the stack spent per
//! request, read from Linux's `/proc` (each thread's `schedstat`, in nanoseconds).
//!
//! Throughput on a shared 2-core machine moves by a quarter between runs of the same
//! build; CPU time per request moves far less, so it is the figure to compare two
//! builds with. The parts: the server's own threads (the API process, or the
//! baseline's actix workers in this process), PostgreSQL's processes, and this
//! process's load generator. Off Linux, or with PostgreSQL on another machine, a part
//! reads as zero.

use std::path::Path;
use std::time::Duration;

/// CPU time so far, in nanoseconds, of each part.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// The API process, all its threads.
    api: u64,
    /// This process's actix workers: the baseline server.
    baseline: u64,
    /// This process's other threads: the load generator.
    load: u64,
    /// Every process named `postgres`.
    postgres: u64,
    /// The machine's busy and idle time (`/proc/stat`, in clock ticks).
    busy_ticks: u64,
    idle_ticks: u64,
}

impl Sample {
    pub fn now(api_pid: u32) -> Self {
        let (baseline, load) =
            threads(Path::new("/proc/self"))
                .into_iter()
                .fold((0, 0), |(baseline, load), (name, ns)| {
                    if name.starts_with("actix-server") {
                        (baseline + ns, load)
                    } else {
                        (baseline, load + ns)
                    }
                });
        let (busy_ticks, idle_ticks) = machine();
        Sample {
            api: process(&Path::new("/proc").join(api_pid.to_string())),
            baseline,
            load,
            postgres: postgres(),
            busy_ticks,
            idle_ticks,
        }
    }

    /// CPU per request between `self` and a later sample, `requests` served in between.
    pub fn per_request(&self, later: &Sample, requests: u64) -> String {
        let per = |a: u64, b: u64| Duration::from_nanos(b.saturating_sub(a) / requests.max(1)).as_secs_f64() * 1e6;
        let busy = later.busy_ticks.saturating_sub(self.busy_ticks) as f64;
        let idle = later.idle_ticks.saturating_sub(self.idle_ticks) as f64;
        format!(
            "CPU per request: API {:.0} µs, baseline server {:.0} µs, PostgreSQL {:.0} µs, load generator {:.0} µs; machine {:.0} % busy",
            per(self.api, later.api),
            per(self.baseline, later.baseline),
            per(self.postgres, later.postgres),
            per(self.load, later.load),
            100.0 * busy / (busy + idle).max(1.0),
        )
    }
}

/// Each thread of a process: its name and its CPU time.
fn threads(process: &Path) -> Vec<(String, u64)> {
    let Ok(tasks) = std::fs::read_dir(process.join("task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            (name.trim().to_owned(), schedstat(&task.path()))
        })
        .collect()
}

fn process(process: &Path) -> u64 {
    threads(process).iter().map(|(_, ns)| ns).sum()
}

/// The first field of `schedstat`: time spent on a CPU, in nanoseconds.
fn schedstat(task: &Path) -> u64 {
    std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn postgres() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|e| process(&e.path()))
        .sum()
}

/// Busy (user, nice, system, irq, softirq, steal) and idle (idle, iowait) ticks of
/// every CPU.
fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7), at(3) + at(4))
}
