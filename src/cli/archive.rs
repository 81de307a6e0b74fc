//! `tapline archive`: prepare an archive location, and maintain it (retention).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tapline_store::azure::{ContainerInit, create_container};
use tapline_store::maintenance::{MaintenanceLedger, plan_retention, retain};
use tapline_store::{Archive, ArchiveLocation, GatewayKey};

/// Prepare an archive location before gateways write to it, and maintain it.
#[derive(Args)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    action: ArchiveAction,
}

#[derive(Subcommand)]
enum ArchiveAction {
    Init(InitArgs),
    Retain(RetainArgs),
}

/// Create the archive if it is missing: the Blob container for az://, the folder for a
/// local path. Safe to run again: an existing archive is left as it is.
///
/// Examples:
///   AZURE_STORAGE_ACCOUNT_NAME=acme AZURE_STORAGE_ACCOUNT_KEY=… \
///       tapline archive init --archive az://tapline/prod
///   AZURE_STORAGE_USE_EMULATOR=true tapline archive init --archive az://tapline
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct InitArgs {
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
}

/// Delete whole date partitions older than a cutoff, recording it first in a signed
/// maintenance ledger (maintenance/<actor>/), so tapline verify tells this deliberate
/// removal from tampering. Safe to rerun: a run that was interrupted is finished
/// without a second entry. Today's partition is never removed.
///
/// Examples:
///   tapline keygen --out retention.key
///   tapline archive retain --older-than 400d --key retention.key --dry-run
///   tapline archive retain --older-than 400d --key retention.key --archive az://tapline/prod
///   tapline verify --pubkey gateway.key.pub --pubkey retention.key.pub
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct RetainArgs {
    /// Remove the partitions older than this many days (400d, 57w).
    #[arg(
        long,
        value_name = "AGE",
        required_unless_present = "before",
        conflicts_with = "before"
    )]
    older_than: Option<String>,
    /// Remove the partitions dated before this day (YYYY-MM-DD), instead of an age.
    #[arg(long, value_name = "DATE")]
    before: Option<String>,
    /// The maintenance signing key (from tapline keygen); its .pub goes to verifiers.
    #[arg(long, value_name = "FILE", required_unless_present = "dry_run")]
    key: Option<PathBuf>,
    /// The maintenance ledger to record in: maintenance/<ACTOR>/.
    #[arg(long, value_name = "ACTOR", default_value = "retention")]
    actor: String,
    /// Print what would be removed, and remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
}

pub async fn run(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let init = match args.action {
        ArchiveAction::Init(init) => init,
        ArchiveAction::Retain(r) => return run_retain(r).await,
    };
    let location = ArchiveLocation::from_flag_or_env(init.archive.as_deref())?;
    match &location {
        ArchiveLocation::Local(dir) => {
            let existed = dir.is_dir();
            Archive::create(&location)?;
            if existed {
                println!(
                    "archive folder {} already exists; nothing to do",
                    dir.display()
                );
            } else {
                println!("created archive folder {}", dir.display());
            }
        }
        ArchiveLocation::Azure { container, .. } => match create_container(container).await? {
            ContainerInit::Created => println!("created container {container} for {location}"),
            ContainerInit::AlreadyExisted => {
                println!("container {container} already exists; nothing to do ({location})")
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// The cutoff day and how the operator phrased it.
fn cutoff(args: &RetainArgs) -> anyhow::Result<(chrono::NaiveDate, String)> {
    let today = chrono::Utc::now().date_naive();
    let (before, policy) = match (&args.older_than, &args.before) {
        (Some(age), _) => {
            let d = humantime::parse_duration(age).with_context(|| {
                format!("--older-than `{age}`: give an age in days or weeks, e.g. 400d or 57w")
            })?;
            let days = d.as_secs() / 86_400;
            if days == 0 || d.as_secs() % 86_400 != 0 {
                bail!(
                    "--older-than `{age}`: retention removes whole days; give whole days, at least 1d"
                );
            }
            let days = chrono::Days::new(days);
            let before = today
                .checked_sub_days(days)
                .with_context(|| format!("--older-than `{age}` reaches before the calendar"))?;
            (before, format!("--older-than {age}"))
        }
        (None, Some(date)) => {
            let before = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .with_context(|| format!("--before `{date}`: give a day as YYYY-MM-DD"))?;
            (before, format!("--before {date}"))
        }
        (None, None) => bail!("give --older-than AGE or --before DATE"),
    };
    if before > today {
        bail!(
            "{policy} would remove today's partition ({today}), which gateways are still writing; give a day no later than {today}"
        );
    }
    Ok((before, policy))
}

async fn run_retain(args: RetainArgs) -> anyhow::Result<ExitCode> {
    let (before, policy) = cutoff(&args)?;
    let archive = super::open_archive(args.archive.as_deref()).await?;
    if args.dry_run {
        let plan = plan_retention(&archive, before).await?;
        if plan.objects.is_empty() {
            println!("nothing to remove: no partition is dated before {before}");
        } else {
            println!(
                "would remove {} object(s), {}, in {} partition(s) dated before {before}: {}",
                plan.objects.len(),
                super::human_bytes(plan.bytes()),
                plan.dates.len(),
                plan.dates.join(", ")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(key_path) = &args.key else {
        bail!("--key FILE: retention signs what it removes; make a key with tapline keygen");
    };
    let key = GatewayKey::load(key_path)?;
    let ledger = MaintenanceLedger::new(&archive, &args.actor, &key)?;
    let out = retain(&archive, &ledger, before, &policy).await?;
    if out.plan.objects.is_empty() {
        println!("nothing to remove: no partition is dated before {before}");
        return Ok(ExitCode::SUCCESS);
    }
    match &out.entry {
        Some((name, seq, hash)) => println!(
            "recorded in {name} entry {seq} {hash} (key {}), then removed {} object(s), {}, in {} partition(s): {}",
            key.id(),
            out.deleted,
            super::human_bytes(out.plan.bytes()),
            out.plan.dates.len(),
            out.plan.dates.join(", ")
        ),
        None => println!(
            "finished an earlier run: {} object(s) it had recorded were still there and are now removed ({})",
            out.deleted,
            out.plan.dates.join(", ")
        ),
    }
    if out.entry.is_some() && out.already_recorded > 0 {
        println!(
            "{} of them had been recorded by an earlier, interrupted run",
            out.already_recorded
        );
    }
    Ok(ExitCode::SUCCESS)
}
