//! The connections behind [`super::SqliteStore`]: one *writer thread* that owns the only writing
//! connection and commits in groups, a small pool of *reader connections* used directly by the
//! calling task, and the settings every connection gets.
//!
//! Group commit: callers send write jobs over a channel; the writer thread takes everything that is
//! queued (up to [`MAX_BATCH`]), runs it inside one `BEGIN IMMEDIATE … COMMIT` and only then hands
//! each job its result, so a caller is acknowledged after its write is committed (WAL with
//! `synchronous=NORMAL`: it survives a process crash). A failing statement is rolled back on its
//! own (SQLite statement atomicity) and reported to its caller only; jobs of several statements
//! run inside a savepoint. If the transaction itself fails, every job of the batch gets the error.
//!
//! Reads are jobs of the writer thread too: in WAL mode a second connection must drop its whole page
//! cache whenever another connection committed, so with a steady stream of writes every read on a
//! reader connection re-reads its pages from the file (measured: more CPU per turn than the
//! hand-over to the writer thread). A batch of reads only starts a deferred transaction. Reads that
//! may be megabytes (attachment bytes) use [`Readers`], pooled reader connections, from the
//! blocking pool; WAL readers never wait for the writer.
//!
//! Failing storage: errors that mean the file cannot be written (full disk, read-only file or file
//! system, I/O error) become [`StoreError::Unwritable`], and every write's outcome is noted in a
//! [`WriteHealth`] for health checks. After such a failure the writer thread reopens its connection
//! before the next batch (at most once per [`REOPEN_INTERVAL`]): a connection SQLite opened read-only,
//! or one left in a bad state by an I/O error, would otherwise keep failing after the cause is gone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chatkit::store::{StoreError, StoreResult, UnwritableReason};
use rusqlite::{Connection, ErrorCode, MAIN_DB, OpenFlags};
use tokio::sync::oneshot;

use super::checkpoint::Checkpoints;
use super::migrate::migrate;
use crate::write_health::WriteHealth;

/// Most jobs committed in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 64;

/// Least time between two attempts to reopen the writer connection after a failed write.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// Maps a SQLite error to [`StoreError::Unwritable`] when it means the file cannot be written, else to
/// [`StoreError::Database`] naming the operation.
pub(crate) fn sq_err(op: &str, e: rusqlite::Error) -> StoreError {
    match unwritable_reason(&e) {
        Some(reason) => {
            tracing::debug!(op, error = %e, "SQLite cannot write");
            StoreError::Unwritable(reason)
        }
        None => StoreError::Database(format!("{op}: {e}")),
    }
}

/// Whether `e` says the database file cannot be written, and why. SQLite reports `ENOSPC` as
/// `SQLITE_FULL`, a read-only file, folder or mount as `SQLITE_READONLY` (or, when it cannot create its
/// journal files, `SQLITE_CANTOPEN`), other failed writes as `SQLITE_IOERR`.
fn unwritable_reason(e: &rusqlite::Error) -> Option<UnwritableReason> {
    match e.sqlite_error_code()? {
        ErrorCode::DiskFull => Some(UnwritableReason::DiskFull),
        ErrorCode::ReadOnly | ErrorCode::CannotOpen => Some(UnwritableReason::ReadOnly),
        ErrorCode::SystemIoFailure => Some(UnwritableReason::IoError),
        _ => None,
    }
}

fn closed(op: &str) -> StoreError {
    StoreError::Database(format!("{op}: the store is closed"))
}

/// Settings every connection gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnSettings {
    pub(crate) busy_timeout: Duration,
}

