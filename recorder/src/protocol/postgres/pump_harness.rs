//! A byte-level harness for the two pumps: scripted client and server bytes in,
//! the bytes each side was forwarded and the events recorded out. The pumps run as
//! in the gateway (a real archive writer in a temp dir, sync durability), over
//! in-memory pipes in place of sockets, so a unit test can say exactly what crossed
//! and what was recorded, message by message.

use super::backend_pump::{self, BackendEnd};
use super::frontend_pump::{self, FrontendEnd};
use super::io::TapError;
use super::masking::PgMasking;
use super::masking::catalog::Catalog;
use super::session_state::{SessionPolicy, SessionState};
use crate::approvals::registry::Holds;
use crate::approvals::rules::ApprovalRules;
use crate::policy::guard::DenyRules;
use crate::policy::mask::rules::MaskRules;
use crate::protocol::Limits;
use crate::session::{EndReason, SessionWho};
use crate::shutdown::{self, ShutdownTrigger};
use bytes::BytesMut;
use std::sync::Arc;
use std::time::Duration;
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Durability, Event, GatewayKey, SessionMeta,
    WriterConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;

/// How long the harness waits for more bytes before it takes a side as quiet.
const QUIET: Duration = Duration::from_millis(150);

/// One session between the pumps, driven by a test.
pub struct PumpHarness {
    _dir: tempfile::TempDir,
    spool: std::path::PathBuf,
    writer: Option<ArchiveWriter>,
    state: Arc<SessionState>,
    /// The test's ends: what it writes as the client and the server, and reads as
    /// what they were forwarded.
    client_in: Option<WriteHalf<DuplexStream>>,
    client_out: ReadHalf<DuplexStream>,
    server_in: Option<WriteHalf<DuplexStream>>,
    server_out: ReadHalf<DuplexStream>,
    front: JoinHandle<(Result<FrontendEnd, TapError>, WriteHalf<DuplexStream>)>,
    back: JoinHandle<Result<BackendEnd, TapError>>,
    _trigger: ShutdownTrigger,
}

/// What a finished session left.
pub struct Finished {
    pub frontend: Result<FrontendEnd, TapError>,
    pub backend: Result<BackendEnd, TapError>,
    /// The recorded events, in order (the session_end record excluded).
    pub events: Vec<Event>,
    /// What the client received after its last scripted step (a FATAL, say).
    pub client_got: Vec<u8>,
}

impl PumpHarness {
    /// A session with no rule, limits as `limits`.
    pub async fn start(limits: Limits) -> PumpHarness {
        Self::with_policy(limits, plain_policy()).await
    }

    /// A session under `policy`.
    pub async fn with_policy(limits: Limits, policy: SessionPolicy) -> PumpHarness {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let archive = Archive::create(
            &ArchiveLocation::parse(dir.path().join("archive").to_str().unwrap()).unwrap(),
        )
        .unwrap();
        let writer = ArchiveWriter::start(
            archive,
            GatewayKey::generate(),
            WriterConfig {
                flush_interval: Duration::from_secs(3600),
                ..WriterConfig::new("harness", &spool)
            },
        )
        .unwrap();
        let meta = SessionMeta {
            session_id: Arc::from("01HARNESS"),
            gateway_id: writer.handle().gateway_id().clone(),
            connection: Arc::from("pg"),
            protocol: Arc::from("postgres"),
            user: Arc::from("alice"),
            groups: Vec::new(),
            client_addr: "127.0.0.1:1".into(),
            database: Some("postgres".into()),
            application_name: None,
            upstream: "postgres://up@127.0.0.1:5432".into(),
            start_ns: tapline_store::event::now_ns(),
            issuer: None,
            token_id: None,
            tls: None,
        };
        let recorder = writer
            .handle()
            .open_session(meta, Durability::Sync)
            .unwrap();
        let (client_test, client_gw) = tokio::io::duplex(1 << 20);
        let (server_test, server_gw) = tokio::io::duplex(1 << 20);
        let (client_gw_rd, client_gw_wr) = tokio::io::split(client_gw);
        let (server_gw_rd, server_gw_wr) = tokio::io::split(server_gw);
        let (client_out, client_in) = tokio::io::split(client_test);
        let (server_out, server_in) = tokio::io::split(server_test);
        let who = SessionWho {
            session_id: "01HARNESS".into(),
            user: "alice".into(),
            groups: Vec::new(),
            connection: "pg".into(),
        };
        let state = Arc::new(SessionState::new(
            recorder,
            Box::new(client_gw_wr),
            limits,
            who,
            policy,
        ));
        let (trigger, shutdown) = shutdown::channel();
        let front = tokio::spawn(frontend_pump::run(
            state.clone(),
            client_gw_rd,
            server_gw_wr,
            shutdown.clone(),
        ));
        let back = tokio::spawn(backend_pump::run(
            state.clone(),
            server_gw_rd,
            BytesMut::new(),
            shutdown,
        ));
        PumpHarness {
            _dir: dir,
            spool,
            writer: Some(writer),
            state,
            client_in: Some(client_in),
            client_out,
            server_in: Some(server_in),
            server_out,
            front,
            back,
            _trigger: trigger,
        }
    }

