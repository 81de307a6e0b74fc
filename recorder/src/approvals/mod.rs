//! Just-in-time approval: statements an `[[approve]]` rule matches are held in the
//! data path (not sent upstream, the client waiting) until a person in the rule's
//! approver groups approves or denies them over the admin API, or the hold times
//! out. Every hold and every decision is an event in the session's chain.
//!
//! - `rules`: what needs approval, by whom, for how long, with what scope;
//! - `shape`: the statement shape a session-scoped approval covers;
//! - `registry`: the pending holds and the checks every decision passes;
//! - `admin_auth`, `admin_api`: who may call the admin API, and the API itself;
//! - `config`: `[approvals]` and `[[approve]]`.

pub mod admin_api;
pub mod admin_auth;
pub mod config;
pub mod registry;
pub mod rules;
pub mod shape;