fn configure(conn: &Connection, settings: ConnSettings, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(settings.busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if writer {
        // `journal_mode` is stored in the file; readers inherit it.
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

/// Opens the writing connection of `path` (`None` = a private in-memory database). SQLite quietly
/// opens a file it may not write read-only; that is refused here, as a write would be.
fn open_writer(path: Option<&Path>, settings: ConnSettings) -> StoreResult<Connection> {
    let conn = match path {
        Some(p) => Connection::open_with_flags(
            p,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| sq_err("open", e))?;
    configure(&conn, settings, path.is_some()).map_err(|e| sq_err("connection settings", e))?;
    if conn.is_readonly(MAIN_DB).map_err(|e| sq_err("open", e))? {
        return Err(StoreError::Unwritable(UnwritableReason::ReadOnly));
    }
    Ok(conn)
}

/// Opens another connection to an existing database file (readers, the checkpointer).
pub(crate) fn open_existing(path: &Path, settings: ConnSettings) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    configure(&conn, settings, false)?;
    Ok(conn)
}

/// A unit of work for the writer thread: run inside the batch transaction, then told how the
/// transaction ended.
trait Job: Send {
    /// Whether the job may write (a batch of reads only starts a deferred transaction).
    fn writes(&self) -> bool;
    /// Runs the job's statements.
    fn run(&mut self, conn: &Connection);
    /// Why the job's own statements could not write, if that is how they failed.
    fn unwritable(&self) -> Option<UnwritableReason>;
    /// Delivers the result: the job's own one when the batch committed, else the batch error.
    fn finish(self: Box<Self>, batch: Result<(), &BatchFailure>);
}

/// Why a whole batch failed: the text for the log and, when storage refused the write, why.
struct BatchFailure {
    message: String,
    unwritable: Option<UnwritableReason>,
}

impl BatchFailure {
    fn new(message: String, e: &rusqlite::Error) -> Self {
        BatchFailure { message, unwritable: unwritable_reason(e) }
    }
}

struct Op<T, F> {
    op: &'static str,
    writes: bool,
    work: Option<F>,
    out: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Op<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    fn writes(&self) -> bool {
        self.writes
    }

    fn run(&mut self, conn: &Connection) {
        if let Some(work) = self.work.take() {
            let op = self.op;
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)));
            self.out = Some(match ran {
                Ok(r) => r.map_err(|e| sq_err(op, e)),
                Err(_) => Err(StoreError::Database(format!("{op}: internal error (panic in the SQLite writer)"))),
            });
        }
    }

    fn unwritable(&self) -> Option<UnwritableReason> {
        match &self.out {
            Some(Err(StoreError::Unwritable(reason))) => Some(*reason),
            _ => None,
        }
    }

    fn finish(self: Box<Self>, batch: Result<(), &BatchFailure>) {
        let op = self.op;
        let result = match batch {
            Ok(()) => self.out.unwrap_or_else(|| Err(StoreError::Database(format!("{op}: not executed")))),
            Err(BatchFailure { unwritable: Some(reason), .. }) => Err(StoreError::Unwritable(*reason)),
            Err(failure) => Err(StoreError::Database(format!("{op}: {}", failure.message))),
        };
        let _ = self.reply.send(result);
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Close(oneshot::Sender<()>),
}

/// Handle to the writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    health: Arc<WriteHealth>,
}

impl Writer {
    /// Starts the writer thread: opens (creating) the database, runs the migrations, then serves jobs.
    pub(crate) async fn start(path: Option<PathBuf>, settings: ConnSettings) -> StoreResult<Writer> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let (ready_tx, ready_rx) = oneshot::channel::<StoreResult<()>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let opened = open_writer(path.as_deref(), settings)
                    .and_then(|mut conn| migrate(&mut conn).map(|()| conn))
                    .and_then(|conn| {
                        let checkpoints = match &path {
                            Some(p) => Some(Checkpoints::start(&conn, p.clone(), settings)?),
                            None => None,
                        };
                        Ok((conn, checkpoints))
                    });
                match opened {
                    Ok((conn, checkpoints)) => {
                        let _ = ready_tx.send(Ok(()));
                        let mut conn = WriterConn { conn, path, settings, reopen: None, opened: Instant::now() };
                        let close = writer_loop(&mut conn, &rx, checkpoints.as_ref());
                        // Stop the checkpointer, move the log into the database file, and close the
                        // connection before acknowledging `close`.
                        drop(checkpoints);
                        if close.is_some() {
                            checkpoint_at_close(&conn);
                        }
                        drop(conn);
                        if let Some(ack) = close {
                            let _ = ack.send(());
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the SQLite writer thread: {e}")))?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(Writer { tx: Mutex::new(Some(tx)), health: Arc::default() }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Database("the SQLite writer thread stopped while opening".into())),
        }
    }

    /// Runs `work` in the next group commit and returns its result once committed.
    pub(crate) async fn run<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.submit(op, true, work).await
    }

