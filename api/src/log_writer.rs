//! Where log lines go: appended to a buffer in memory, which one thread writes out
//! to standard error in batches, at most [`LINGER`] after the first line of a batch.
//!
//! Why not write from the request's worker: a worker that writes its own line waits
//! on the pipe, and that wait was a measurable share of each request. Why not
//! tracing-appender's non-blocking writer, used before: its thread takes lines one at
//! a time from a channel, writes each alone and spins on `sched_yield` between them,
//! so under load it competed with the workers and PostgreSQL's backends for the cores
//! (on two, it was preempted 440 times a second: docs/performance.md, "The detail in
//! one row, the log in batches"). Here a worker only takes a lock and copies its
//! line, and the thread is woken once per batch.
//!
//! Nothing is dropped: when the writer falls behind (standard error blocked) and the
//! buffer reaches its capacity, loggers wait for it, as tracing-appender's lossless
//! mode did. Dropping the [`Flush`] guard writes what is left, waiting at most
//! [`FLUSH_TIMEOUT`] so that a blocked standard error cannot hold up the process's
//! exit; a line logged after that goes straight to standard error.

use std::io::Write;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the first line of a batch may wait for the lines that follow it.
pub const LINGER: Duration = Duration::from_millis(5);
/// How long dropping [`Flush`] waits for the last lines to be written.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Buffered bytes at which loggers wait for the writer instead of adding more.
pub const CAPACITY: usize = 16 * 1024 * 1024;
/// Buffered bytes at which the writer starts at once instead of lingering.
const EAGER: usize = 256 * 1024;

/// The `MakeWriter` for tracing-subscriber's fmt layer: each line is one `write`.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes what is still buffered, and stops the writer thread, when dropped.
#[must_use = "dropping the guard stops the log writer"]
pub struct Flush {
    shared: Arc<Shared>,
    /// Disconnected when the writer thread ends.
    finished: Receiver<()>,
}

struct Shared {
    state: Mutex<State>,
    capacity: usize,
    /// [`EAGER`], or half the capacity when that is less.
    eager: usize,
    /// Signalled when the buffer gets its first line, grows past `eager`, or closes.
    lines_waiting: Condvar,
    /// Signalled when the writer has taken the buffer.
    taken: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A logger that panicked mid-copy leaves whole lines behind: carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the writer thread, writing to `out`; loggers wait once `capacity` bytes are
/// buffered.
pub fn start(out: impl Write + Send + 'static, capacity: usize) -> (LogWriter, Flush) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        capacity,
        eager: EAGER.min(capacity / 2),
        lines_waiting: Condvar::new(),
        taken: Condvar::new(),
    });
    let writer = Arc::clone(&shared);
    let (running, finished) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let _running = running;
            write_batches(&writer, out);
        })
        .expect("the log writer thread starts");
    (
        LogWriter {
            shared: Arc::clone(&shared),
        },
        Flush { shared, finished },
    )
}

fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared
            .lines_waiting
            .wait_while(shared.lock(), |s| s.lines.is_empty() && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        if !state.closed {
            state = shared
                .lines_waiting
                .wait_timeout_while(state, LINGER, |s| s.lines.len() < shared.eager && !s.closed)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut batch, &mut state.lines);
        let closed = state.closed;
        drop(state);
        shared.taken.notify_all();
        // Standard error gone (a closed pipe) leaves nowhere to report it: the lines
        // are dropped rather than blocking every logger.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if closed && shared.lock().lines.is_empty() {
            return;
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.lines_waiting.notify_all();
        let _ = self.finished.recv_timeout(FLUSH_TIMEOUT);
    }
}

