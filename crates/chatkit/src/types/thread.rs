//! Threads, their status and the generic `Page<T>` used by every list.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ThreadItem, Timestamp};

/// One page of a list: `after` is the id of the page's last element when `has_more`, and is sent back
/// as the next request's `after` to get the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The elements of this page.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Whether more elements follow.
    #[serde(default)]
    pub has_more: bool,
    /// The cursor of the next page; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page { data: Vec::new(), has_more: false, after: None }
    }
}

/// Sort order of list requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first (the protocol default).
    #[default]
    Desc,
}

/// Whether the user may write in a thread; it only changes the composer, the server still accepts
/// messages on any thread.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ThreadStatus {
    /// The composer is usable.
    #[default]
    Active,
    /// The composer is disabled, with an optional reason.
    Locked {
        /// Shown as the composer placeholder.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The composer is replaced by a banner.
    Closed {
        /// Shown in the banner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// What a store persists about a thread (the wire `Thread` minus its items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadMetadata {
    /// Title shown in the history list; absent until set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The thread's id (`thr_…`).
    pub id: String,
    /// Creation time; threads are listed by it.
    pub created_at: Timestamp,
    /// Whether the user may write in the thread.
    #[serde(default)]
    pub status: ThreadStatus,
    /// The only hosts assistant messages may show images from; absent means any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_image_domains: Option<Vec<String>>,
    /// Server-private metadata; never sent to clients.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl ThreadMetadata {
    /// A new active thread without title created now.
    pub fn new(id: impl Into<String>) -> Self {
        ThreadMetadata {
            title: None,
            id: id.into(),
            created_at: Timestamp::now(),
            status: ThreadStatus::Active,
            allowed_image_domains: None,
            metadata: Map::new(),
        }
    }

    /// The wire form with the given items page (`metadata` is always `{}` on the wire).
    pub fn to_thread(&self, items: Page<ThreadItem>) -> Thread {
        Thread {
            title: self.title.clone(),
            id: self.id.clone(),
            created_at: self.created_at,
            status: self.status.clone(),
            allowed_image_domains: self.allowed_image_domains.clone(),
            metadata: Map::new(),
            items,
        }
    }
}

/// A thread as sent to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thread {
    /// Title shown in the history list; absent until set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The thread's id (`thr_…`).
    pub id: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Whether the user may write in the thread.
    #[serde(default)]
    pub status: ThreadStatus,
    /// The only hosts assistant messages may show images from; absent means any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_image_domains: Option<Vec<String>>,
    /// Always `{}` on the wire: what a server keeps about a thread is never sent.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The oldest page of items for `threads.get_by_id`; an empty page in every other answer.
    #[serde(default)]
    pub items: Page<ThreadItem>,
}
