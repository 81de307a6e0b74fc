//! `tapline verify`: recompute every chain, check every seal, and hold the archive
//! against the gateways' ledgers.

use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tapline_query::open_context;
use tapline_query::verify::verify_session;
use tapline_store::TrustedKeys;
use tapline_store::verify::{Progress, VerifyOptions, verify_archive};

/// Recompute every session's hash chain, check every seal, and check the archive
/// against the gateways' signed ledgers.
///
/// Prints one line per session; for a broken one, the first seq where it breaks and
/// why: modified, missing, reordered or inserted event, truncated session, rewritten
/// chain or bad signature. Then one line per ledger, and one per segment or ledger
/// entry that is missing, altered or out of place. Exits 1 when anything fails.
///
/// Pin the gateway's public key with --pubkey; without it, the keys the gateways
/// published in the archive's keys/ folder are used (and the output says so).
///
/// Removals by `tapline archive retain` are read from the maintenance ledgers first
/// and excused only when a trusted key signed them: pass the retention key's .pub with
/// --pubkey too. Such sessions show as `retired: …` or `ok: N event(s) left …`.
///
/// The ledger's own newest entries, deleted together with the segments they list,
/// look like a gateway that stopped earlier. Keep the head `tapline gateway status`
/// prints somewhere else, and pin it with --expect-head to catch that.
///
/// Examples:
///   tapline verify --pubkey tapline.key.pub
///   tapline verify --pubkey gw.key.pub --expect-head gw-eu-1=3fa2c4…
///   tapline verify --session 01JD3Z8X5M4V6Q2N7K9T0R1S2W --pubkey tapline.key.pub
///   tapline verify --pubkey gw.key.pub --pubkey retention.key.pub --expect-head maintenance/retention=9c1e…
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
    /// Verify only this session (its chain and seals; the ledgers are not read).
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Trust seals made with this public key (repeatable).
    #[arg(long, value_name = "FILE")]
    pubkey: Vec<PathBuf>,
    /// GATEWAY=HASH: the ledger of GATEWAY must hold the entry with this hash (the
    /// `ledger head` of `tapline gateway status`, or at least its first 16 hex digits);
    /// maintenance/ACTOR=HASH pins a maintenance ledger (the hash retain prints).
    #[arg(long, value_name = "GATEWAY=HASH")]
    expect_head: Vec<String>,
    /// Ledger entries checked at once [default: twice the CPUs].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