/// One line being logged.
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = self.0;
        let mut state = shared
            .taken
            .wait_while(shared.lock(), |s| s.lines.len() >= shared.capacity && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            drop(state);
            return std::io::stderr().write(line);
        }
        let was_empty = state.lines.is_empty();
        state.lines.extend_from_slice(line);
        let eager = state.lines.len() >= shared.eager;
        drop(state);
        if was_empty || eager {
            shared.lines_waiting.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// A sink that keeps what it is given and counts the batches.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        batches: Arc<AtomicUsize>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.batches.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl Sink {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.bytes.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn log(writer: &LogWriter, line: &str) {
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn every_line_from_every_thread_arrives_whole_and_in_its_threads_order() {
        let sink = Sink::default();
        let (writer, flush) = start(sink.clone(), CAPACITY);
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let writer = writer.clone();
                scope.spawn(move || {
                    for n in 0..2_000 {
                        log(&writer, &format!("thread {thread} line {n} {}\n", "x".repeat(n % 97)));
                    }
                });
            }
        });
        drop(flush);
        let lines = sink.lines();
        assert_eq!(lines.len(), 16_000);
        for thread in 0..8 {
            let prefix = format!("thread {thread} line ");
            let numbers: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(|rest| {
                    let (n, xs) = rest.split_once(' ').unwrap();
                    let n: usize = n.parse().unwrap();
                    assert_eq!(xs.len(), n % 97, "line {n} of thread {thread} is whole");
                    n
                })
                .collect();
            assert_eq!(numbers, (0..2_000).collect::<Vec<_>>(), "thread {thread}");
        }
    }

    #[test]
    fn a_burst_of_lines_leaves_in_a_few_batches() {
        let sink = Sink::default();
        let (writer, flush) = start(sink.clone(), CAPACITY);
        for n in 0..1_000 {
            log(&writer, &format!("line {n}\n"));
        }
        drop(flush);
        assert_eq!(sink.lines().len(), 1_000);
        let batches = sink.batches.load(Ordering::SeqCst);
        assert!(batches <= 10, "1,000 lines took {batches} batches");
    }

    #[test]
    fn a_quiet_line_leaves_without_waiting_for_more() {
        let sink = Sink::default();
        let (writer, _flush) = start(sink.clone(), CAPACITY);
        log(&writer, "alone\n");
        wait_until("the line is written", || sink.lines() == ["alone"]);
    }

    /// A sink whose writes wait until the test lets them through.
    struct Blocked {
        inner: Sink,
        gate: mpsc::Receiver<()>,
    }

    impl Write for Blocked {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.gate.recv().ok();
            self.inner.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn a_blocked_standard_error_holds_up_the_exit_for_a_second_at_most() {
        let (_never_opened, gate) = mpsc::channel();
        let (writer, flush) = start(
            Blocked {
                inner: Sink::default(),
                gate,
            },
            CAPACITY,
        );
        log(&writer, "stuck\n");
        let started = Instant::now();
        drop(flush);
        let waited = started.elapsed();
        assert!(
            waited >= FLUSH_TIMEOUT && waited < FLUSH_TIMEOUT * 5,
            "dropping the guard took {waited:?}"
        );
    }

    #[test]
    fn a_full_buffer_makes_loggers_wait_rather_than_drop_lines() {
        let sink = Sink::default();
        let (open, gate) = mpsc::channel();
        let (writer, flush) = start(
            Blocked {
                inner: sink.clone(),
                gate,
            },
            64,
        );
        let logged = Arc::new(AtomicUsize::new(0));
        let logger = {
            let (writer, logged) = (writer.clone(), Arc::clone(&logged));
            std::thread::spawn(move || {
                for n in 0..100 {
                    log(&writer, &format!("line {n:03}\n"));
                    logged.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // The writer holds its first batch (at most 64 bytes: eight 9-byte lines) at
        // the gate; the buffer behind it fills to 64 bytes (eight more) and the logger
        // waits. Given time to run on, it must not.
        wait_until("the buffer fills", || logged.load(Ordering::SeqCst) >= 8);
        std::thread::sleep(Duration::from_millis(50));
        let before_the_gate_opens = logged.load(Ordering::SeqCst);
        assert!(
            before_the_gate_opens <= 16,
            "{before_the_gate_opens} lines logged past a full buffer"
        );
        for _ in 0..1_000 {
            let _ = open.send(());
        }
        logger.join().unwrap();
        drop(open);
        drop(flush);
        let expected: Vec<String> = (0..100).map(|n| format!("line {n:03}")).collect();
        assert_eq!(sink.lines(), expected);
    }
}