    /// Runs a read-only `work` in the next batch (its result is delivered after that batch commits,
    /// so it never shows a write that could still be rolled back).
    pub(crate) async fn read<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.submit(op, false, work).await
    }

    async fn submit<T, F>(&self, op: &'static str, writes: bool, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Op { op, writes, work: Some(work), out: None, reply });
        {
            let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            let Some(tx) = guard.as_ref() else {
                return Err(closed(op));
            };
            tx.send(Msg::Job(job)).map_err(|_| closed(op))?;
        }
        let result = rx.await.map_err(|_| closed(op))?;
        if writes {
            self.health.record(&result);
        }
        result
    }

    /// The outcome of a recent write, if any (see [`WriteHealth::recent`]).
    pub(crate) fn recent_write(&self) -> Option<StoreResult<()>> {
        self.health.recent()
    }

    /// Finishes the queued jobs, closes the connection and stops the thread.
    pub(crate) async fn close(&self) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            let (ack, done) = oneshot::channel();
            if tx.send(Msg::Close(ack)).is_ok() {
                let _ = done.await;
            }
        }
    }
}

/// The writer thread's connection, and what it needs to reopen it.
struct WriterConn {
    conn: Connection,
    /// The database file (`None`: in memory, which is never reopened).
    path: Option<PathBuf>,
    settings: ConnSettings,
    /// Set when a batch could not write: reopen before the next batch, not before this instant.
    reopen: Option<Instant>,
    /// When the connection was last (re)opened: reopening again waits [`REOPEN_INTERVAL`] after it.
    opened: Instant,
}

impl WriterConn {
    /// Replaces the connection with a fresh one if a write failed since the last (re)open. When the
    /// fresh one cannot be opened either, the old one is kept and reopening is tried again later.
    fn reopen_if_failed(&mut self) {
        let (Some(due), Some(path)) = (self.reopen, self.path.as_deref()) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        match open_writer(Some(path), self.settings) {
            Ok(conn) => {
                self.conn = conn;
                self.reopen = None;
                self.opened = Instant::now();
                tracing::info!("SQLite writer connection reopened after a failed write");
            }
            Err(e) => {
                self.reopen = Some(Instant::now() + REOPEN_INTERVAL);
                tracing::debug!(error = %e, "SQLite writer connection cannot be reopened yet");
            }
        }
    }

    fn note_batch(&mut self, unwritable: bool) {
        if unwritable && self.reopen.is_none() {
            // While the cause lasts every batch fails: reopening for each of them would only add work.
            self.reopen = Some(self.opened + REOPEN_INTERVAL);
        }
    }
}

/// Moves the whole write-ahead log into the database file and empties it, so the file alone is the
/// database (e.g. for a backup copy). Runs between batches: a checkpoint cannot run inside the
/// transaction a job runs in.
fn checkpoint_at_close(conn: &WriterConn) {
    let Some(path) = conn.path.as_deref() else { return };
    let database = path.display();
    let result =
        conn.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)));
    match result {
        Ok((0, _)) => tracing::debug!(%database, "SQLite WAL checkpointed at close"),
        Ok((_, frames)) => {
            tracing::warn!(%database, frames, "SQLite WAL checkpoint at close was blocked by a reader")
        }
        Err(e) => tracing::warn!(%database, error = %e, "SQLite WAL checkpoint at close failed"),
    }
}