    /// The client sends `bytes`; returns what the upstream received once it is quiet.
    pub async fn client_sends(&mut self, bytes: &[u8]) -> Vec<u8> {
        let w = self.client_in.as_mut().expect("the client has closed");
        w.write_all(bytes).await.unwrap();
        quiet_read(&mut self.server_out).await
    }

    /// The upstream sends `bytes`; returns what the client received once it is quiet.
    pub async fn server_sends(&mut self, bytes: &[u8]) -> Vec<u8> {
        let w = self.server_in.as_mut().expect("the upstream has closed");
        w.write_all(bytes).await.unwrap();
        quiet_read(&mut self.client_out).await
    }

    /// The client sends `bytes` in reads of `piece` bytes, cutting messages anywhere;
    /// returns what the upstream received.
    pub async fn client_sends_in_pieces(&mut self, bytes: &[u8], piece: usize) -> Vec<u8> {
        let w = self.client_in.as_mut().expect("the client has closed");
        let got = pieces_through(w, &mut self.server_out, bytes, piece).await;
        [got, quiet_read(&mut self.server_out).await].concat()
    }

    /// The upstream sends `bytes` in pieces of `piece` bytes; returns what the client
    /// received.
    pub async fn server_sends_in_pieces(&mut self, bytes: &[u8], piece: usize) -> Vec<u8> {
        let w = self.server_in.as_mut().expect("the upstream has closed");
        let got = pieces_through(w, &mut self.client_out, bytes, piece).await;
        [got, quiet_read(&mut self.client_out).await].concat()
    }

    /// Closes the client, then the upstream, and collects what the session left.
    pub async fn finish(mut self) -> Finished {
        // A half of a split pipe closes its direction only when shut down.
        if let Some(mut w) = self.client_in.take() {
            let _ = w.shutdown().await;
        }
        let frontend = self.front.await.unwrap().0;
        let client_got = quiet_read(&mut self.client_out).await;
        let _ = quiet_read(&mut self.server_out).await;
        if let Some(mut w) = self.server_in.take() {
            let _ = w.shutdown().await;
        }
        let backend = self.back.await.unwrap();
        self.state.wait_durable().await.unwrap();
        let events = spool_events(&self.spool);
        self.state.end(&EndReason::ClientClosed);
        if let Some(w) = self.writer.take() {
            let _ = w.shutdown().await;
        }
        Finished {
            frontend,
            backend,
            events,
            client_got,
        }
    }
}

/// Every event in the spool files of `dir`, oldest file first.
fn spool_events(dir: &std::path::Path) -> Vec<Event> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "spool"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| tapline_store::spool::recover::read_events(f).unwrap())
        .collect()
}

/// Writes `bytes` in pieces, each flushed and given time to be pumped, while the far
/// side is read concurrently (so a full pipe never stalls the writer).
async fn pieces_through(
    w: &mut WriteHalf<DuplexStream>,
    far: &mut ReadHalf<DuplexStream>,
    bytes: &[u8],
    piece: usize,
) -> Vec<u8> {
    let write = async {
        for p in bytes.chunks(piece) {
            w.write_all(p).await.unwrap();
            w.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    tokio::pin!(write);
    let mut written = false;
    loop {
        tokio::select! {
            _ = &mut write, if !written => written = true,
            r = far.read(&mut buf) => match r {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            },
            _ = tokio::time::sleep(QUIET), if written => return got,
        }
    }
}

/// Reads until nothing more arrives for a moment.
async fn quiet_read(r: &mut ReadHalf<DuplexStream>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(QUIET, r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The policy of a session no rule applies to.
pub fn plain_policy() -> SessionPolicy {
    SessionPolicy {
        guard: DenyRules::default().for_session("pg", &[]),
        masking: PgMasking::new(
            MaskRules::new(Vec::new(), [7; 32]).for_session("pg", &[]),
            Catalog::default(),
        ),
        approvals: Arc::new(ApprovalRules::default()).for_session("pg", &[]),
        holds: Holds::default(),
        fast_path: Default::default(),
        client_encodings: Default::default(),
    }
}

/// Limits as the gateway's defaults.
pub fn default_limits() -> Limits {
    Limits {
        max_message_bytes: 64 << 20,
        max_recorded_result_bytes: 16 << 20,
    }
}
