//! What a store knows about its own writes, for health checks: the outcome of the latest write, so a
//! health check right after traffic costs nothing, and a tiny probe write when the store has been idle
//! (a full disk or a read-only file is only noticed by writing).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chatkit::store::{StoreError, StoreResult, UnwritableReason};

/// How long the outcome of a write answers health checks before a probe writes again: short enough
/// that a load balancer sees a recovery within seconds, long enough that frequent health checks do not
/// turn into a write each.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// The `kv` row the probe rewrites (a namespace no app uses).
pub(crate) const PROBE_NAMESPACE: &str = "chatkit.health";
/// Key of the probe row.
pub(crate) const PROBE_KEY: &str = "write-probe";

/// The latest write outcome of a store.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    last: Mutex<Option<(Instant, Option<UnwritableReason>)>>,
}

impl WriteHealth {
    /// Notes how a write ended: success clears a failure, `Unwritable` sets one. Other errors (a missing
    /// thread, a constraint) say nothing about whether storage accepts writes and are ignored.
    pub(crate) fn record<T>(&self, result: &StoreResult<T>) {
        let failure = match result {
            Ok(_) => None,
            Err(StoreError::Unwritable(reason)) => Some(*reason),
            Err(_) => return,
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), failure));
    }

    /// The outcome of a write younger than [`PROBE_INTERVAL`], if there is one.
    pub(crate) fn recent(&self) -> Option<StoreResult<()>> {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last {
            Some((at, failure)) if at.elapsed() < PROBE_INTERVAL => match failure {
                None => Some(Ok(())),
                Some(reason) => Some(Err(StoreError::Unwritable(reason))),
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_write_decides_and_unrelated_errors_do_not_count() {
        let health = WriteHealth::default();
        assert!(health.recent().is_none(), "nothing written yet: probe");
        health.record::<()>(&Err(StoreError::Unwritable(UnwritableReason::DiskFull)));
        assert!(matches!(health.recent(), Some(Err(StoreError::Unwritable(UnwritableReason::DiskFull)))));
        health.record::<()>(&Err(StoreError::ThreadNotFound("thr_1".into())));
        assert!(matches!(health.recent(), Some(Err(StoreError::Unwritable(_)))));
        health.record(&Ok(()));
        assert!(matches!(health.recent(), Some(Ok(()))));
    }
}
