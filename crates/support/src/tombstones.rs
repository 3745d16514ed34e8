//! Pruning of the tombstones deleted threads and items leave in the store (their positions, so a client
//! paging from a deleted one continues after it). Without pruning they would pile up forever; a cursor
//! older than the retention is rare (clients page right after they list), and once its tombstone is
//! pruned it pages like a cursor that never existed: an empty page, after which the client lists again
//! from the start.
//!
//! Every replica prunes (at start-up, then every [`MAX_INTERVAL`] or the retention if shorter): pruning
//! twice deletes nothing the second time, so replicas need no coordination.

use std::sync::Arc;
use std::time::Duration;

use chatkit::Store;
use tokio::task::JoinHandle;

/// The longest pause between two prunings.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts pruning the tombstones older than `retention` in `store`, now and then periodically, until the
/// returned task is aborted; `None` when `retention` is zero (tombstones are kept forever).
pub(crate) fn spawn_pruning(store: Arc<dyn Store>, retention: Duration) -> Option<JoinHandle<()>> {
    if retention.is_zero() {
        return None;
    }
    let every = retention.min(MAX_INTERVAL);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The first tick is immediate: tombstones left while the server was down go at start-up.
            ticks.tick().await;
            match store.prune_tombstones(retention).await {
                Ok(0) => {}
                Ok(pruned) => {
                    tracing::info!(pruned, retention_secs = retention.as_secs(), "pruned old paging tombstones")
                }
                Err(e) => tracing::warn!(error = %e, "could not prune old paging tombstones; retrying later"),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatkit::store::{MemoryStore, RequestContext};
    use chatkit::types::{Order, ThreadMetadata};

    #[tokio::test]
    async fn prunes_at_start_and_then_periodically() {
        let store = Arc::new(MemoryStore::new());
        let ctx = RequestContext::default();
        for id in ["t1", "t2", "t3"] {
            store.save_thread(&ctx, &ThreadMetadata::new(id)).await.unwrap();
        }
        store.delete_thread(&ctx, "t1").await.unwrap();
        let page_after = |cursor: &'static str| {
            let (store, ctx) = (store.clone(), ctx.clone());
            async move { store.load_threads(&ctx, 10, Some(cursor), Order::Asc).await.unwrap().data.len() }
        };
        assert_eq!(page_after("t1").await, 2);

        let task = spawn_pruning(store.clone(), Duration::from_millis(100)).unwrap();
        // Young at the first pruning, old at a later one.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(page_after("t1").await, 2);
        store.delete_thread(&ctx, "t2").await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(page_after("t1").await, 0);
        assert_eq!(page_after("t2").await, 0);
        task.abort();

        assert!(spawn_pruning(store, Duration::ZERO).is_none());
    }
}
