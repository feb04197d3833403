//! How a condition compares the event's values and shows them in a
//! reason.

use crate::event::Event;

/// The status an update event moved the alert to.
pub(super) fn update_status(event: &Event) -> Option<&str> {
    event.updated.as_ref()?.get("status_name")?.as_str()
}

/// Whether `value` is one of `list` (ASCII case-insensitively, trimmed).
pub(super) fn any_eq(list: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v.trim())))
}

/// Shows a list of values for a reason: `["a", "b"]`.
pub(super) fn list(values: &[String]) -> String {
    format!("{values:?}")
}

/// What a value was, for a reason: `"x"`, or `none`.
pub(super) fn shown(value: Option<&str>) -> String {
    value.map_or("none".to_owned(), |v| format!("{v:?}"))
}
