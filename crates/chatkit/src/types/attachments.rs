//! Attachments and their two-phase upload: `attachments.create` answers an attachment whose
//! `upload_descriptor` says where the client sends the bytes; a user message then names it by id.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where and how the client uploads the bytes of a two-phase attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadDescriptor {
    /// Where to send the bytes (absolute).
    pub url: String,
    /// `POST` or `PUT`.
    pub method: String,
    /// Extra headers the client sends with the upload.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// What kind of file an attachment is (the wire's `type`), with what only that kind has.
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
    /// The attachment's id (`atc_…`).
    pub id: String,
    /// The file's name as the user picked it.
    pub name: String,
    /// The MIME type the client declared.
    pub mime_type: String,
    /// Where to upload the bytes; absent once they are uploaded (and for attachments never uploaded
    /// in two phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_descriptor: Option<UploadDescriptor>,
    /// The thread of the user message that sent it; absent until that message is saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// `type` and what only that type has.
    #[serde(flatten)]
    pub kind: AttachmentKind,
}

impl Attachment {
    /// Whether this is an image attachment.
    pub fn is_image(&self) -> bool {
        matches!(self.kind, AttachmentKind::Image { .. })
    }
}
