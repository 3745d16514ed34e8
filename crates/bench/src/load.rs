//! Load phases: `concurrency` workers each run turns back to back over one keep-alive connection pool
//! until a deadline (timed level) or until a shared budget of turns is spent (thread fill), while a
//! sampler records the server's resident memory every 100 ms and CPU counters are read around the
//! phase.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::procfs;
use crate::turn::{TurnError, TurnOutcome, run_turn};

/// Where the load goes and how requests are made.
#[derive(Clone)]
pub(crate) struct Target {
    /// Pooled HTTP/1.1 client (keep-alive).
    pub(crate) client: reqwest::Client,
    /// Full URL of the ChatKit endpoint.
    pub(crate) chatkit_url: String,
    /// Request body of one turn.
    pub(crate) body: Bytes,
    /// Per-turn timeout.
    pub(crate) timeout: Duration,
    /// Server process, when known (enables CPU and memory metrics).
    pub(crate) pid: Option<u32>,
    /// Whether the mock model runs on this process's `bench-mock` threads.
    pub(crate) mock_in_process: bool,
}

/// p50 / p99 / max of a set of durations (nearest rank).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Percentiles {
    /// Median.
    pub(crate) p50: Duration,
    /// 99th percentile.
    pub(crate) p99: Duration,
    /// Maximum.
    pub(crate) max: Duration,
}

impl Percentiles {
    /// Computes the percentiles; `None` for an empty set.
    pub(crate) fn of(mut values: Vec<Duration>) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let rank = |p: f64| {
            let idx = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[idx]
        };
        Some(Percentiles { p50: rank(0.50), p99: rank(0.99), max: values[values.len() - 1] })
    }
}

/// CPU time used during a phase by the server, the load generator and the mock model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CpuUse {
    /// Server process (when its pid is known).
    pub(crate) server: Option<Duration>,
    /// This process's load-generator threads (main + `bench-load` workers).
    pub(crate) load: Option<Duration>,
    /// This process's mock-model threads (`bench-mock`), when the mock runs in-process.
    pub(crate) mock: Option<Duration>,
}

struct CpuMark {
    server: Option<Duration>,
    load: Option<Duration>,
    mock: Option<Duration>,
}

impl CpuMark {
    fn now(pid: Option<u32>, mock_in_process: bool) -> CpuMark {
        let mock = if mock_in_process { procfs::own_threads_cpu(crate::MOCK_THREAD).ok() } else { None };
        let load = match (procfs::self_cpu().ok(), mock) {
            (Some(all), Some(m)) => Some(all.saturating_sub(m)),
            (all, _) => all,
        };
        CpuMark { server: pid.and_then(|p| procfs::process_cpu(p).ok()), load, mock }
    }

    fn since(&self, start: &CpuMark) -> CpuUse {
        let d = |a: Option<Duration>, b: Option<Duration>| Some(a?.saturating_sub(b?));
        CpuUse { server: d(self.server, start.server), load: d(self.load, start.load), mock: d(self.mock, start.mock) }
    }
}

/// Result of one phase.
#[derive(Debug, Clone, Default)]
pub(crate) struct PhaseResult {
    /// Number of concurrent workers.
    pub(crate) concurrency: usize,
    /// Wall time from the first request to the end of the last turn.
    pub(crate) elapsed: Duration,
    /// Turns that completed without error.
    pub(crate) ok: u64,
    /// Failed turns by kind.
    pub(crate) errors: BTreeMap<TurnError, u64>,
    /// Time to first event of the successful turns.
    pub(crate) first_event: Option<Percentiles>,
    /// Time to last event of the successful turns.
    pub(crate) last_event: Option<Percentiles>,
    /// CPU time used during the phase.
    pub(crate) cpu: CpuUse,
    /// Highest server `VmRSS` sampled during the phase, in KiB.
    pub(crate) peak_rss_kib: Option<u64>,
}

impl PhaseResult {
    /// Total failed turns.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successful turns per second.
    pub(crate) fn turns_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }
}

/// When a phase stops starting new turns.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// After this much wall time.
    After(Duration),
    /// After this many turns have been started (ends early after `cap` of wall time).
    Turns {
        /// Turns to run.
        count: usize,
        /// Wall-time cap.
        cap: Duration,
    },
}

