//! Abuse limits per owner, checked before anything is stored and before any model request:
//!
//! * `MAX_STREAMS_PER_USER`: responses (SSE streams) one owner may have open at once;
//! * `TURNS_PER_MINUTE`: turns that call the model (every streaming request type except
//!   `threads.custom_action`, whose widget actions never reach the model) started in any 60 seconds: a
//!   sliding window, so the promise holds exactly (a token bucket such as `governor`'s GCRA would let a
//!   client that spreads its turns over the minute start almost twice the number in its first minute);
//! * `MAX_ATTACHMENT_BYTES_PER_USER`: uploaded attachment bytes one owner may keep stored.
//!
//! Over a stream or turn limit the answer is `429 {"detail"}` with an honest `Retry-After`; over the
//! storage budget it is `413 {"detail"}` without one (waiting frees no space: deleting attachments does).
//!
//! A single process (SQLite, memory) counts in memory (`local`). On PostgreSQL every replica counts in
//! the database (`shared`): stream slots are leases that their replica renews while the response runs
//! and that expire when it no longer does (a crashed replica holds no slot for long), and the turn
//! window is one small list per owner, both changed by compare-and-set.
//!
//! In `AUTH_MODE=none` every caller is the same anonymous owner, so per-owner defaults would be global
//! limits on a single-user quick start (and on the benchmark): there the limits apply only when set
//! explicitly. `0` turns a limit off in every mode.
//!
//! Every refusal is logged as one `info` event with a bounded `reason` field (`streams`, `turns`,
//! `storage`) and no owner, token or user text, so a metrics layer can count it.

mod local;
mod shared;

use std::sync::Arc;
use std::time::Duration;

use chatkit::Store;
use chatkit::store::{RequestContext, StoreError};
use clap::Args;
use serde_json::Value;

use crate::auth::AuthMode;
use crate::routes::ApiError;

/// Default `MAX_STREAMS_PER_USER`.
pub(crate) const DEFAULT_MAX_STREAMS_PER_USER: u32 = 4;
/// Default `TURNS_PER_MINUTE`.
pub(crate) const DEFAULT_TURNS_PER_MINUTE: u32 = 30;
/// Default `MAX_ATTACHMENT_BYTES_PER_USER` (100 MiB).
pub(crate) const DEFAULT_MAX_ATTACHMENT_BYTES_PER_USER: u64 = 100 * 1024 * 1024;
/// The window of `TURNS_PER_MINUTE`.
pub(crate) const TURN_WINDOW: Duration = Duration::from_secs(60);
/// `Retry-After` of a refused stream: a slot frees when one of the owner's responses ends, which the
/// server cannot foresee; a typical answer takes a few seconds.
pub(crate) const STREAM_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The per-owner limit settings as given (`None` = not set, so the mode's default applies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct UserLimitSettings {
    /// Responses one user may stream at once (default 4 with AUTH_MODE=jwt/header, off with none; 0 = off).
    #[arg(long, env = "MAX_STREAMS_PER_USER")]
    pub max_streams_per_user: Option<u32>,
    /// Model turns one user may start per minute (default 30 with AUTH_MODE=jwt/header, off with none;
    /// 0 = off).
    #[arg(long, env = "TURNS_PER_MINUTE")]
    pub turns_per_minute: Option<u32>,
    /// Attachment bytes one user may keep stored (default 104857600 = 100 MiB with AUTH_MODE=jwt/header,
    /// off with none; 0 = off).
    #[arg(long, env = "MAX_ATTACHMENT_BYTES_PER_USER")]
    pub max_attachment_bytes_per_user: Option<u64>,
}

impl UserLimitSettings {
    /// The limits in force under `mode`: what was set, else the default when callers are told apart,
    /// else off.
    pub(crate) fn resolve(&self, mode: AuthMode) -> UserLimits {
        let per_user = mode != AuthMode::None;
        let pick = |set: Option<u64>, default: u64| set.unwrap_or(if per_user { default } else { 0 });
        UserLimits {
            max_streams: pick(self.max_streams_per_user.map(u64::from), DEFAULT_MAX_STREAMS_PER_USER.into()) as u32,
            turns_per_minute: pick(self.turns_per_minute.map(u64::from), DEFAULT_TURNS_PER_MINUTE.into()) as u32,
            max_attachment_bytes: pick(self.max_attachment_bytes_per_user, DEFAULT_MAX_ATTACHMENT_BYTES_PER_USER),
        }
    }
}

