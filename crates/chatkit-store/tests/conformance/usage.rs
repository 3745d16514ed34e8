//! Turn usage records: summed per owner, per thread and per provider and model; other owners' records
//! never count; a deleted thread's usage still does.

use std::sync::Arc;

use chatkit::store::{ModelUsage, Store, TurnUsage, UsageTotals, sum_usage};

use super::checks::{ctx, thread, ts};

fn turn(
    thread_id: &str,
    provider: &str,
    model: &str,
    input: u64,
    output: u64,
    cached: u64,
    reasoning: u64,
) -> TurnUsage {
    TurnUsage {
        thread_id: thread_id.into(),
        provider: provider.into(),
        model: model.into(),
        model_calls: 2,
        tokens: UsageTotals {
            turns: 1,
            model_calls: 2,
            input_tokens: input,
            output_tokens: output,
            cached_tokens: cached,
            reasoning_tokens: reasoning,
        },
        created_at: ts(1_000),
    }
}

fn totals(turns: u64, input: u64, output: u64, cached: u64, reasoning: u64) -> UsageTotals {
    UsageTotals {
        turns,
        model_calls: 2 * turns,
        input_tokens: input,
        output_tokens: output,
        cached_tokens: cached,
        reasoning_tokens: reasoning,
    }
}

pub(crate) async fn turn_usage_sums(store: Arc<dyn Store>) {
    let (alice, bob) = (ctx("alice"), ctx("bob"));
    assert_eq!(store.usage_by_model(&alice, None).await.unwrap(), Vec::<ModelUsage>::new());
    store.save_thread(&alice, &thread("thr_u1", 1)).await.unwrap();
    store.save_thread(&alice, &thread("thr_u2", 2)).await.unwrap();
    store.record_usage(&alice, &turn("thr_u1", "OpenAI", "gpt-4.1-mini", 100, 20, 64, 0)).await.unwrap();
    store.record_usage(&alice, &turn("thr_u1", "OpenAI", "gpt-4.1-mini", 150, 30, 128, 5)).await.unwrap();
    store.record_usage(&alice, &turn("thr_u2", "Gemini", "gemini-2.5-flash", 40, 9, 0, 3)).await.unwrap();
    store.record_usage(&bob, &turn("thr_b", "OpenAI", "gpt-4.1-mini", 1_000, 1_000, 0, 0)).await.unwrap();

    let rows = store.usage_by_model(&alice, None).await.unwrap();
    assert_eq!(
        rows,
        vec![
            ModelUsage { provider: "Gemini".into(), model: "gemini-2.5-flash".into(), totals: totals(1, 40, 9, 0, 3) },
            ModelUsage { provider: "OpenAI".into(), model: "gpt-4.1-mini".into(), totals: totals(2, 250, 50, 192, 5) },
        ]
    );
    assert_eq!(sum_usage(&rows), totals(3, 290, 59, 192, 8));
    let one = store.usage_by_model(&alice, Some("thr_u1")).await.unwrap();
    assert_eq!(sum_usage(&one), totals(2, 250, 50, 192, 5));
    assert_eq!(store.usage_by_model(&alice, Some("thr_b")).await.unwrap(), vec![], "bob's thread is not alice's");
    assert_eq!(sum_usage(&store.usage_by_model(&bob, None).await.unwrap()), totals(1, 1_000, 1_000, 0, 0));

    // A failed-over call counts its tokens and calls, not a turn of its own.
    let mut abandoned = turn("thr_u1", "Gemini", "gemini-2.5-flash", 10, 0, 0, 0);
    abandoned.tokens.turns = 0;
    store.record_usage(&alice, &abandoned).await.unwrap();
    let gemini = &store.usage_by_model(&alice, Some("thr_u1")).await.unwrap()[0];
    assert_eq!(gemini.totals, UsageTotals { turns: 0, ..totals(1, 10, 0, 0, 0) });
    let after = sum_usage(&store.usage_by_model(&alice, None).await.unwrap());
    assert_eq!(after, UsageTotals { model_calls: 8, ..totals(3, 300, 59, 192, 8) });
    store.delete_thread(&alice, "thr_u1").await.unwrap();

    // The tokens were spent: deleting the thread keeps them in the owner's totals.
    store.delete_thread(&alice, "thr_u2").await.unwrap();
    let after_delete = sum_usage(&store.usage_by_model(&alice, None).await.unwrap());
    assert_eq!(after_delete, UsageTotals { model_calls: 8, ..totals(3, 300, 59, 192, 8) });
}
