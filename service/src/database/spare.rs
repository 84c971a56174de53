//! Connections a request finished with cleanly, handed to the next request without
//! sqlx's release ping.
//!
//! Why: sqlx pings every connection it takes back (a Sync/ReadyForQuery round trip
//! that flushes whatever a cancelled future left on the wire), and a connection held
//! through that round trip is neither in use nor idle. Bench P2 measured it with sqlx
//! patched to skip the ping: the detail went from 0.59× the hand-written baseline to
//! 0.65× at 16 clients, and from 0.51× to 0.67× at 64, where the pool runs dry and
//! every request waits for a ping to finish (docs/performance.md). A connection whose
//! every statement ran to completion has nothing to flush, so a request that ends
//! cleanly leaves it here, and the next request's first statement takes it.
//!
//! sqlx's pool stays the one pool, and its waiters (background work, a write whose
//! request held no connection there, requests that found nothing here) are never
//! starved by it:
//! - a connection waits here at most [`KEEP`]; then it goes back to sqlx, with its
//!   ping (a task on the runtime that made the `Spare` sweeps, so `Pool::close` never
//!   waits on a request's runtime that has stopped);
//! - a request of ours that waits for a connection gets one before anything is kept
//!   for a request yet to come, and it waits in Bookworm's queue, not in sqlx's as
//!   well: waiting in both cost each waiter sqlx's acquire (a 4 KiB future, boxed, a
//!   place in its semaphore and a timer) that a hand-over then threw away, and at 64
//!   clients 86 % of requests are handed over. Waiting in one raised the detail from
//!   0.74×–0.77× to 0.79×–0.81× of the baseline at 64 clients, and took its p99 from
//!   1.70×–1.91× the baseline's to 1.50×–1.70× (docs/performance.md);
//! - while the pool is exhausted (no idle connection, no room to open one), nothing is
//!   kept, and one clean connection in [`TO_SQLX_ONE_IN`] goes back to sqlx, whose
//!   queue holds everyone else (background work, a write begun outside a request). Our
//!   longest-waiting request joins that queue, staying in ours, so sqlx serves it next
//!   if a hand-over does not come first; the same when a request finds an idle
//!   connection while others of ours wait (unless as many of ours wait in sqlx's
//!   queue as it has idle connections: at 64 clients a waiting request used to be
//!   sent there by every request that arrived while one connection sat idle, 0.54
//!   wake-ups per request for 0.08 releases to sqlx), and when a request has waited
//!   [`STRANDED`], for a connection that went back to sqlx without passing here. The
//!   rest go straight to a waiting request of ours;
//! - a request that finds room in the pool, or an idle connection and nobody of ours
//!   waiting, goes to sqlx's queue alone; while it waits, connections given back
//!   while the pool is exhausted go there, so the longest-waiting goes first
//!   whichever way a connection comes;
//! - a connection that failed for any reason but its SQL goes back to sqlx as before,
//!   and one whose statement was dropped half way is closed (see `pinned`);
//! - a connection from before the primary was lost or moved (a failover) is never
//!   kept or taken, nor does it carry a write transaction (`transaction.rs`): each
//!   carries the pool's epoch from before it left sqlx, whose `before_acquire` check
//!   waits for the new primary and discards connections to a former one, and the
//!   follower starts a new epoch when it finds no writable host and when it moves
//!   the pool ([`Spare::primary_changed`]), which also sends the requests waiting
//!   here to sqlx's queue, where that check runs.
//!
//! A finishing request hands its connection to the longest-waiting request on its own
//! worker thread if there is one, else to the longest-waiting anywhere: strict order
//! across the two actix workers woke the other worker for each hand-over and cost the
//! detail 0.63× → 0.55× at 64 clients, for the same p99 (docs/performance.md).
//!
//! Both backends: on SQLite the ping is not a network round trip but a message to the
//! connection's worker thread and back, two thread switches. Rejected: keeping
//! connections for longer (a second pool, whose connections sqlx's waiters cannot
//! see), and patching sqlx to skip the ping (a fork to keep up with; sqlx issue 1129
//! discussed it upstream).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, Pool, Postgres, Sqlite};
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::oneshot;