/// The limits in force; `0` = off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    /// Concurrent responses per owner.
    pub max_streams: u32,
    /// Model turns per owner and minute.
    pub turns_per_minute: u32,
    /// Stored attachment bytes per owner.
    pub max_attachment_bytes: u64,
}

/// Which limit refused a request: the bounded `reason` of the refusal's log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Too many open responses.
    Streams,
    /// Too many turns in the last minute.
    Turns,
    /// The attachment storage budget is used up.
    Storage,
}

impl Reason {
    /// The value of the `reason` log field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Streams => "streams",
            Reason::Turns => "turns",
            Reason::Storage => "storage",
        }
    }
}

/// Whole seconds to announce in `Retry-After`: rounded up, at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Logs a refusal (the hook for metrics) and makes its answer.
fn refuse(reason: Reason, answer: ApiError) -> ApiError {
    tracing::info!(reason = reason.as_str(), status = answer.status().as_u16(), "request refused: per-user limit");
    answer
}

/// What counts the owners' use: in this process, or in the shared database.
enum Counters {
    Local(local::LocalCounters),
    Shared(shared::SharedCounters),
}

/// Checks and counts the per-owner limits. Cheap to share behind an `Arc`.
pub struct UserLimiter {
    limits: UserLimits,
    counters: Counters,
}

impl std::fmt::Debug for UserLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let where_ = match self.counters {
            Counters::Local(_) => "process",
            Counters::Shared(_) => "database",
        };
        f.debug_struct("UserLimiter").field("limits", &self.limits).field("counted_in", &where_).finish()
    }
}

/// A request's hold on one of its owner's stream slots (when streams are limited): released by
/// [`StreamPermit::release`] when its response has been sent, or when dropped (the client left).
#[derive(Debug, Default)]
pub(crate) struct StreamPermit {
    _local: Option<local::LocalSlot>,
    _shared: Option<shared::Lease>,
}

impl StreamPermit {
    /// Gives the slot back before the end of the response reaches the client, so that the client's next
    /// request already finds it free (a release on drop would race with that request).
    pub(crate) async fn release(mut self) {
        self._local = None;
        if let Some(lease) = self._shared.take() {
            lease.release().await;
        }
    }
}

impl UserLimiter {
    /// Counts in this process: for a single server (SQLite or memory store).
    pub(crate) fn in_process(limits: UserLimits) -> Arc<Self> {
        Arc::new(UserLimiter { limits, counters: Counters::Local(local::LocalCounters::new(limits)) })
    }

    /// Counts in the shared database behind `store`, so that every replica on it enforces the same limits.
    pub fn shared(limits: UserLimits, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(UserLimiter { limits, counters: Counters::Shared(shared::SharedCounters::new(store)) })
    }

    /// No limits (tests, and the router's defaults).
    pub fn off() -> Arc<Self> {
        Self::in_process(UserLimits::default())
    }

    /// The limits in force.
    pub fn limits(&self) -> UserLimits {
        self.limits
    }

    /// Whether a request of this ChatKit `type` must pass [`Self::admit_stream`] first.
    pub(crate) fn watches_streams(&self) -> bool {
        self.limits.max_streams > 0 || self.limits.turns_per_minute > 0
    }

    /// Admits one streaming request of `owner`: takes a stream slot, then (when the request calls the
    /// model) a turn. A refusal is the 429 to answer; nothing has been counted for it.
    pub(crate) async fn admit_stream(&self, owner: &str, calls_model: bool) -> Result<StreamPermit, ApiError> {
        let limits = self.limits;
        let permit = if limits.max_streams == 0 {
            StreamPermit::default()
        } else {
            let taken = match &self.counters {
                Counters::Local(c) => c.take_slot(owner).map(|s| StreamPermit { _local: Some(s), _shared: None }),
                Counters::Shared(c) => c
                    .take_slot(owner, limits.max_streams)
                    .await
                    .map_err(storage_failure)?
                    .map(|s| StreamPermit { _local: None, _shared: Some(s) }),
            };
            match taken {
                Some(permit) => permit,
                None => {
                    let detail = format!(
                        "You already have {} responses running, the most one user may have at once \
                         (MAX_STREAMS_PER_USER); wait for one to finish and try again.",
                        limits.max_streams
                    );
                    return Err(refuse(Reason::Streams, too_many(detail, STREAM_RETRY_AFTER)));
                }
            }
        };
        if calls_model && limits.turns_per_minute > 0 {
            let wait = match &self.counters {
                Counters::Local(c) => c.take_turn(owner),
                Counters::Shared(c) => c.take_turn(owner, limits.turns_per_minute).await.map_err(storage_failure)?,
            };
            if let Some(wait) = wait {
                // `permit` drops here: a refused request holds no stream slot.
                let detail = format!(
                    "You have sent {} messages in the last minute, the most one user may send \
                     (TURNS_PER_MINUTE); try again in {} s.",
                    limits.turns_per_minute,
                    retry_after_secs(wait)
                );
                return Err(refuse(Reason::Turns, too_many(detail, wait)));
            }
        }
        Ok(permit)
    }

