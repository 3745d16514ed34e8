//! Thread titles without a model: a thread that has no title gets one from its first user message —
//! whitespace collapsed, cut at a word boundary to at most [`MAX_TITLE_CHARS`] characters with `…`; a message
//! with only images is titled [`IMAGE_TITLE`]. A title the user set (`threads.update`) is never replaced.
//!
//! [`maybe_set_title`] runs at the end of a response so `thread.updated` is the last event of the stream.

use chatkit::types::{ItemKind, Order, ThreadItem, UserMessageItem};
use chatkit::{AppError, EventSink};

/// Longest title, ellipsis included (in characters).
pub(crate) const MAX_TITLE_CHARS: usize = 60;
/// Title of a thread whose first message has attachments but no text.
pub(crate) const IMAGE_TITLE: &str = "Image message";
/// Characters dropped before the ellipsis of a cut title.
const TRAILING_PUNCTUATION: &[char] = &[',', ';', ':', '-', '–', '—', '(', '/', '&'];

/// The title for a first message, or `None` when it has neither text nor attachments.
pub(crate) fn title_for_message(message: &UserMessageItem) -> Option<String> {
    let text = message.text().split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return (!message.attachments.is_empty()).then(|| IMAGE_TITLE.to_string());
    }
    Some(shorten(&text))
}

/// Cuts single-line text to [`MAX_TITLE_CHARS`] at a word boundary, adding `…` when cut.
pub(crate) fn shorten(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= MAX_TITLE_CHARS {
        return text.to_string();
    }
    let budget = MAX_TITLE_CHARS - 1;
    let head = &chars[..budget];
    let cut = if chars[budget].is_whitespace() {
        budget
    } else {
        match head.iter().rposition(|c| c.is_whitespace()) {
            // Only back off to a space if that keeps at least half of the room; else cut the long word.
            Some(space) if space >= budget / 2 => space,
            _ => budget,
        }
    };
    let mut out: String = chars[..cut].iter().collect();
    let trimmed_len = out.trim_end_matches(|c: char| c.is_whitespace() || TRAILING_PUNCTUATION.contains(&c)).len();
    out.truncate(trimmed_len);
    out.push('…');
    out
}

/// Gives the sink's thread a title from its first user message if it has none (checked atomically against
/// the store, so a rename made while the response ran is respected). Emits `thread.updated` when it sets one.
///
/// `whole_thread`: the thread's items when already at hand — `Some(items)` must be *all* of them, oldest
/// first (then they are not loaded again); `None` loads the first page.
pub(crate) async fn maybe_set_title(sink: &EventSink, whole_thread: Option<&[ThreadItem]>) -> Result<(), AppError> {
    if sink.thread().title.is_some() {
        return Ok(());
    }
    let loaded;
    let items = match whole_thread {
        Some(items) => items,
        None => {
            let (store, thread_id) = (sink.store(), sink.thread_id());
            loaded = store.load_thread_items(sink.context(), &thread_id, None, FIRST_PAGE, Order::Asc).await?.data;
            &loaded[..]
        }
    };
    let Some(title) = items.iter().take(FIRST_PAGE).find_map(|item| match &item.kind {
        ItemKind::UserMessage(m) => Some(title_for_message(m)),
        _ => None,
    }) else {
        return Ok(());
    };
    let Some(title) = title else {
        return Ok(());
    };
    // Set only if the stored thread still has no title (one atomic store call).
    sink.update_stored_thread(Box::new(move |t| {
        if t.title.is_some() {
            return false;
        }
        t.title = Some(title);
        true
    }))
    .await?;
    Ok(())
}

