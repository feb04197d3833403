//! `[time_intervals.<name>]`: on-call hours and maintenance windows, as
//! Alertmanager's `time_intervals` spell them (`weekdays`, `times`,
//! `days_of_month`, `months`, `years`, each a list of values or `a:b`
//! ranges; a field left out matches any time), in an IANA time zone with
//! its daylight-saving changes. Parsed and checked at load; a route's
//! `active_during` / `muted_during` name them.

use super::error::err;
use super::error::ConfigError;
use serde::Deserialize;

/// As written in TOML.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    #[serde(default)]
    pub times: Vec<String>,
    #[serde(default)]
    pub weekdays: Vec<String>,
    #[serde(default)]
    pub days_of_month: Vec<String>,
    #[serde(default)]
    pub months: Vec<String>,
    #[serde(default)]
    pub years: Vec<String>,
    /// IANA name, e.g. `Europe/Paris`; default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Filled by validation.
    #[serde(skip)]
    pub parsed: Option<TimeInterval>,
}

/// A checked interval.
#[derive(Debug, Clone)]
pub struct TimeInterval {
    /// Minutes since midnight, `[start, end)`.
    times: Vec<(u16, u16)>,
    /// 1 = Monday … 7 = Sunday, inclusive.
    weekdays: Vec<(i8, i8)>,
    /// 1…31, or negative from the month's end (-1 = last day), inclusive.
    days_of_month: Vec<(i8, i8)>,
    /// 1…12, inclusive.
    months: Vec<(i8, i8)>,
    years: Vec<(i16, i16)>,
    zone: jiff::tz::TimeZone,
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `a` or `a:b`, each side read by `one`.
fn range<T: Copy + PartialOrd>(s: &str, one: impl Fn(&str) -> Option<T>) -> Option<(T, T)> {
    let s = s.trim();
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (one(a.trim())?, one(b.trim())?),
        None => {
            let v = one(s)?;
            (v, v)
        }
    };
    Some((a, b))
}

fn named(list: &[&str], s: &str) -> Option<i8> {
    let lower = s.to_ascii_lowercase();
    list.iter()
        .position(|n| *n == lower)
        .map(|i| i as i8 + 1)
        .or_else(|| {
            s.parse::<i8>()
                .ok()
                .filter(|n| (1..=list.len() as i8).contains(n))
        })
}

/// `HH:MM`, 00:00 to 24:00.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl TimeIntervalConfig {
    /// Checks every field, naming the key of what is wrong.
    pub fn parse(&self, key: &str, errors: &mut Vec<ConfigError>) -> Option<TimeInterval> {
        let before = errors.len();
        let mut each = |field: &str, values: &[String], f: &dyn Fn(&str) -> Option<String>| {
            for (i, v) in values.iter().enumerate() {
                if let Some(problem) = f(v) {
                    errors.push(err(format!("{key}.{field}[{i}]"), problem));
                }
            }
        };
        let mut times = Vec::new();
        for v in &self.times {
            match v
                .split_once('-')
                .and_then(|(a, b)| Some((minutes(a.trim())?, minutes(b.trim())?)))
            {
                Some((a, b)) if a < b => times.push((a, b)),
                _ => {}
            }
        }
        each("times", &self.times, &|v| {
            let ok = v
                .split_once('-')
                .and_then(|(a, b)| Some((minutes(a.trim())?, minutes(b.trim())?)))
                .is_some_and(|(a, b)| a < b);
            (!ok).then(|| {
                format!("{v:?}: a range \"HH:MM-HH:MM\" within 00:00-24:00, start before end")
            })
        });
        let weekdays: Vec<_> = self
            .weekdays
            .iter()
            .filter_map(|v| range(v, |s| named(&WEEKDAYS, s)))
            .collect();
        each("weekdays", &self.weekdays, &|v| {
            range(v, |s| named(&WEEKDAYS, s))
                .filter(|(a, b)| a <= b)
                .is_none()
                .then(|| format!("{v:?}: a day (\"monday\") or a range (\"monday:friday\")"))
        });
        let day = |s: &str| {
            s.parse::<i8>()
                .ok()
                .filter(|d| (1..=31).contains(d) || (-31..=-1).contains(d))
        };
        let days_of_month: Vec<_> = self
            .days_of_month
            .iter()
            .filter_map(|v| range(v, day))
            .collect();
        each("days_of_month", &self.days_of_month, &|v| {
            range(v, day)
                .filter(|(a, b)| (a.signum() == b.signum() && a <= b) || (*a > 0 && *b < 0))
                .is_none()
                .then(|| format!("{v:?}: 1 to 31, or -1 (the last day) to -31, or a range \"1:7\""))
        });
        let months: Vec<_> = self
            .months
            .iter()
            .filter_map(|v| range(v, |s| named(&MONTHS, s)))
            .collect();
        each("months", &self.months, &|v| {
            range(v, |s| named(&MONTHS, s))
                .filter(|(a, b)| a <= b)
                .is_none()
                .then(|| {
                    format!("{v:?}: a month (\"january\" or 1) or a range (\"january:march\")")
                })
        });
        let year = |s: &str| s.parse::<i16>().ok().filter(|y| (1970..=9999).contains(y));
        let years: Vec<_> = self.years.iter().filter_map(|v| range(v, year)).collect();
        each("years", &self.years, &|v| {
            range(v, year)
                .filter(|(a, b)| a <= b)
                .is_none()
                .then(|| format!("{v:?}: a year or a range (\"2026:2027\")"))
        });
        let zone = match self.timezone.as_deref() {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => match jiff::tz::TimeZone::get(name) {
                Ok(z) => z,
                Err(_) => {
                    errors.push(err(
                        format!("{key}.timezone"),
                        format!("{name:?} is not a known IANA time zone (e.g. \"Europe/Paris\", \"UTC\")"),
                    ));
                    return None;
                }
            },
        };
        (errors.len() == before).then_some(TimeInterval {
            times,
            weekdays,
            days_of_month,
            months,
            years,
            zone,
        })
    }
}

