//! Send rates: `count/period` limits.

use serde::Deserialize;
use std::time::Duration;

/// `count / period`: at most `count` sends in any window of `period` (a
/// sliding window; the same on both stores, see `coord`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("expected \"<count>/<s|min|h>\" such as \"1/s\" or \"20/min\", found {s:?}");
        let (count, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(bad());
        }
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => humantime::parse_duration(other).map_err(|_| bad())?,
        };
        Ok(Rate { count, per })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "1/s".parse::<Rate>().unwrap(),
            Rate {
                count: 1,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(
            "20/min".parse::<Rate>().unwrap(),
            Rate {
                count: 20,
                per: Duration::from_secs(60)
            }
        );
        assert!("0/s".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }
}
