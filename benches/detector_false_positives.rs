//! How often the boundary-free detectors (card numbers, SSNs, emails) flag ordinary
//! values that are none of these, on a corpus of ordinary text: the license texts
//! Debian ships (prose with numbers, dates and section marks), and generated values
//! of the kinds a database returns all day (timestamps, UUIDs, order ids, amounts,
//! hashes, ISBNs, long numeric ids). Each category reports the share of values
//! flagged per detector, with an example, so a team can judge what it would mask
//! wrongly. Everything is deterministic: the same numbers every run.
//!
//! Run: cargo bench --bench detector_false_positives   (VALUES=20000 per category)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;
use support::env_num;
use tapline_recorder::policy::mask::detectors::Detector;
use tapline_recorder::policy::mask::strategy::Strategy;
use tapline_recorder::policy::mask::value_masker::{Masked, ValueMasker};

/// A small deterministic generator (xorshift64*), so every run sees the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|i| {
                let d = if i == 0 {
                    1 + self.below(9)
                } else {
                    self.below(10)
                };
                (b'0' + d as u8) as char
            })
            .collect()
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| b"0123456789abcdef"[self.below(16) as usize] as char)
            .collect()
    }
}

fn categories(n: usize) -> Vec<(&'static str, Vec<String>)> {
    let mut r = Rng(0x7A9E_11FE_5EED_0001);
    let mut make = |f: &mut dyn FnMut(&mut Rng, usize) -> String| -> Vec<String> {
        (0..n).map(|i| f(&mut r, i)).collect()
    };
    let mut out = vec![
        (
            "timestamps",
            make(&mut |r, _| {
                format!(
                    "2026-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
                    1 + r.below(12),
                    1 + r.below(28),
                    r.below(24),
                    r.below(60),
                    r.below(60),
                    r.below(1_000_000)
                )
            }),
        ),
        (
            "uuids",
            make(&mut |r, _| {
                format!(
                    "{}-{}-4{}-a{}-{}",
                    r.hex(8),
                    r.hex(4),
                    r.hex(3),
                    r.hex(3),
                    r.hex(12)
                )
            }),
        ),
        (
            "order ids",
            make(&mut |r, i| format!("ORD-2026-{:06} ({} items)", i, 1 + r.below(9))),
        ),
        (
            "amounts",
            make(&mut |r, _| {
                format!(
                    "EUR {},{:03}.{:02}",
                    r.below(1000),
                    r.below(1000),
                    r.below(100)
                )
            }),
        ),
        ("sha256", make(&mut |r, _| r.hex(64))),
        (
            "isbn-13",
            make(&mut |r, _| {
                format!(
                    "978-{}-{}-{}-{}",
                    r.below(10),
                    r.digits(2),
                    r.digits(6),
                    r.below(10)
                )
            }),
        ),
        (
            "epoch ms",
            make(&mut |r, _| format!("{}", 1_700_000_000_000u64 + r.below(100_000_000_000))),
        ),
        (
            "durations",
            make(&mut |r, _| format!("query took {} ns", r.digits(9))),
        ),
        (
            "log lines",
            make(&mut |r, i| {
                format!(
                    "req={} user={} status=200 bytes={} path=/api/v2/items/{}",
                    r.hex(16),
                    i,
                    r.below(1 << 20),
                    r.digits(7)
                )
            }),
        ),
        ("10-digit ids", make(&mut |r, _| r.digits(10))),
        ("16-digit ids", make(&mut |r, _| r.digits(16))),
        (
            // Snowflake-style ids: milliseconds since an epoch, a worker, a sequence.
            "snowflake ids",
            make(&mut |r, i| {
                let ms = 400_000_000_000u64 + r.below(60_000_000_000);
                format!("{}", (ms << 22) | (r.below(1024) << 12) | (i as u64 % 4096))
            }),
        ),
        ("20-digit ids", make(&mut |r, _| r.digits(20))),
    ];
    let mut prose = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/usr/share/common-licenses") {
        let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                prose.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    prose.truncate(n);
    if prose.is_empty() {
        println!(
            "(no /usr/share/common-licenses here: prose is left out; Debian's base-files has it)"
        );
    } else {
        out.insert(0, ("license prose", prose));
    }
    out
}

fn main() {
    let n = env_num("VALUES", 20_000) as usize;
    let names = ["credit_card", "us_ssn", "email"];
    let maskers: Vec<ValueMasker> = names
        .iter()
        .map(|d| {
            ValueMasker::new(vec![(
                Detector::parse(d).expect("a detector"),
                Strategy::Redact,
            )])
            .expect("compiles")
        })
        .collect();
    let all = ValueMasker::new(
        Detector::BUILT_IN
            .iter()
            .map(|d| (Detector::parse(d).expect("a detector"), Strategy::Redact))
            .collect(),
    )
    .expect("compiles");
    let cats = categories(n);
    println!("share of ordinary values flagged, {n} values per category (prose: lines):");
    println!("| category | values | credit_card | us_ssn | email | example flagged |");
    println!("|---|---|---|---|---|---|");
    let (mut total, mut flagged_any) = (0usize, 0usize);
    for (name, values) in &cats {
        let mut hits = [0usize; 3];
        let mut example = String::new();
        for v in values {
            let mut any = false;
            for (k, m) in maskers.iter().enumerate() {
                if m.mask(v) != Masked::Clean {
                    hits[k] += 1;
                    any = true;
                    if example.is_empty() {
                        example = format!(
                            "{} in `{}`",
                            names[k],
                            v.chars().take(60).collect::<String>()
                        );
                    }
                }
            }
            flagged_any += any as usize;
        }
        total += values.len();
        let pct = |h: usize| format!("{:.3} %", 100.0 * h as f64 / values.len() as f64);
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            values.len(),
            pct(hits[0]),
            pct(hits[1]),
            pct(hits[2]),
            if example.is_empty() {
                "none".into()
            } else {
                example
            }
        );
    }
    println!(
        "overall: {flagged_any} of {total} values flagged by one of the three ({:.3} %)",
        100.0 * flagged_any as f64 / total as f64
    );
    // Scanning speed over the same corpus, all built-in detectors.
    let start = Instant::now();
    let mut scanned = 0usize;
    for _ in 0..3 {
        for (_, values) in &cats {
            for v in values {
                std::hint::black_box(all.mask(v));
                scanned += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "scanning with all {} built-in detectors, one core: {:.2} M values/s ({:.0} ns/value)",
        Detector::BUILT_IN.len(),
        scanned as f64 / secs / 1e6,
        secs * 1e9 / scanned as f64
    );
}
