//! From stored rows to values and back, the same for both SQL stores: JSON documents in `TEXT`
//! columns, and pages read as `limit + 1` rows so the extra row tells whether there is more.

use chatkit::StoreError;
use chatkit::store::Versioned;
use chatkit::types::{Order, Page};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Serializes a value to the JSON text stored in `data` columns.
pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

/// Parses a stored JSON column; `what` names the document in the error.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Parses the stored JSON of a row a lookup found; no row → `missing()`.
pub(crate) fn decode_found<T: DeserializeOwned>(
    what: &str,
    row: Option<String>,
    missing: impl FnOnce() -> StoreError,
) -> Result<T, StoreError> {
    match row {
        Some(text) => decode(what, &text),
        None => Err(missing()),
    }
}

/// A versioned JSON value from its `(data, version)` row; no row → `None`.
pub(crate) fn versioned(what: &str, row: Option<(String, i64)>) -> Result<Option<Versioned>, StoreError> {
    match row {
        Some((text, version)) => Ok(Some(Versioned { value: decode(what, &text)?, version })),
        None => Ok(None),
    }
}

/// The four statements that list one table's rows as a page: in either order, from the start or
/// after a cursor row.
pub(crate) struct ListStatements {
    pub(crate) asc: &'static str,
    pub(crate) desc: &'static str,
    pub(crate) asc_after: &'static str,
    pub(crate) desc_after: &'static str,
}

impl ListStatements {
    /// The statement listing in `order`, after a cursor when `after_cursor`.
    pub(crate) fn pick(&self, order: Order, after_cursor: bool) -> &'static str {
        match (order, after_cursor) {
            (Order::Asc, false) => self.asc,
            (Order::Desc, false) => self.desc,
            (Order::Asc, true) => self.asc_after,
            (Order::Desc, true) => self.desc_after,
        }
    }
}

/// The `LIMIT` to bind: one more than asked, so `has_more` can be computed.
pub(crate) fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1).min(i64::MAX - 1) + 1
}

/// Builds a page from up to `limit + 1` `(id, value)` rows in page order.
pub(crate) fn page_from_rows<T>(rows: Vec<(String, T)>, limit: usize) -> Page<T> {
    let has_more = rows.len() > limit;
    let mut data = Vec::with_capacity(rows.len().min(limit));
    let mut last_id = None;
    for (id, value) in rows.into_iter().take(limit) {
        data.push(value);
        last_id = Some(id);
    }
    Page { data, has_more, after: if has_more { last_id } else { None } }
}

/// Decodes the JSON of `(id, data)` rows, keeping the ids for [`page_from_rows`].
pub(crate) fn decode_rows<T: DeserializeOwned>(
    what: &str,
    rows: Vec<(String, String)>,
) -> Result<Vec<(String, T)>, StoreError> {
    rows.into_iter().map(|(id, data)| Ok((id, decode(what, &data)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_from_extra_row() {
        let rows = vec![("a".to_string(), 1), ("b".to_string(), 2), ("c".to_string(), 3)];
        let p = page_from_rows(rows.clone(), 2);
        assert_eq!((p.data, p.has_more, p.after), (vec![1, 2], true, Some("b".to_string())));
        let p = page_from_rows(rows, 3);
        assert_eq!((p.data, p.has_more, p.after), (vec![1, 2, 3], false, None));
        assert_eq!(fetch_limit(20), 21);
        assert_eq!(fetch_limit(usize::MAX), i64::MAX);
    }
}
