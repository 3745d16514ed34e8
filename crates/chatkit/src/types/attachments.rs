//! Attachments (spec §4.4) and their two-phase upload descriptor.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where and how the client uploads the bytes of a two-phase attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadDescriptor {
    /// Absolute upload URL.
    pub url: String,
    /// `POST` or `PUT`.
    pub method: String,
    /// Extra headers the client sends with the upload.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// File or image specific fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AttachmentKind {
    /// A generic file.
    File,
    /// An image, with a preview URL the client renders.
    Image {
        /// Thumbnail URL (absolute, or a `data:` URL).
        preview_url: String,
    },
}

/// An attachment's metadata (never its bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// `atc_…`
    pub id: String,
    /// Original file name.
    pub name: String,
    /// Declared MIME type.
    pub mime_type: String,
    /// Upload instructions; cleared once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_descriptor: Option<UploadDescriptor>,
    /// Set when a user message referencing it is saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// `type` and type-specific fields.
    #[serde(flatten)]
    pub kind: AttachmentKind,
}

impl Attachment {
    /// Whether this is an image attachment.
    pub fn is_image(&self) -> bool {
        matches!(self.kind, AttachmentKind::Image { .. })
    }
}
