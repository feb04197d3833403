//! A route's conditions (`[routes.when]`, a silence's matcher). The case
//! conditions are a group of their own; the TOML keys stay flat
//! (`case_priority`, `assignees`, …), read by one hand-written visitor so
//! that an unknown key is still refused with the list of known ones
//! (`#[serde(flatten)]` cannot be combined with `deny_unknown_fields`).

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Conditions of a route; all present ones must hold. Name lists match
/// case-insensitively; a list matches when any of its entries does.
#[derive(Debug, Clone, Default)]
pub struct When {
    /// `type`: the event's type.
    pub type_: Option<Vec<String>>,
    pub action: Option<Vec<String>>,
    pub urgency_min: Option<u32>,
    pub urgency_max: Option<u32>,
    /// Recurrence: at least this many similar alerts (the alert's `similar`).
    pub similar_min: Option<u32>,
    /// The highest criticality (0–100) among the alert's assets, as the
    /// origin's asset API describes them.
    pub asset_criticality_min: Option<u32>,
    pub status: Option<Vec<String>>,
    pub rule: Option<Vec<String>>,
    pub entity: Option<Vec<String>>,
    pub alert_type: Option<Vec<String>>,
    /// Asset uuids; any of the alert's `assets`.
    pub asset: Option<Vec<String>>,
    /// Community uuids (`metadata.community_uuid` or the alert's).
    pub community: Option<Vec<String>>,
    /// Fields an `updated` event changed, e.g. `["status"]` (matches
    /// `status`/`status_name`) or `["urgency"]`.
    pub updated: Option<Vec<String>>,
    /// What the case must be (keys `case_priority`, `case_status`,
    /// `case_verdict`, `assignees`, `tags`, `case_mode`).
    pub case: CaseWhen,
    /// Holds when these conditions do not all hold.
    pub not: Option<Box<When>>,
}

/// The case conditions of a [`When`].
#[derive(Debug, Clone, Default)]
pub struct CaseWhen {
    /// `case_priority`, `case_status`, `case_verdict`: by name.
    pub priority: Option<Vec<String>>,
    pub status: Option<Vec<String>>,
    pub verdict: Option<Vec<String>>,
    /// Any of the case's assignees (as the case API names them).
    pub assignees: Option<Vec<String>>,
    /// Any of the case's tags.
    pub tags: Option<Vec<String>>,
    /// `case_mode`: `manual` or `automatic`, how the case was created.
    pub mode: Option<Vec<String>>,
}

/// The keys, in the order an unknown key's error lists them.
const FIELDS: &[&str] = &[
    "type",
    "action",
    "urgency_min",
    "urgency_max",
    "similar_min",
    "asset_criticality_min",
    "status",
    "rule",
    "entity",
    "alert_type",
    "asset",
    "community",
    "updated",
    "case_priority",
    "case_status",
    "case_verdict",
    "assignees",
    "tags",
    "case_mode",
    "not",
];

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("When", FIELDS, WhenVisitor)
    }
}

/// A key of [`FIELDS`], refused while it is read when it is none of them
/// (as serde's derive does, so the error's path stops at the table).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        FIELDS
            .iter()
            .find(|k| **k == v)
            .copied()
            .ok_or_else(|| E::unknown_field(v, FIELDS))
    }
}

struct WhenVisitor;

impl<'de> Visitor<'de> for WhenVisitor {
    type Value = When;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct When")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<When, A::Error> {
        let mut w = When::default();
        while let Some(key) = map.next_key_seed(Key)? {
            let c = &mut w.case;
            match key {
                "type" => take(&mut map, key, &mut w.type_)?,
                "action" => take(&mut map, key, &mut w.action)?,
                "urgency_min" => take(&mut map, key, &mut w.urgency_min)?,
                "urgency_max" => take(&mut map, key, &mut w.urgency_max)?,
                "similar_min" => take(&mut map, key, &mut w.similar_min)?,
                "asset_criticality_min" => take(&mut map, key, &mut w.asset_criticality_min)?,
                "status" => take(&mut map, key, &mut w.status)?,
                "rule" => take(&mut map, key, &mut w.rule)?,
                "entity" => take(&mut map, key, &mut w.entity)?,
                "alert_type" => take(&mut map, key, &mut w.alert_type)?,
                "asset" => take(&mut map, key, &mut w.asset)?,
                "community" => take(&mut map, key, &mut w.community)?,
                "updated" => take(&mut map, key, &mut w.updated)?,
                "case_priority" => take(&mut map, key, &mut c.priority)?,
                "case_status" => take(&mut map, key, &mut c.status)?,
                "case_verdict" => take(&mut map, key, &mut c.verdict)?,
                "assignees" => take(&mut map, key, &mut c.assignees)?,
                "tags" => take(&mut map, key, &mut c.tags)?,
                "case_mode" => take(&mut map, key, &mut c.mode)?,
                _ => take(&mut map, key, &mut w.not)?,
            }
        }
        Ok(w)
    }
}