/// How many of the oldest items are searched for the first user message.
const FIRST_PAGE: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Harness;
    use chatkit::types::{
        Attachment, AttachmentKind, InferenceOptions, ThreadItem, ThreadStreamEvent, UserMessageContent,
    };

    fn message(text: &str, images: usize) -> UserMessageItem {
        UserMessageItem {
            content: vec![UserMessageContent::InputText { text: text.into() }],
            attachments: (0..images)
                .map(|i| Attachment {
                    id: format!("atc_{i}"),
                    name: "Paris.jpg".into(),
                    mime_type: "image/png".into(),
                    upload_descriptor: None,
                    thread_id: None,
                    kind: AttachmentKind::Image { preview_url: "http://x/y".into() },
                })
                .collect(),
            quoted_text: None,
            inference_options: InferenceOptions::default(),
        }
    }

    #[test]
    fn short_text_is_kept_trimmed_and_collapsed() {
        assert_eq!(
            title_for_message(&message("  Move me to seat 14C on flight OA476.  ", 0)).unwrap(),
            "Move me to seat 14C on flight OA476."
        );
        assert_eq!(title_for_message(&message("Hello\n\n  there\tyou", 0)).unwrap(), "Hello there you");
        let exactly = "a".repeat(60);
        assert_eq!(shorten(&exactly), exactly);
    }

    #[test]
    fn long_text_is_cut_at_a_word_boundary() {
        let text = "Book a new trip for the traveler. Remind me to attach an inspiration photo and handle the planning as their concierge.";
        let title = title_for_message(&message(text, 0)).unwrap();
        assert_eq!(title, "Book a new trip for the traveler. Remind me to attach an…");
        assert!(title.chars().count() <= MAX_TITLE_CHARS);
        // A cut right before a space keeps the whole word.
        let text = format!("{} tail", "word ".repeat(11).trim_end()); // 59 characters
        assert_eq!(shorten(&format!("{text} and more words here")), format!("{text}…"));
        assert_eq!(shorten(&format!("{text}s and more words here")), format!("{}…", "word ".repeat(11).trim_end()));
        // Trailing punctuation before the cut is dropped.
        assert_eq!(
            shorten("Please help me with these things, seats, bags, meals, upgrades, and more"),
            "Please help me with these things, seats, bags, meals…"
        );
    }

    #[test]
    fn one_huge_word_is_cut_hard() {
        let word = "x".repeat(100);
        let title = shorten(&word);
        assert_eq!(title, format!("{}…", "x".repeat(59)));
        let title = shorten(&format!("ab {}", "é".repeat(100)));
        assert_eq!(title.chars().count(), 60);
        assert!(title.ends_with("é…"));
    }

    #[test]
    fn image_only_and_empty_messages() {
        assert_eq!(title_for_message(&message("   ", 1)).unwrap(), IMAGE_TITLE);
        assert_eq!(
            title_for_message(&message("Let's explore flights to Paris.", 1)).unwrap(),
            "Let's explore flights to Paris."
        );
        assert_eq!(title_for_message(&message(" ", 0)), None);
    }

    async fn add_user_message(h: &mut Harness, text: &str) {
        let item = ThreadItem::new(
            chatkit::ids::generate("msg"),
            h.thread.id.clone(),
            ItemKind::UserMessage(message(text, 0)),
        );
        h.store.add_thread_item(&h.ctx, &h.thread.id, &item).await.unwrap();
    }

    #[tokio::test]
    async fn sets_title_from_first_message_once() {
        let mut h = Harness::new().await;
        add_user_message(&mut h, "  I need wheelchair assistance at JFK. ").await;
        add_user_message(&mut h, "Second").await;
        maybe_set_title(&h.sink, None).await.unwrap();
        let events = h.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["type"], "thread.updated");
        assert_eq!(events[0]["thread"]["title"], "I need wheelchair assistance at JFK.");
        assert_eq!(events[0]["thread"]["id"], h.thread.id.as_str());
        let stored = h.store.load_thread(&h.ctx, &h.thread.id).await.unwrap();
        assert_eq!(stored.title.as_deref(), Some("I need wheelchair assistance at JFK."));
        // Already titled: nothing more.
        maybe_set_title(&h.sink, None).await.unwrap();
        assert!(h.events().is_empty());
    }

    #[tokio::test]
    async fn never_overwrites_a_title_set_by_the_user_meanwhile() {
        let mut h = Harness::new().await;
        add_user_message(&mut h, "Hello").await;
        let mut renamed = h.thread.clone();
        renamed.title = Some("My trip".into());
        h.store.save_thread(&h.ctx, &renamed).await.unwrap();
        maybe_set_title(&h.sink, None).await.unwrap();
        assert!(h.events().is_empty());
        assert_eq!(h.store.load_thread(&h.ctx, &h.thread.id).await.unwrap().title.as_deref(), Some("My trip"));
    }

    #[tokio::test]
    async fn uses_the_whole_thread_it_is_given_instead_of_loading() {
        let mut h = Harness::new().await;
        add_user_message(&mut h, "Stored message").await;
        let given =
            ThreadItem::new("msg_given", h.thread.id.clone(), ItemKind::UserMessage(message(" Given  message ", 0)));
        maybe_set_title(&h.sink, Some(&[given])).await.unwrap();
        let events = h.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["thread"]["title"], "Given message");
        // A thread known to have no user message gets no title.
        let mut h = Harness::new().await;
        add_user_message(&mut h, "Stored message").await;
        maybe_set_title(&h.sink, Some(&[])).await.unwrap();
        assert!(h.events().is_empty());
    }

    #[tokio::test]
    async fn no_user_message_no_title() {
        let mut h = Harness::new().await;
        h.sink
            .send(ThreadStreamEvent::ItemDone { item: crate::actions::assistant_message_item(&h.thread.id, "hi") })
            .await
            .unwrap();
        h.events();
        maybe_set_title(&h.sink, None).await.unwrap();
        assert!(h.events().is_empty());
    }
}