    /// Whether attachment sizes are checked against a budget.
    pub(crate) fn watches_storage(&self) -> bool {
        self.limits.max_attachment_bytes > 0
    }

    /// Checks that storing `adding` more bytes (as attachment `replacing`, whose stored bytes then stop
    /// counting, when named) keeps the owner within `MAX_ATTACHMENT_BYTES_PER_USER`. Concurrent uploads of
    /// one owner are checked independently, so together they may pass the budget by at most one upload each.
    pub(crate) async fn check_storage(
        &self,
        store: &dyn Store,
        ctx: &RequestContext,
        replacing: Option<&str>,
        adding: u64,
    ) -> Result<(), ApiError> {
        let max = self.limits.max_attachment_bytes;
        if max == 0 {
            return Ok(());
        }
        let used = store.attachment_bytes(ctx, replacing).await?;
        if used.saturating_add(adding) <= max {
            return Ok(());
        }
        let detail = format!(
            "This upload ({adding} bytes) does not fit in your attachment storage: {used} of {max} bytes are used \
             (MAX_ATTACHMENT_BYTES_PER_USER). Delete attachments you no longer need and try again."
        );
        Err(refuse(Reason::Storage, ApiError::PayloadTooLarge(detail)))
    }
}

/// A 429 with `Retry-After`.
fn too_many(detail: String, wait: Duration) -> ApiError {
    ApiError::TooManyRequests { detail, retry_after_secs: retry_after_secs(wait) }
}

/// The answer when the shared counters cannot be read or written.
fn storage_failure(e: StoreError) -> ApiError {
    ApiError::from(e)
}

/// The declared `params.size` of an `attachments.create` request, so that an attachment that cannot fit
/// is refused before its bytes are sent; `None` for any other request.
pub(crate) fn attachment_create_size(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
        params: Option<Value>,
    }
    let peek: Peek<'_> = serde_json::from_slice(body).ok()?;
    if peek.kind?.as_ref() != "attachments.create" {
        return None;
    }
    peek.params?.get("size")?.as_u64()
}

/// Whether a ChatKit request `type` answers with a stream, and whether that stream calls the model;
/// `None` for a body whose `type` cannot be read (the protocol server then answers its 400).
pub(crate) fn stream_kind(body: &[u8]) -> Option<StreamKind> {
    #[derive(serde::Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    let peek: Peek<'_> = serde_json::from_slice(body).ok()?;
    match peek.kind?.as_ref() {
        "threads.create"
        | "threads.add_user_message"
        | "threads.add_client_tool_output"
        | "threads.add_structured_input"
        | "threads.retry_after_item" => Some(StreamKind { calls_model: true }),
        "threads.custom_action" => Some(StreamKind { calls_model: false }),
        _ => None,
    }
}

