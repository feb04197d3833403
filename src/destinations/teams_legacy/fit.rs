//! teams_legacy: its service's size limits, applied to a built-in message after
//! rendering (see `render::fit`).

use crate::render::fit::cut;
use serde_json::Value;

pub fn fit(v: &mut Value) {
    if v.to_string().len() <= crate::destinations::teams::fit::TEAMS_BYTES {
        return;
    }
    cut(v, "/sections/0/text", 2_000);
    if let Some(facts) = v
        .pointer_mut("/sections/0/facts")
        .and_then(Value::as_array_mut)
    {
        for f in facts {
            cut(f, "/value", 500);
        }
    }
}