/// How long a clean connection waits here for the next request before it goes back to
/// sqlx. Under load the next request comes within a millisecond; an idle instance
/// gives its connections back, pinged, a moment after its last request.
const KEEP: Duration = Duration::from_millis(50);

/// While the pool is exhausted, one clean connection in this many goes back to sqlx,
/// pinged, instead of straight to a waiting request of ours: whoever heads sqlx's
/// queue and is not ours (background work, a write begun outside a request) is served within
/// this many releases. Every other one (2) cost the detail 0.03× at 64 clients.
const TO_SQLX_ONE_IN: u64 = 8;

/// How long a request waits for a hand-over alone before it joins sqlx's queue too: a
/// connection that went back to sqlx for a reason `give` never saw (an error, a close,
/// background work) reaches a waiting request of ours this way. The sweeper sends it,
/// so it joins between this and this plus [`KEEP`]. A timer per waiting request was
/// rejected: registering one earlier than its worker's next wake-up writes to the
/// worker's eventfd, and at 64 clients that was over a quarter of the API's
/// cross-thread wake-ups (docs/performance.md, "No timer per waiting request").
const STRANDED: Duration = Duration::from_millis(100);

/// One pool's kept connections and the requests waiting for one. Cloning it shares
/// them.
#[derive(Clone)]
pub enum Spare {
    Postgres(Arc<Keeper<Postgres>>),
    Sqlite(Arc<Keeper<Sqlite>>),
}

impl Spare {
    /// The spare connections of `db`'s pool.
    pub fn for_pool(db: &DatabaseConnection) -> Self {
        match db.get_database_backend() {
            DbBackend::Sqlite => Spare::Sqlite(Keeper::new(db.get_sqlite_connection_pool().clone())),
            _ => Spare::Postgres(Keeper::new(db.get_postgres_connection_pool().clone())),
        }
    }

    /// How many connections are kept now.
    pub fn kept(&self) -> usize {
        match self {
            Spare::Postgres(keeper) => keeper.kept(),
            Spare::Sqlite(keeper) => keeper.kept(),
        }
    }

    /// How many requests wait for a connection to be handed over now.
    pub fn waiting(&self) -> usize {
        match self {
            Spare::Postgres(keeper) => keeper.waiting(),
            Spare::Sqlite(keeper) => keeper.waiting(),
        }
    }

    /// The pool lost its primary or moved to another: what is kept is discarded, and
    /// connections checked out before now are not kept when they come back.
    pub fn primary_changed(&self) {
        match self {
            Spare::Postgres(keeper) => keeper.primary_changed(),
            Spare::Sqlite(keeper) => keeper.primary_changed(),
        }
    }

    /// Whether these are the spare connections of `db`'s pool. Clones of a sqlx pool
    /// share one set of options, so its address names the pool.
    pub fn serves(&self, db: &DatabaseConnection) -> bool {
        match (self, db.get_database_backend()) {
            (Spare::Postgres(keeper), DbBackend::Postgres) => {
                std::ptr::eq(keeper.pool.options(), db.get_postgres_connection_pool().options())
            }
            (Spare::Sqlite(keeper), DbBackend::Sqlite) => {
                std::ptr::eq(keeper.pool.options(), db.get_sqlite_connection_pool().options())
            }
            _ => false,
        }
    }

    /// Whether a connection checked out at `epoch` is still on the pool's primary.
    pub(super) fn is_current(&self, epoch: u64) -> bool {
        match self {
            Spare::Postgres(keeper) => keeper.epoch.load(Ordering::SeqCst) == epoch,
            Spare::Sqlite(keeper) => keeper.epoch.load(Ordering::SeqCst) == epoch,
        }
    }

