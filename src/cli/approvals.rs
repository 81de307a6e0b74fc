//! `tapline approvals`, `tapline approve` and `tapline deny`: the client of the
//! gateway's admin API, for the people who decide held statements.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the admin API is and who is calling it.
#[derive(Args)]
pub struct AdminArgs {
    /// The gateway's admin API.
    #[arg(
        long,
        env = "TAPLINE_ADMIN_URL",
        default_value = "http://127.0.0.1:9470"
    )]
    admin: String,
    /// The bearer token (a configured token, or an OIDC token).
    #[arg(long, env = "TAPLINE_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// A PEM CA certificate to trust for an https admin API (e.g. a self-signed one).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// List the statements held for approval: id, user, connection, statement and age.
///
/// Examples:
///   TAPLINE_ADMIN_TOKEN=… tapline approvals
///   tapline approvals --json
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct ApprovalsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Approve a held statement: it runs, and its result flows back to the caller.
#[derive(Args)]
pub struct ApproveArgs {
    /// The hold's id, from `tapline approvals`.
    id: String,
    /// Why (recorded with the decision).
    #[arg(long)]
    reason: Option<String>,
    /// onetime (this statement) or session (the same statement shape for the rest of
    /// the session) [default: the rule's].
    #[arg(long)]
    scope: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Deny a held statement: the caller gets an error, and the session goes on.
#[derive(Args)]
pub struct DenyArgs {
    /// The hold's id, from `tapline approvals`.
    id: String,
    /// Why (recorded with the decision and told to the caller).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

impl AdminArgs {
    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(ca) = &self.ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("--ca-cert {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("--ca-cert {} is not a PEM certificate", ca.display()))?;
            b = b.add_root_certificate(cert);
        }
        Ok(b.build()?)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.admin.trim_end_matches('/'))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {} (is the gateway running with approvals configured? --admin / $TAPLINE_ADMIN_URL)", self.admin))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.with_context(|| {
            format!("the admin API answered {status} with something other than JSON")
        })?;
        if !status.is_success() {
            let msg = body["error"].as_str().unwrap_or("no reason given");
            bail!("the admin API refused ({status}): {msg}");
        }
        Ok(body)
    }
}

pub async fn list(args: ApprovalsArgs) -> anyhow::Result<ExitCode> {
    let a = &args.admin;
    let holds = a.send(a.client()?.get(a.url("/v1/holds"))).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&holds)?);
        return Ok(ExitCode::SUCCESS);
    }
    let holds = holds.as_array().cloned().unwrap_or_default();
    if holds.is_empty() {
        println!("no statement is waiting for approval");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:<16} {:<16} {:>6}  {:<16} STATEMENT",
        "ID", "USER", "CONNECTION", "AGE", "RULE"
    );
    for h in holds {
        let statement: String = h["statement"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{:<28} {:<16} {:<16} {:>5}s  {:<16} {}",
            h["id"].as_str().unwrap_or_default(),
            h["user"].as_str().unwrap_or_default(),
            h["connection"].as_str().unwrap_or_default(),
            h["age_seconds"].as_u64().unwrap_or_default(),
            h["rule"].as_str().unwrap_or_default(),
            statement
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    admin: &AdminArgs,
    id: &str,
    verb: &str,
    body: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/holds/{id}/{verb}");
    let out = admin
        .send(admin.client()?.post(admin.url(&path)).json(&body))
        .await?;
    println!(
        "{} {}: {}",
        out["decision"].as_str().unwrap_or(verb),
        id,
        out["statement"].as_str().unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    if let Some(s) = &args.scope
        && s != "onetime"
        && s != "session"
    {
        bail!("--scope {s}: use onetime or session");
    }
    decide(
        &args.admin,
        &args.id,
        "approve",
        serde_json::json!({ "reason": args.reason, "scope": args.scope }),
    )
    .await
}

pub async fn deny(args: DenyArgs) -> anyhow::Result<ExitCode> {
    decide(
        &args.admin,
        &args.id,
        "deny",
        serde_json::json!({ "reason": args.reason }),
    )
    .await
}
