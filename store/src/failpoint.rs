//! Named pause points for crash tests.
//!
//! `TAPLINE_TEST_PAUSE_AT=point[:n]` makes the n-th arrival (default the first) at
//! `point` print `tapline: paused at <point>` to stderr and block that thread or task
//! forever, so a test can `kill -9` the gateway at exactly that moment. The points are
//! `before_fsync`, `after_fsync` (spool journal), `mid_upload` (events stored, seals
//! not), `before_reclaim` (everything stored, spool file not yet deleted) and
//! `retention_mid_delete` (retention's entry signed, its first object deleted). Unset, a
//! point costs one relaxed load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a pause point.
pub const PAUSE_ENV: &str = "TAPLINE_TEST_PAUSE_AT";

struct Armed {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var(PAUSE_ENV).ok()?;
            let (point, nth) = match v.split_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
                None => (v, 1),
            };
            Some(Armed {
                point,
                nth: nth.max(1),
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

fn hit(point: &str) -> bool {
    match armed() {
        Some(a) if a.point == point => a.seen.fetch_add(1, Ordering::Relaxed) + 1 == a.nth,
        _ => false,
    }
}

/// Blocks the calling thread forever if `point` is armed and this is its n-th arrival.
pub fn pause_blocking(point: &str) {
    if hit(point) {
        eprintln!("tapline: paused at {point}");
        loop {
            std::thread::park();
        }
    }
}

/// Blocks the calling task forever if `point` is armed and this is its n-th arrival.
pub async fn pause(point: &str) {
    if hit(point) {
        eprintln!("tapline: paused at {point}");
        std::future::pending::<()>().await;
    }
}