    /// Whether both are the spares of one pool.
    pub fn same_pool(&self, other: &Spare) -> bool {
        match (self, other) {
            (Spare::Postgres(a), Spare::Postgres(b)) => Arc::ptr_eq(a, b),
            (Spare::Sqlite(a), Spare::Sqlite(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The kept connections of one pool of database `DB`.
pub struct Keeper<DB: sqlx::Database> {
    pool: Pool<DB>,
    state: Mutex<State<DB>>,
    /// Counts the clean connections given back while the pool was exhausted, to send
    /// one in [`TO_SQLX_ONE_IN`] to sqlx.
    exhausted_gives: AtomicU64,
    /// Requests of ours waiting in sqlx's queue only.
    waiting_on_sqlx: AtomicUsize,
    /// How many times the pool has lost its primary or moved to another.
    epoch: AtomicU64,
    /// Where the sweeper runs: the runtime that made this `Spare`, which outlives the
    /// request workers. It runs while connections are kept or requests wait.
    runtime: Option<tokio::runtime::Handle>,
}

struct State<DB: sqlx::Database> {
    kept: Vec<Kept<DB>>,
    waiting: VecDeque<Waiter<DB>>,
    sweeping: bool,
}

/// A request waiting for a connection, the thread it waits on, and since when.
struct Waiter<DB: sqlx::Database> {
    thread: std::thread::ThreadId,
    since: Instant,
    handed: oneshot::Sender<PoolConnection<DB>>,
    /// Sent (or dropped) to have it wait in sqlx's queue as well.
    join: Option<oneshot::Sender<()>>,
}

impl<DB: sqlx::Database> State<DB> {
    /// Has the longest-waiting request of ours that waits here alone wait in sqlx's
    /// queue as well, where a connection is going.
    fn send_oldest_to_sqlx(&mut self) {
        let oldest = self
            .waiting
            .iter_mut()
            .find(|waiter| waiter.join.is_some() && !waiter.handed.is_closed());
        if let Some(join) = oldest.and_then(|waiter| waiter.join.take()) {
            let _ = join.send(());
        }
    }

    /// A request found `idle` connections in sqlx's pool while requests of ours wait
    /// here: the longest-waiting joins sqlx's queue to take one, unless as many of ours
    /// wait there already. Until the first takes it, a connection stays idle for a
    /// moment in which every arriving request sees it; one of ours sent there for each
    /// would wait in both queues for nothing, and be woken by both.
    fn share_idle(&mut self, idle: usize) {
        let sent = self
            .waiting
            .iter()
            .filter(|waiter| waiter.join.is_none() && !waiter.handed.is_closed())
            .count();
        if sent < idle {
            self.send_oldest_to_sqlx();
        }
    }

    /// Has every request of ours that has waited here alone for [`STRANDED`] wait in
    /// sqlx's queue as well.
    fn send_stranded_to_sqlx(&mut self) {
        self.waiting.retain(|waiter| !waiter.handed.is_closed());
        for waiter in &mut self.waiting {
            if waiter.since.elapsed() >= STRANDED
                && let Some(join) = waiter.join.take()
            {
                let _ = join.send(());
            }
        }
    }
}

struct Kept<DB: sqlx::Database> {
    conn: PoolConnection<DB>,
    epoch: u64,
    since: Instant,
}

impl<DB: sqlx::Database> Keeper<DB> {
    fn new(pool: Pool<DB>) -> Arc<Self> {
        Arc::new(Keeper {
            pool,
            state: Mutex::new(State {
                kept: Vec::new(),
                waiting: VecDeque::new(),
                sweeping: false,
            }),
            exhausted_gives: AtomicU64::new(0),
            waiting_on_sqlx: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State<DB>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kept(&self) -> usize {
        self.state().kept.len()
    }

    fn waiting(&self) -> usize {
        self.state()
            .waiting
            .iter()
            .filter(|waiter| !waiter.handed.is_closed())
            .count()
    }

    fn primary_changed(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let (stale, waiting) = {
            let mut state = self.state();
            (std::mem::take(&mut state.kept), std::mem::take(&mut state.waiting))
        };
        drop(stale);
        // Whoever waits, waits for the new primary in sqlx's queue (dropping its
        // place here sends it there).
        drop(waiting);
    }

    /// A connection for a request, with the epoch to give it back with: a kept one (the
    /// newest), else whatever [`Keeper::wait`] finds.
    pub(super) async fn acquire(self: &Arc<Self>) -> Result<(PoolConnection<DB>, u64), sqlx::Error> {
        // Read before checking out: a move after this makes the connection stale.
        let epoch = self.epoch.load(Ordering::SeqCst);
        let (found, stale) = {
            let mut state = self.state();
            let mut stale = Vec::new();
            let mut found = None;
            while let Some(kept) = state.kept.pop() {
                if kept.epoch == epoch && kept.since.elapsed() < KEEP {
                    found = Some(kept.conn);
                    break;
                }
                stale.push(kept);
            }
            (found, stale)
        };
        drop(stale);
        if let Some(conn) = found {
            return Ok((conn, epoch));
        }
        // The wait for a hand-over holds a timer and two channels. Boxed here, where it
        // is needed, this future is 72 bytes instead of 280; every statement's future
        // holds it, and is moved and then boxed by SeaORM's `async_trait` whole (with
        // sqlx's acquire inline it was 4,192 bytes, and a detail request spent 13,500
        // instructions copying it: callgrind, 215,300 instructions instead of 229,500).
        Ok((Box::pin(self.wait()).await?, epoch))
    }

    /// A connection when none is kept: an idle one or one opened for it, from sqlx;
    /// else one a finishing request hands over, or sqlx's when this request is sent
    /// there.
    async fn wait(self: &Arc<Self>) -> Result<PoolConnection<DB>, sqlx::Error> {
        let pool = &self.pool;
        // An idle one, or room to open one: sqlx's (racing a hand-over against an
        // opening would abandon connections half opened, and PostgreSQL forks a backend
        // for each). Such a request is counted until it has one: the connections given
        // back meanwhile go to sqlx, whose queue it may wait in (see `give`). An idle
        // one while requests of ours wait is theirs: the longest-waiting goes for it,
        // unless one of ours already goes for each idle one.
        let queued = {
            let mut state = self.state();
            let idle = pool.num_idle();
            if has_room(pool) || (idle > 0 && state.waiting.is_empty()) {
                None
            } else {
                if idle > 0 {
                    state.share_idle(idle);
                }
                let (handed, receiver) = oneshot::channel();
                let (join, joined) = oneshot::channel();
                state.waiting.retain(|waiter| !waiter.handed.is_closed());
                state.waiting.push_back(Waiter {
                    thread: std::thread::current().id(),
                    since: Instant::now(),
                    handed,
                    join: Some(join),
                });
                self.start_sweeping(&mut state);
                Some((receiver, joined))
            }
        };
        // sqlx's acquire holds a whole connection attempt, 4 KiB: boxed only where it
        // is taken, so that a request handed its connection never allocates and copies
        // it (at 64 clients most requests are).
        let Some((mut receiver, mut joined)) = queued else {
            let _waiting = Counted::new(&self.waiting_on_sqlx);
            return Box::pin(pool.acquire()).await;
        };
        let still_here = tokio::select! {
            biased;
            handed = &mut receiver => match handed {
                Ok(conn) => return Ok(conn),
                // Its place here was dropped (the primary changed).
                Err(_) => false,
            },
            _ = &mut joined => true,
        };
        // Now in sqlx's queue too, and served by whichever comes first.
        tokio::select! {
            biased;
            Ok(conn) = receiver, if still_here => Ok(conn),
            from_sqlx = Box::pin(pool.acquire()) => from_sqlx,
        }
    }

    /// Takes back a connection whose statements all ran to completion, checked out at
    /// `epoch`.
    pub(super) fn give(self: &Arc<Self>, conn: PoolConnection<DB>, epoch: u64) {
        let pool = &self.pool;
        if epoch != self.epoch.load(Ordering::SeqCst) || pool.is_closed() {
            return;
        }
        if exhausted(pool) {
            // A request of ours waiting in sqlx's queue alone (it found room or an
            // idle connection) came before any that waits here: sqlx serves it.
            if self.waiting_on_sqlx.load(Ordering::SeqCst) > 0 {
                return;
            }
            // Whoever heads sqlx's queue and is not ours (background work, a write begun
            // outside a request) is served within this many releases, and our
            // longest-waiting request joins that queue to be served next.
            if self
                .exhausted_gives
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(TO_SQLX_ONE_IN)
            {
                self.state().send_oldest_to_sqlx();
                return;
            }
            drop(self.hand_over(conn));
            return;
        }
        // A request still waiting came before whichever request would take it from
        // here: it goes first.
        let Some(conn) = self.hand_over(conn) else { return };
        let mut state = self.state();
        state.kept.push(Kept {
            conn,
            epoch,
            since: Instant::now(),
        });
        self.start_sweeping(&mut state);
    }

    fn start_sweeping(self: &Arc<Self>, state: &mut State<DB>) {
        if !state.sweeping {
            state.sweeping = true;
            let sweeper = self.clone().sweep();
            match &self.runtime {
                Some(runtime) => drop(runtime.spawn(sweeper)),
                None => drop(tokio::spawn(sweeper)),
            }
        }
    }

    /// To the longest-waiting request on this thread that still waits, else the
    /// longest-waiting one anywhere; the connection back if none does. Staying on the
    /// thread spares a wake-up of another worker.
    fn hand_over(&self, mut conn: PoolConnection<DB>) -> Option<PoolConnection<DB>> {
        let here = std::thread::current().id();
        loop {
            let waiter = {
                let mut state = self.state();
                match state
                    .waiting
                    .iter()
                    .position(|w| w.thread == here && !w.handed.is_closed())
                {
                    Some(at) => state.waiting.remove(at),
                    None => state.waiting.pop_front(),
                }
            };
            let Some(waiter) = waiter else {
                return Some(conn);
            };
            match waiter.handed.send(conn) {
                Ok(()) => return None,
                Err(back) => conn = back,
            }
        }
    }

    /// Every [`KEEP`], gives back to sqlx every connection kept that long and sends
    /// requests stranded here to sqlx's queue, until nothing is kept and nobody waits.
    async fn sweep(self: Arc<Self>) {
        loop {
            tokio::time::sleep(KEEP).await;
            let (stale, done) = {
                let mut state = self.state();
                let (stale, fresh): (Vec<Kept<DB>>, Vec<Kept<DB>>) =
                    state.kept.drain(..).partition(|kept| kept.since.elapsed() >= KEEP);
                state.kept = fresh;
                state.send_stranded_to_sqlx();
                let done = state.kept.is_empty() && state.waiting.is_empty();
                if done {
                    state.sweeping = false;
                }
                (stale, done)
            };
            drop(stale);
            if done {
                return;
            }
        }
    }
}

/// Counts one while it lives (a request waiting, whether it ends or is dropped).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// No idle connection and no room to open one: sqlx may have waiters.
fn exhausted<DB: sqlx::Database>(pool: &Pool<DB>) -> bool {
    pool.num_idle() == 0 && !has_room(pool)
}

/// Fewer connections open than the pool may hold: sqlx opens one on request.
fn has_room<DB: sqlx::Database>(pool: &Pool<DB>) -> bool {
    pool.size() < pool.options().get_max_connections()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Instant;

    use sea_orm::sqlx::Postgres;
    use sea_orm::sqlx::pool::PoolConnection;
    use sea_orm::sqlx::postgres::PgPoolOptions;
    use tokio::sync::oneshot;

    use super::{Keeper, State, Waiter};

    /// A keeper of a pool that never connects: only its futures' sizes are looked at.
    fn keeper() -> Arc<Keeper<Postgres>> {
        let pool = PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/nothing")
            .unwrap();
        Keeper::new(pool)
    }

    /// Every statement's future holds this one, and is moved and boxed whole: with
    /// sqlx's acquire held inline it was 4,192 bytes, copied several times a request
    /// even when a kept connection made it unnecessary, and 280 with the wait for a
    /// hand-over inline.
    #[tokio::test]
    async fn taking_a_connection_is_a_small_future() {
        let keeper = keeper();
        let size = std::mem::size_of_val(&keeper.acquire());
        assert!(size <= 128, "Keeper::acquire's future: {size} bytes");
    }

    /// The wait for a hand-over is boxed whenever a request finds no kept connection,
    /// which at 64 clients is most requests: with sqlx's acquire inline it was a 4 KiB
    /// allocation and copy each time, for the few that go to sqlx.
    #[tokio::test]
    async fn waiting_for_a_hand_over_is_a_small_future() {
        let keeper = keeper();
        let size = std::mem::size_of_val(&keeper.wait());
        assert!(size <= 512, "Keeper::wait's future: {size} bytes");
    }

    /// Requests waiting for a hand-over, as `wait` queues them: each one's place, and
    /// the channel that says it was sent to sqlx's queue.
    struct Queue {
        state: State<Postgres>,
        places: Vec<Option<oneshot::Receiver<PoolConnection<Postgres>>>>,
        joined: Vec<oneshot::Receiver<()>>,
    }

    impl Queue {
        fn of(waiting: usize) -> Self {
            let mut queue = Queue {
                state: State {
                    kept: Vec::new(),
                    waiting: VecDeque::new(),
                    sweeping: false,
                },
                places: Vec::new(),
                joined: Vec::new(),
            };
            for _ in 0..waiting {
                let (handed, place) = oneshot::channel();
                let (join, joined) = oneshot::channel();
                queue.state.waiting.push_back(Waiter {
                    thread: std::thread::current().id(),
                    since: Instant::now(),
                    handed,
                    join: Some(join),
                });
                queue.places.push(Some(place));
                queue.joined.push(joined);
            }
            queue
        }

        /// Which requests have been sent to sqlx's queue so far.
        fn sent_to_sqlx(&mut self) -> Vec<usize> {
            (0..self.joined.len())
                .filter(|&at| !matches!(self.joined[at].try_recv(), Err(oneshot::error::TryRecvError::Empty)))
                .collect()
        }

        /// Request `at` got its connection from sqlx's queue.
        fn served(&mut self, at: usize) {
            self.places[at] = None;
        }
    }

    /// A connection idle in sqlx's pool while requests of ours wait is taken by the
    /// longest-waiting of them, which joins sqlx's queue for it. Every request that
    /// arrives before it is taken sees it idle: each of them used to send another of
    /// ours there, to wait in both queues for a connection already spoken for.
    #[test]
    fn an_idle_connection_sends_one_waiting_request_to_sqlx_however_many_see_it() {
        let mut queue = Queue::of(5);
        for _arriving in 0..3 {
            queue.state.share_idle(1);
        }
        assert_eq!(queue.sent_to_sqlx(), [0], "one idle connection, one request sent");

        queue.served(0);
        queue.state.share_idle(1);
        assert_eq!(
            queue.sent_to_sqlx(),
            [0, 1],
            "the next idle one goes to the next request"
        );

        for _arriving in 0..3 {
            queue.state.share_idle(3);
        }
        assert_eq!(
            queue.sent_to_sqlx(),
            [0, 1, 2, 3],
            "three idle connections, three of ours in sqlx's queue"
        );
    }
}
