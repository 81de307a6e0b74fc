//! `tapline sessions`: the session list, filtered the way responders ask.

use crate::error::QueryError;
use chrono::{DateTime, NaiveDate, Utc};

/// Filters shared by `tapline sessions` and the replay browser.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub user: Option<String>,
    pub connection: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Sessions with any command or event text containing this (case-insensitive).
    pub contains: Option<String>,
}

/// Parses a point in time: RFC 3339 (`2026-11-21T10:00:00Z`), a date (`2026-11-21`,
/// midnight UTC), or an age (`90m`, `2h`, `7d`) meaning that long ago.
pub fn parse_time(flag: &'static str, text: &str) -> Result<DateTime<Utc>, QueryError> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    if let Ok(age) = humantime_like(t) {
        return Ok(Utc::now() - age);
    }
    Err(QueryError::BadArgument {
        flag,
        problem: format!(
            "`{text}` is not a time; use 2026-11-21, 2026-11-21T10:00:00Z or an age such as 2h or 7d"
        ),
    })
}

fn humantime_like(t: &str) -> Result<chrono::Duration, ()> {
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or(())?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| ())?;
    Ok(match unit {
        "s" => chrono::Duration::seconds(n),
        "m" | "min" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        "w" => chrono::Duration::weeks(n),
        _ => return Err(()),
    })
}

/// Quotes a string as an SQL literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ts_literal(t: &DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%S%.9fZ"))
}

impl SessionFilter {
    /// The WHERE clause over the `sessions` view (empty when nothing filters).
    pub fn where_clause(&self) -> String {
        let mut conds = Vec::new();
        if let Some(u) = &self.user {
            conds.push(format!("\"user\" = {}", literal(u)));
        }
        if let Some(c) = &self.connection {
            conds.push(format!("connection = {}", literal(c)));
        }
        if let Some(s) = &self.since {
            // A session counts if it was still running at `since`.
            conds.push(format!("(end_ts IS NULL OR end_ts >= {})", ts_literal(s)));
        }
        if let Some(u) = &self.until {
            conds.push(format!("start_ts <= {}", ts_literal(u)));
            conds.push(format!("date <= '{}'", u.date_naive().format("%Y-%m-%d")));
        }
        if let Some(text) = &self.contains {
            conds.push(format!(
                "session_id IN (SELECT DISTINCT session_id FROM events \
                 WHERE strpos(lower(coalesce(command, '') || chr(10) || coalesce(text, '')), lower({})) > 0)",
                literal(text)
            ));
        }
        if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        }
    }

    /// The SQL `tapline sessions` runs.
    pub fn listing_sql(&self) -> String {
        format!(
            "SELECT session_id, start_ts, end_ts, \"user\", connection, client_addr, database, \
             commands, errors, blocked, masked_values, events, bytes_from_client, bytes_from_server, state, end_reason \
             FROM sessions {} ORDER BY start_ts, session_id",
            self.where_clause()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms() {
        assert_eq!(
            parse_time("--since", "2026-11-21").unwrap().to_rfc3339(),
            "2026-11-21T00:00:00+00:00"
        );
        assert!(parse_time("--since", "2026-11-21T10:00:00Z").is_ok());
        let two_hours = parse_time("--since", "2h").unwrap();
        assert!((Utc::now() - two_hours).num_minutes() >= 119);
        let err = parse_time("--until", "yesterday").unwrap_err().to_string();
        assert!(err.contains("--until"), "{err}");
    }

    #[test]
    fn filters_quote_their_values() {
        let f = SessionFilter {
            user: Some("o'brien".into()),
            contains: Some("DROP".into()),
            ..Default::default()
        };
        let w = f.where_clause();
        assert!(w.contains("\"user\" = 'o''brien'"), "{w}");
        assert!(w.contains("lower('DROP')"), "{w}");
    }
}
