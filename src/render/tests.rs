//! The dates and times messages show.

use super::facts::{format_epoch, format_iso};

#[test]
fn time_formats() {
    assert_eq!(
        format_iso("2022-01-14T15:06:57.398005+00:00").as_deref(),
        Some("2022-01-14 15:06:57 UTC")
    );
    assert_eq!(
        format_iso("2022-01-14T15:06:57Z").as_deref(),
        Some("2022-01-14 15:06:57 UTC")
    );
    assert_eq!(
        format_iso("2022-01-14T15:06:57+02:00").as_deref(),
        Some("2022-01-14 15:06:57 UTC+02:00")
    );
    assert_eq!(format_iso("<script>"), None);
    assert_eq!(
        format_epoch(1642172817).as_deref(),
        Some("2022-01-14 15:06:57 UTC")
    );
}

#[test]
fn odd_times_are_none_not_a_panic() {
    for text in [
        "2022-01-14T15:06:5é",
        "2022-01-14T15:06:57é",
        "2022-01-14T15:0é:57Z",
        "éééééééééééééééééééé",
        "2022-01-14",
        "",
        "2022-01-14T15:06:57.ééé",
    ] {
        assert_eq!(format_iso(text), None, "{text:?}");
    }
    assert_eq!(format_epoch(253_402_300_800), None);
    assert_eq!(format_epoch(i64::MAX), None);
    assert_eq!(format_epoch(-1), None);
    assert_eq!(
        format_epoch(4_102_444_800).as_deref(),
        Some("2100-01-01 00:00:00 UTC")
    );
}