#[derive(Default)]
struct WorkerLog {
    first: Vec<Duration>,
    last: Vec<Duration>,
    ok: u64,
    errors: BTreeMap<TurnError, u64>,
}

impl WorkerLog {
    fn record(&mut self, o: TurnOutcome) {
        match o.result {
            Ok(()) => {
                self.ok += 1;
                if let (Some(f), Some(l)) = (o.first_event, o.last_event) {
                    self.first.push(f);
                    self.last.push(l);
                }
            }
            Err(e) => *self.errors.entry(e).or_default() += 1,
        }
    }
}

/// Runs `concurrency` workers until `stop`, measuring everything listed in [`PhaseResult`].
pub(crate) async fn run_phase(target: &Target, concurrency: usize, stop: Stop) -> PhaseResult {
    let concurrency = concurrency.max(1);
    let sampler = target.pid.map(RssSampler::start);
    let cpu_start = CpuMark::now(target.pid, target.mock_in_process);
    let start = Instant::now();
    let (deadline, budget) = match stop {
        Stop::After(d) => (start + d, None),
        Stop::Turns { count, cap } => (start + cap, Some(Arc::new(AtomicUsize::new(count)))),
    };
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let target = target.clone();
        let budget = budget.clone();
        workers.push(tokio::spawn(async move {
            let mut log = WorkerLog::default();
            while Instant::now() < deadline {
                if let Some(b) = &budget
                    && b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err()
                {
                    break;
                }
                let outcome = run_turn(&target.client, &target.chatkit_url, target.body.clone(), target.timeout).await;
                let failed_transport = matches!(outcome.result, Err(TurnError::Transport));
                log.record(outcome);
                if failed_transport {
                    // Do not spin on a dead server.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            log
        }));
    }
    let mut merged = WorkerLog::default();
    for w in workers {
        if let Ok(mut log) = w.await {
            merged.ok += log.ok;
            merged.first.append(&mut log.first);
            merged.last.append(&mut log.last);
            for (k, v) in log.errors {
                *merged.errors.entry(k).or_default() += v;
            }
        }
    }
    let elapsed = start.elapsed();
    let cpu = CpuMark::now(target.pid, target.mock_in_process).since(&cpu_start);
    let peak_rss_kib = match sampler {
        Some(s) => s.stop().await,
        None => None,
    };
    PhaseResult {
        concurrency,
        elapsed,
        ok: merged.ok,
        errors: merged.errors,
        first_event: Percentiles::of(merged.first),
        last_event: Percentiles::of(merged.last),
        cpu,
        peak_rss_kib,
    }
}

/// Samples a process's `VmRSS` every 100 ms in the background and keeps the maximum.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling process `pid`.
    pub(crate) fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Ok(m) = procfs::memory(pid) {
                    p.fetch_max(m.rss_kib, Ordering::Relaxed);
                }
            }
        });
        RssSampler { stop, peak, task }
    }

    /// Stops sampling (after one last sample) and returns the maximum seen, if any.
    pub(crate) async fn stop(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        Some(self.peak.load(Ordering::Relaxed)).filter(|&k| k > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        assert_eq!(Percentiles::of(Vec::new()), None);
        let p = Percentiles::of(ms(&[5])).unwrap();
        assert_eq!((p.p50, p.p99, p.max), (ms(&[5])[0], ms(&[5])[0], ms(&[5])[0]));
        let values: Vec<u64> = (1..=200).rev().collect();
        let p = Percentiles::of(ms(&values)).unwrap();
        assert_eq!(p.p50, Duration::from_millis(100));
        assert_eq!(p.p99, Duration::from_millis(198));
        assert_eq!(p.max, Duration::from_millis(200));
    }

    #[test]
    fn phase_result_rates_and_error_totals() {
        let mut r = PhaseResult { elapsed: Duration::from_secs(2), ok: 500, ..Default::default() };
        r.errors.insert(TurnError::Timeout, 2);
        r.errors.insert(TurnError::Status(500), 3);
        assert_eq!(r.error_count(), 5);
        assert_eq!(r.turns_per_second(), 250.0);
        assert_eq!(PhaseResult::default().turns_per_second(), 0.0);
    }
}