/// What a streaming request will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamKind {
    /// Whether its turn calls the model (counted against `TURNS_PER_MINUTE`).
    pub calls_model: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_per_user_and_only_when_set_without_authentication() {
        let unset = UserLimitSettings::default();
        assert_eq!(unset.resolve(AuthMode::None), UserLimits::default());
        let per_user = UserLimits {
            max_streams: 4,
            turns_per_minute: 30,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES_PER_USER,
        };
        assert_eq!(unset.resolve(AuthMode::Jwt), per_user);
        assert_eq!(unset.resolve(AuthMode::Header), per_user);
        let set = UserLimitSettings {
            max_streams_per_user: Some(2),
            turns_per_minute: Some(0),
            max_attachment_bytes_per_user: None,
        };
        assert_eq!(
            set.resolve(AuthMode::None),
            UserLimits { max_streams: 2, turns_per_minute: 0, max_attachment_bytes: 0 }
        );
        assert_eq!(
            set.resolve(AuthMode::Jwt),
            UserLimits {
                max_streams: 2,
                turns_per_minute: 0,
                max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES_PER_USER
            }
        );
    }

    #[test]
    fn stream_kinds_are_read_from_the_type() {
        let kind = |body: &str| stream_kind(body.as_bytes());
        assert_eq!(kind(r#"{"type":"threads.create","params":{}}"#), Some(StreamKind { calls_model: true }));
        assert_eq!(
            kind(r#"{"params":{"x":1},"type":"threads.retry_after_item"}"#),
            Some(StreamKind { calls_model: true })
        );
        assert_eq!(kind(r#"{"type":"threads.custom_action"}"#), Some(StreamKind { calls_model: false }));
        assert_eq!(kind(r#"{"type":"threads.list"}"#), None);
        assert_eq!(kind(r#"{"type":"threads.\u0063reate"}"#), Some(StreamKind { calls_model: true }));
        assert_eq!(kind("not json"), None);
        assert_eq!(kind("[]"), None);
        let size = |body: &str| attachment_create_size(body.as_bytes());
        assert_eq!(size(r#"{"type":"attachments.create","params":{"name":"a.png","size":600}}"#), Some(600));
        assert_eq!(size(r#"{"type":"attachments.create","params":{"size":"600"}}"#), None);
        assert_eq!(size(r#"{"type":"threads.create","params":{"size":600}}"#), None);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2000)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }

    #[tokio::test]
    async fn the_fifth_stream_and_the_thirty_first_turn_are_refused_in_process() {
        let limiter = UserLimiter::in_process(UserLimitSettings::default().resolve(AuthMode::Jwt));
        let mut permits = Vec::new();
        for _ in 0..4 {
            permits.push(limiter.admit_stream("alice", true).await.unwrap());
        }
        let refused = limiter.admit_stream("alice", false).await.unwrap_err();
        assert!(matches!(refused, ApiError::TooManyRequests { retry_after_secs: 5, .. }), "{refused:?}");
        // Another owner is not affected; a finished response frees its slot.
        drop(limiter.admit_stream("bob", true).await.unwrap());
        permits.pop();
        permits.push(limiter.admit_stream("alice", false).await.unwrap());
        drop(permits);
        // 4 turns so far for alice (actions are not turns); 26 more fit in the minute, the next waits until
        // the first leaves it.
        for _ in 0..26 {
            drop(limiter.admit_stream("alice", true).await.unwrap());
        }
        let refused = limiter.admit_stream("alice", true).await.unwrap_err();
        assert!(matches!(refused, ApiError::TooManyRequests { retry_after_secs: 55..=60, .. }), "{refused:?}");
        // The refused turn holds no slot, and actions (no model call) are not turns: four run at once.
        let actions = futures::future::join_all((0..4).map(|_| limiter.admit_stream("alice", false))).await;
        assert!(actions.iter().all(Result::is_ok), "{actions:?}");
    }

    #[tokio::test]
    async fn storage_is_checked_against_the_stored_bytes() {
        let store: Arc<dyn Store> = Arc::new(chatkit::store::MemoryStore::new());
        let ctx = RequestContext { owner_id: "alice".into(), ..RequestContext::default() };
        let limits = UserLimits { max_attachment_bytes: 10, ..UserLimits::default() };
        let limiter = UserLimiter::in_process(limits);
        // Bytes can only be stored for an attachment that exists (and only once).
        let attachment = chatkit::types::Attachment {
            id: "atc_1".into(),
            name: "photo.png".into(),
            mime_type: "image/png".into(),
            upload_descriptor: None,
            thread_id: None,
            kind: chatkit::types::AttachmentKind::Image { preview_url: "http://localhost/x".into() },
        };
        store.save_attachment(&ctx, &attachment).await.unwrap();
        store.save_attachment_data(&ctx, "atc_1", &[0; 6]).await.unwrap();
        limiter.check_storage(store.as_ref(), &ctx, Some("atc_2"), 4).await.unwrap();
        let refused = limiter.check_storage(store.as_ref(), &ctx, Some("atc_2"), 5).await.unwrap_err();
        assert_eq!(refused.status().as_u16(), 413);
        // Replacing an attachment's bytes counts the new size only.
        limiter.check_storage(store.as_ref(), &ctx, Some("atc_1"), 10).await.unwrap();
        UserLimiter::off().check_storage(store.as_ref(), &ctx, Some("atc_2"), 1000).await.unwrap();
    }
}