/// One key's value into its slot; a key given twice is refused.
fn take<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    key: &'static str,
    slot: &mut Option<T>,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(key));
    }
    *slot = map.next_value::<Option<T>>()?;
    Ok(())
}

impl When {
    /// A silence's matcher: the `[routes.when]` keys as the contents of a
    /// TOML inline table (`rule = ["Noisy rule"], entity = ["Lab"]`). The
    /// error names the key, or says what is wrong with the TOML.
    pub fn from_inline(text: &str) -> Result<When, String> {
        let table: toml::Table = toml::from_str(&format!("when = {{ {text} }}"))
            .map_err(|e| format!("not a TOML inline table's contents: {}", e.message()))?;
        let value = table
            .get("when")
            .cloned()
            .unwrap_or(toml::Value::Table(Default::default()));
        let when: When = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        })?;
        Ok(when)
    }

    /// Whether a condition (here or under `not`) needs the alert's assets.
    pub fn needs_assets(&self) -> bool {
        self.asset_criticality_min.is_some() || self.not.as_ref().is_some_and(|n| n.needs_assets())
    }

    /// Whether any condition needs the enriched case.
    pub fn needs_case(&self) -> bool {
        self.case.priority.is_some()
            || self.case.status.is_some()
            || self.case.verdict.is_some()
            || self.case.assignees.is_some()
            || self.case.tags.is_some()
    }

    /// Whether any condition needs the enriched alert.
    pub fn needs_alert(&self) -> bool {
        self.urgency_min.is_some()
            || self.urgency_max.is_some()
            || self.similar_min.is_some()
            || self.asset_criticality_min.is_some()
            || self.rule.is_some()
            || self.entity.is_some()
            || self.alert_type.is_some()
            || self.asset.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_stay_flat_and_the_case_ones_are_grouped() {
        let w = When::from_inline(
            r#"type = ["case"], case_priority = ["High"], tags = ["a"], case_mode = ["manual"], urgency_min = 3, not = { rule = ["r"] }"#,
        )
        .unwrap();
        assert_eq!(w.type_, Some(vec!["case".to_owned()]));
        assert_eq!(w.case.priority, Some(vec!["High".to_owned()]));
        assert_eq!(w.case.tags, Some(vec!["a".to_owned()]));
        assert_eq!(w.case.mode, Some(vec!["manual".to_owned()]));
        assert_eq!(w.urgency_min, Some(3));
        assert_eq!(w.not.unwrap().rule, Some(vec!["r".to_owned()]));
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_known_ones() {
        let e = When::from_inline(r#"rule = ["r"], colour = ["red"]"#).unwrap_err();
        assert!(
            e.contains("unknown field `colour`, expected one of `type`, `action`"),
            "{e}"
        );
        assert!(e.contains("`case_mode`, `not`"), "{e}");
        let e = When::from_inline(r#"not = { colour = 1 }"#).unwrap_err();
        assert!(
            e.contains("not") && e.contains("unknown field `colour`"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_names_its_key() {
        let e = When::from_inline(r#"urgency_min = "high""#).unwrap_err();
        assert!(e.starts_with("urgency_min: invalid type: string"), "{e}");
        let e = When::from_inline(r#"tags = "a""#).unwrap_err();
        assert!(e.starts_with("tags: invalid type"), "{e}");
    }
}