impl TimeInterval {
    /// Whether the instant `at` falls in the interval (in its time zone).
    pub fn contains(&self, at: jiff::Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let date = local.date();
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let within = |list: &[(i8, i8)], v: i8| {
            list.is_empty() || list.iter().any(|(a, b)| (*a..=*b).contains(&v))
        };
        if !self.times.is_empty() && !self.times.iter().any(|(a, b)| (*a..*b).contains(&minute)) {
            return false;
        }
        if !within(&self.weekdays, local.weekday().to_monday_one_offset()) {
            return false;
        }
        if !within(&self.months, date.month()) {
            return false;
        }
        if !self.years.is_empty()
            && !self
                .years
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&date.year()))
        {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let last = date.days_in_month();
            let abs = |d: i8| if d < 0 { last + 1 + d } else { d };
            let day = date.day();
            if !self
                .days_of_month
                .iter()
                .any(|(a, b)| (abs(*a)..=abs(*b)).contains(&day))
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(toml: &str) -> Result<TimeInterval, String> {
        let c: TimeIntervalConfig = toml::from_str(toml).unwrap();
        let mut errors = Vec::new();
        c.parse("time_intervals.t", &mut errors).ok_or_else(|| {
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn business_hours_in_paris_follow_daylight_saving() {
        let i = interval("weekdays = [\"monday:friday\"]\ntimes = [\"08:00-18:00\"]\ntimezone = \"Europe/Paris\"").unwrap();
        // Winter: Paris is UTC+1. 07:30 UTC = 08:30 in Paris.
        assert!(i.contains(at("2026-01-05T07:30:00Z")));
        assert!(!i.contains(at("2026-01-05T06:30:00Z")));
        // Summer: UTC+2. 06:30 UTC = 08:30 in Paris (the same UTC time was
        // outside in winter).
        assert!(i.contains(at("2026-07-06T06:30:00Z")));
        assert!(!i.contains(at("2026-07-06T16:30:00Z")), "18:30 in Paris");
        // The change itself: Sunday 29 March 2026, 02:00 → 03:00. The
        // Monday after, 08:00 Paris is 06:00 UTC.
        assert!(i.contains(at("2026-03-30T06:00:00Z")));
        assert!(!i.contains(at("2026-03-30T05:59:00Z")));
        // A day boundary: Friday 23:30 UTC is Saturday 00:30 in Paris.
        let weekend =
            interval("weekdays = [\"saturday:sunday\"]\ntimezone = \"Europe/Paris\"").unwrap();
        assert!(weekend.contains(at("2026-01-09T23:30:00Z")));
        assert!(!weekend.contains(at("2026-01-09T22:30:00Z")));
    }

    #[test]
    fn days_months_and_years() {
        let i = interval("days_of_month = [\"-1\"]\nmonths = [\"february\"]\nyears = [\"2028\"]")
            .unwrap();
        assert!(
            i.contains(at("2028-02-29T12:00:00Z")),
            "the last day of a leap February"
        );
        assert!(!i.contains(at("2028-02-28T12:00:00Z")));
        assert!(!i.contains(at("2027-02-28T12:00:00Z")));
        let first_week = interval("days_of_month = [\"1:7\"]\ntimes = [\"22:00-24:00\"]").unwrap();
        assert!(first_week.contains(at("2026-12-07T23:59:00Z")));
        assert!(!first_week.contains(at("2026-12-08T00:00:00Z")));
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let e = interval("times = [\"25:00-26:00\"]").unwrap_err();
        assert!(e.contains("time_intervals.t.times[0]"), "{e}");
        let e = interval("timezone = \"Mars/Olympus\"").unwrap_err();
        assert!(
            e.contains("time_intervals.t.timezone: \"Mars/Olympus\" is not a known IANA time zone"),
            "{e}"
        );
        let e = interval("weekdays = [\"friday:monday\", \"funday\"]").unwrap_err();
        assert!(
            e.contains("weekdays[0]") && e.contains("weekdays[1]"),
            "{e}"
        );
        let e = interval("times = [\"18:00-08:00\"]").unwrap_err();
        assert!(e.contains("start before end"), "{e}");
        assert!(interval("months = [\"13\"]").is_err());
        assert!(interval("days_of_month = [\"0\"]").is_err());
    }
}