/// Serves jobs until the channel closes; returns the acknowledgement of a `close` request.
fn writer_loop(
    conn: &mut WriterConn,
    rx: &mpsc::Receiver<Msg>,
    checkpoints: Option<&Checkpoints>,
) -> Option<oneshot::Sender<()>> {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(64);
    loop {
        let mut close = None;
        match rx.recv() {
            Ok(Msg::Job(job)) => batch.push(job),
            Ok(Msg::Close(ack)) => close = Some(ack),
            Err(_) => return None,
        }
        while close.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(_) => break,
            }
        }
        while !batch.is_empty() {
            conn.reopen_if_failed();
            let unwritable = commit_batch(&conn.conn, &mut batch);
            conn.note_batch(unwritable);
            if let Some(c) = checkpoints {
                c.after_commit(&conn.conn);
            }
        }
        if close.is_some() {
            return close;
        }
    }
}

/// Runs `batch` in one transaction and delivers the results; returns whether storage refused a write.
/// Jobs left in `batch` afterwards (the transaction was aborted midway by SQLite) go into the next
/// transaction.
fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn Job>>) -> bool {
    let begin = if batch.iter().any(|j| j.writes()) { "BEGIN IMMEDIATE" } else { "BEGIN" };
    if let Err(e) = exec_cached(conn, begin) {
        let failure = BatchFailure::new(format!("cannot start a write transaction: {e}"), &e);
        tracing::error!(error = %e, jobs = batch.len(), "SQLite write transaction failed to start");
        for job in batch.drain(..) {
            job.finish(Err(&failure));
        }
        return failure.unwritable.is_some();
    }
    let mut ran = 0;
    let mut aborted = false;
    for job in batch.iter_mut() {
        job.run(conn);
        ran += 1;
        if conn.is_autocommit() {
            // A fatal error (disk full, I/O) rolled the whole transaction back.
            aborted = true;
            break;
        }
    }
    let done: Vec<Box<dyn Job>> = batch.drain(..ran).collect();
    // A job that failed on its own because storage refused it also means the connection needs reopening.
    let refused = done.iter().find_map(|j| j.unwritable());
    let outcome = if aborted {
        Err(BatchFailure {
            message: "the write transaction was rolled back after a database error".to_string(),
            unwritable: refused,
        })
    } else {
        exec_cached(conn, "COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            BatchFailure::new(format!("commit failed: {e}"), &e)
        })
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e.message, jobs = done.len(), "SQLite group commit failed");
    }
    let unwritable = refused.is_some() || outcome.as_ref().is_err_and(|f| f.unwritable.is_some());
    for job in done {
        job.finish(outcome.as_ref().map(|_| ()));
    }
    unwritable
}

/// Runs a parameterless statement through the statement cache (no parsing per batch).
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs `f` inside a savepoint: all of its statements apply, or none.
pub(crate) fn atomically<T>(conn: &Connection, f: impl FnOnce() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    match f() {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

/// Idle reader connections of a database file, opened on demand.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    settings: ConnSettings,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    /// A pool keeping at most `max_idle` connections to `path` (none are opened yet).
    pub(crate) fn new(path: PathBuf, settings: ConnSettings, max_idle: usize) -> Self {
        Readers {
            path,
            settings,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = open_existing(&self.path, self.settings)?;
        conn.execute_batch("PRAGMA query_only = ON")?;
        Ok(conn)
    }

    /// Runs `f` on an idle reader connection (opening one if none is idle), on this thread.
    pub(crate) fn with<T>(&self, op: &str, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed(op));
        }
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open().map_err(|e| sq_err(op, e))?,
        };
        let out = f(&conn).map_err(|e| sq_err(op, e));
        if !self.closed.load(Ordering::Acquire) {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        out
    }

    /// Closes the idle connections; later reads fail.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
