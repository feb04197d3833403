//! The case conditions of a route (`case_priority`, `case_status`,
//! `case_verdict`, `assignees`, `tags`, `case_mode`).

use super::values::{any_eq, list, shown};
use crate::config::When;
use crate::enrich::Case;
use crate::event::Event;

/// The case conditions (`case_priority`, `case_status`, `case_verdict`,
/// `assignees`, `tags`, `case_mode`): `Err` names the first that does not
/// hold and what the case had.
pub(super) fn explain_case(
    when: &When,
    event: &Event,
    case: Option<&Case>,
    held: &mut Vec<String>,
) -> Result<(), String> {
    let missing = |key: &str, wanted: &Vec<String>| {
        if event.subject() != crate::event::Subject::Case {
            format!(
                "{key} = {}: the event is about {} {}, not a case",
                list(wanted),
                if event.subject() == crate::event::Subject::Alert {
                    "an"
                } else {
                    "a"
                },
                event.subject().as_str()
            )
        } else {
            format!(
                "{key} = {}: the case's details are unavailable",
                list(wanted)
            )
        }
    };
    let one = |key: &str, wanted: &Vec<String>, value: Option<&str>| -> Result<(), String> {
        match case {
            None => Err(missing(key, wanted)),
            Some(_) if any_eq(wanted, value) => Ok(()),
            Some(_) => Err(format!(
                "{key} = {}: the case's {} is {}",
                list(wanted),
                key.trim_start_matches("case_"),
                shown(value)
            )),
        }
    };
    let many = |key: &str, wanted: &Vec<String>, values: Option<&Vec<String>>| match (case, values)
    {
        (None, _) | (_, None) => Err(missing(key, wanted)),
        (Some(_), Some(v)) if v.iter().any(|x| any_eq(wanted, Some(x))) => Ok(()),
        (Some(_), Some(v)) => Err(format!(
            "{key} = {}: the case's {key} are {}",
            list(wanted),
            if v.is_empty() {
                "none".to_owned()
            } else {
                list(v)
            }
        )),
    };
    if let Some(w) = &when.case.priority {
        one("case_priority", w, case.and_then(|c| c.priority.as_deref()))?;
        held.push("case_priority".into());
    }
    if let Some(w) = &when.case.status {
        one("case_status", w, case.and_then(|c| c.status.as_deref()))?;
        held.push("case_status".into());
    }
    if let Some(w) = &when.case.verdict {
        one("case_verdict", w, case.and_then(|c| c.verdict.as_deref()))?;
        held.push("case_verdict".into());
    }
    if let Some(w) = &when.case.assignees {
        many("assignees", w, case.map(|c| &c.assignees))?;
        held.push("assignees".into());
    }
    if let Some(w) = &when.case.tags {
        many("tags", w, case.map(|c| &c.tags))?;
        held.push("tags".into());
    }
    if let Some(w) = &when.case.mode {
        // The webhook says it too: this holds without the case's details.
        let manual = case.and_then(|c| c.manual).or_else(|| {
            (event.subject() == crate::event::Subject::Case)
                .then(|| event.raw().pointer("/attributes/manual")?.as_bool())
                .flatten()
        });
        let mode = manual.map(|m| if m { "manual" } else { "automatic" });
        if !any_eq(w, mode) {
            return Err(match mode {
                None => missing("case_mode", w),
                Some(m) => format!("case_mode = {}: the case is {m}", list(w)),
            });
        }
        held.push("case_mode".into());
    }
    Ok(())
}
