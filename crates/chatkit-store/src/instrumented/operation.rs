//! [`Operation`]: the store operations [`super::InstrumentedStore`] measures, one per [`Store`] method,
//! each with the `operation` label value it is measured under (the method's name). A fixed set, so a
//! store can keep one histogram per operation in an array.
//!
//! [`Store`]: chatkit::store::Store

/// Declares [`Operation`] with its variants' label values, and the number of variants.
macro_rules! operations {
    ($($variant:ident => $name:literal,)*) => {
        /// One measured store operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Operation {
            $($variant,)*
        }

        impl Operation {
            /// How many operations there are (every variant's `as usize` is below it).
            pub(super) const COUNT: usize = [$($name,)*].len();

            /// The `operation` label value: the name of the [`chatkit::store::Store`] method.
            pub(super) fn name(self) -> &'static str {
                match self {
                    $(Operation::$variant => $name,)*
                }
            }
        }
    };
}

operations! {
    LoadThread => "load_thread",
    SaveThread => "save_thread",
    CreateThreadWithItem => "create_thread_with_item",
    UpdateThread => "update_thread",
    LoadThreads => "load_threads",
    DeleteThread => "delete_thread",
    PruneTombstones => "prune_tombstones",
    LoadThreadItems => "load_thread_items",
    AddThreadItem => "add_thread_item",
    SaveItem => "save_item",
    LoadItem => "load_item",
    DeleteThreadItem => "delete_thread_item",
    DeleteItemsAfter => "delete_items_after",
    CreateAttachment => "create_attachment",
    SaveAttachment => "save_attachment",
    LoadAttachment => "load_attachment",
    DeleteAttachment => "delete_attachment",
    SaveAttachmentData => "save_attachment_data",
    LoadAttachmentData => "load_attachment_data",
    AttachmentBytes => "attachment_bytes",
    RecordUsage => "record_usage",
    UsageByModel => "usage_by_model",
    KvGet => "kv_get",
    KvCompareAndSet => "kv_compare_and_set",
    KvDelete => "kv_delete",
    LockThread => "lock_thread",
    Ping => "ping",
    CheckWritable => "check_writable",
    Close => "close",
}
