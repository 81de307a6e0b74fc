//! Times as the viewer prints them.

/// A wall-clock time in UTC, to the millisecond.
pub fn clock(ts_ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ts_ns.div_euclid(1_000_000_000),
        ts_ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
    .unwrap_or_default()
}

/// An offset from the session start: `+1:02.345` or `+12.345s`.
pub fn offset(ns: i64) -> String {
    let ms = ns.max(0) / 1_000_000;
    let (m, s, ms) = (ms / 60_000, (ms / 1000) % 60, ms % 1000);
    if m > 0 {
        format!("+{m}:{s:02}.{ms:03}")
    } else {
        format!("+{s}.{ms:03}s")
    }
}

/// A duration: `850µs`, `12ms`, `3.4s`, `2m05s`, `1h02m`.
pub fn duration(ns: i64) -> String {
    let ns = ns.max(0);
    match ns {
        n if n < 1_000_000 => format!("{}µs", n / 1000),
        n if n < 1_000_000_000 => format!("{}ms", n / 1_000_000),
        n if n < 60_000_000_000 => format!("{:.1}s", n as f64 / 1e9),
        n if n < 3_600_000_000_000 => {
            format!("{}m{:02}s", n / 60_000_000_000, (n / 1_000_000_000) % 60)
        }
        n => format!(
            "{}h{:02}m",
            n / 3_600_000_000_000,
            (n / 60_000_000_000) % 60
        ),
    }
}
