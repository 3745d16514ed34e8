//! Whether this replica should be sent traffic: [`Readiness`] moves from starting to serving once the
//! listener accepts connections, and to draining at the first shutdown signal. `GET /support/ready`
//! reports it (and whether the database answers); `GET /support/health` stays the liveness check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// The life stage of the server, as far as load balancers are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Built, not accepting connections yet.
    Starting,
    /// Accepting and answering.
    Serving,
    /// A shutdown signal arrived: answers in flight finish, nothing new should be sent here.
    Draining,
}

/// The shared stage of the server. Cheap to clone; every clone sees the same stage.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<AtomicU8>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(AtomicU8::new(Stage::Starting as u8)))
    }
}

impl Readiness {
    /// The current stage.
    pub(crate) fn stage(&self) -> Stage {
        match self.0.load(Ordering::Acquire) {
            s if s == Stage::Starting as u8 => Stage::Starting,
            s if s == Stage::Serving as u8 => Stage::Serving,
            _ => Stage::Draining,
        }
    }

    /// The listener accepts connections (ignored once draining: a stop is never undone).
    pub fn serving(&self) {
        let _ =
            self.0.compare_exchange(Stage::Starting as u8, Stage::Serving as u8, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A shutdown began.
    pub fn draining(&self) {
        self.0.store(Stage::Draining as u8, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_move_forward_only() {
        let r = Readiness::default();
        assert_eq!(r.stage(), Stage::Starting);
        r.clone().serving();
        assert_eq!(r.stage(), Stage::Serving);
        r.draining();
        r.serving();
        assert_eq!(r.stage(), Stage::Draining);
    }
}