fn parse_heads(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|h| {
            let (g, hash) = h.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--expect-head `{h}`: give GATEWAY=HASH, e.g. gw-eu-1=3fa2c41b…")
            })?;
            let hash = hash.trim().to_ascii_lowercase();
            if hash.len() < 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!(
                    "--expect-head `{h}`: the hash must be at least 16 hex digits, as `tapline gateway status` prints it"
                );
            }
            Ok((g.trim().to_string(), hash))
        })
        .collect()
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let expect_heads = parse_heads(&args.expect_head)?;
    let archive = super::open_archive(args.archive.as_deref()).await?;
    let mut keys = TrustedKeys::default();
    for p in &args.pubkey {
        keys.add_file(p)?;
    }
    if keys.is_empty() {
        keys = archive.published_keys().await?;
        eprintln!(
            "note: no --pubkey given; trusting the keys published in the archive's keys/ folder. \
             Pass --pubkey to pin the gateway's key."
        );
    }
    if let Some(id) = &args.session {
        let ctx = open_context(&archive).await?;
        let v = verify_session(&ctx, id, &keys).await?;
        println!("{}  {}", v.session_id, v.status_line());
        let broken = usize::from(!v.is_ok());
        println!("1 session(s) checked, {} ok, {broken} broken", 1 - broken);
        return Ok(if broken == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    let mut opts = VerifyOptions {
        expect_heads,
        ..Default::default()
    };
    if let Some(j) = args.jobs {
        opts.concurrency = j.max(1);
    }
    let progress = Arc::new(Progress::default());
    let ticker = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(progress.clone())));
    let started = Instant::now();
    let (mut sessions, mut broken, mut retired) = (0usize, 0usize, 0usize);
    let result = verify_archive(&archive, &keys, &opts, &progress, |v| {
        sessions += 1;
        if !v.is_ok() {
            broken += 1;
        } else if v.retired.is_some() {
            retired += 1;
        }
        if let Some(t) = &ticker
            && !t.is_finished()
        {
            eprint!("\r\x1b[K");
        }
        println!("{}  {}", v.session_id, v.status_line());
    })
    .await;
    if let Some(t) = ticker {
        t.abort();
        eprint!("\r\x1b[K");
    }
    let summary = result?;
    for l in &summary.ledgers {
        let head = l
            .head
            .as_ref()
            .map(|(seq, h)| format!("head entry {seq} {h}"))
            .unwrap_or_else(|| "empty".into());
        println!(
            "ledger {}  {}: {} entries, {head}",
            l.gateway,
            if l.ok { "ok" } else { "BROKEN" },
            l.entries
        );
    }
    for r in &summary.retentions {
        let status = if !r.signed {
            "NOT HONOURED (no trusted key signed it; pass the maintenance key with --pubkey)"
                .to_string()
        } else if r.still_present > 0 {
            format!(
                "{} object(s) it names are still there: the run was interrupted, rerun tapline archive retain to finish",
                r.still_present
            )
        } else {
            "signed".to_string()
        };
        println!(
            "retention {} entry {}: {} object(s), {}, of {} partition(s) before {} removed on purpose ({}); {status}",
            r.ledger,
            r.entry,
            r.objects,
            super::human_bytes(r.bytes),
            r.dates.len(),
            r.before,
            r.policy
        );
    }
    for p in &summary.problems {
        println!("{p}");
    }
    if summary.ledgers.is_empty() && summary.legacy_segments > 0 {
        println!(
            "note: this archive has no ledger (format 1, written before ledgers); chains and seals were checked, but a segment deleted whole cannot be noticed"
        );
    } else if summary.legacy_segments > 0 {
        println!(
            "note: {} format 1 segment(s), written before ledgers, were checked by their chains and seals alone",
            summary.legacy_segments
        );
    }
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    eprintln!(
        "checked {} events in {} segments ({:.1} MB) in {secs:.1} s: {:.0} events/s, {:.1} MB/s",
        summary.events_checked,
        summary.segments_checked,
        summary.segment_bytes as f64 / 1e6,
        summary.events_checked as f64 / secs,
        summary.segment_bytes as f64 / 1e6 / secs
    );
    let retired_note = if retired > 0 {
        format!(" ({retired} of them partly or wholly removed by retention)")
    } else {
        String::new()
    };
    println!(
        "{sessions} session(s) checked, {} ok{retired_note}, {broken} broken; {} archive problem(s)",
        sessions - broken,
        summary.problems.len()
    );
    Ok(if broken == 0 && summary.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Redraws one progress line on stderr (only when it is a terminal).
async fn show_progress(p: Arc<Progress>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r\x1b[Kverifying: {}/{} segments, {} events, {:.1} MB",
            p.segments_done.load(Ordering::Relaxed),
            p.segments_total.load(Ordering::Relaxed),
            p.events.load(Ordering::Relaxed),
            p.bytes.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_heads_need_a_gateway_and_enough_hex() {
        let ok = parse_heads(&["gw-1=0123456789ABCDEF00".into()]).unwrap();
        assert_eq!(ok, vec![("gw-1".into(), "0123456789abcdef00".into())]);
        assert!(parse_heads(&["gw-1".into()]).is_err());
        assert!(parse_heads(&["gw-1=abc".into()]).is_err());
        assert!(parse_heads(&["gw-1=zzzzzzzzzzzzzzzzzz".into()]).is_err());
    }
}
