//! The viewer's loop: the terminal, keys, playback ticks, and the archive reads the
//! browser and player ask for.
//!
//! The terminal is restored on every way out: a normal quit, an error, a panic
//! (ratatui's hook) and SIGTERM/SIGHUP (a flag the loop checks between frames).

use crate::browser::{Browser, BrowserRequest, PAGE, draw_browser};
use crate::draw_player::draw_player;
use crate::error::ReplayError;
use crate::model::Integrity;
use crate::player::{Player, Request};
use crate::source::{ArchiveSource, WINDOW_EVENTS};
use crate::theme::Theme;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tapline_query::sessions::SessionFilter;
use tokio::sync::oneshot;

/// What to open.
pub struct ReplayOptions {
    /// A session to play; `None` opens the browser.
    pub session: Option<String>,
    /// The browser's filters (`--user`, `--connection`, `--since`, `--until`).
    pub filter: SessionFilter,
    /// Keep appending a live session's new events.
    pub follow: bool,
}

/// Opens the viewer. Problems found before the first frame (no such session, an
/// unreadable archive) are returned before the terminal is touched.
pub async fn run(source: ArchiveSource, options: ReplayOptions) -> Result<(), ReplayError> {
    let source = Arc::new(source);
    let first = match &options.session {
        Some(id) => Some(open_player(&source, id).await?),
        None => None,
    };
    let browser = match first {
        Some(_) => None,
        None => {
            let mut b = Browser::default();
            let rows = source
                .sessions(&options.filter, "", b.sort, b.descending, 0, PAGE)
                .await?;
            b.loaded(0, rows);
            Some(b)
        }
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(ReplayError::NotATerminal);
    }
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone());
    let mut terminal = ratatui::try_init()?;
    let result = App {
        source,
        theme: Theme::from_env(),
        filter: options.filter,
        follow: options.follow,
        stop,
        verifying: None,
    }
    .run(&mut terminal, browser, first)
    .await;
    restore();
    result
}

/// Leaves the alternate screen and raw mode, and shows the cursor again.
fn restore() {
    ratatui::restore();
    let _ = ratatui::crossterm::execute!(std::io::stdout(), ratatui::crossterm::cursor::Show);
}

async fn open_player(source: &ArchiveSource, id: &str) -> Result<Player, ReplayError> {
    let header = source
        .header(id)
        .await?
        .ok_or_else(|| ReplayError::NoSuchSession(id.to_string()))?;
    let to = WINDOW_EVENTS - 1;
    let steps = source.steps(id, 0, to).await?;
    let mut p = Player::new(header, steps, (0, to));
    if let Some(seq) = p.detail_seq() {
        p.detail = source.event(id, seq).await?;
    }
    Ok(p)
}

/// Registers SIGTERM and SIGHUP before the first frame, so a signal at any moment
/// ends the loop (and the terminal is restored) instead of killing the process.
fn watch_signals(stop: Arc<AtomicBool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = hup.recv() => {},
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
}

/// Why browsing stopped short.
enum Stop {
    Quit,
    Failed(ReplayError),
}

impl From<ReplayError> for Stop {
    fn from(e: ReplayError) -> Self {
        Stop::Failed(e)
    }
}

struct App {
    source: Arc<ArchiveSource>,
    theme: Theme,
    filter: SessionFilter,
    follow: bool,
    stop: Arc<AtomicBool>,
    verifying: Option<oneshot::Receiver<Integrity>>,
}

impl App {
    async fn run(
        mut self,
        terminal: &mut DefaultTerminal,
        mut browser: Option<Browser>,
        mut player: Option<Player>,
    ) -> Result<(), ReplayError> {
        if let Some(p) = &mut player {
            p.follow = self.follow;
            self.verify_in_background(p.header.session_id.clone());
        }
        let mut last_step = Instant::now();
        let mut last_follow = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if let (Some(p), Some(rx)) = (&mut player, &mut self.verifying)
                && let Ok(i) = rx.try_recv()
            {
                if let Some(b) = &mut browser {
                    b.integrity.insert(p.header.session_id.clone(), i.clone());
                }
                p.integrity = i;
                self.verifying = None;
            }
            terminal.draw(|f| match (&player, &browser) {
                (Some(p), _) => draw_player(f, p, &self.theme),
                (None, Some(b)) => draw_browser(f, b, &self.theme),
                (None, None) => {}
            })?;
            if let Some(p) = &mut player {
                if p.playing && p.play_delay().is_none_or(|d| last_step.elapsed() >= d) {
                    let reqs = p.advance();
                    if let Err(e) = self.fulfil(p, reqs).await {
                        p.message = Some(e.to_string());
                        p.playing = false;
                    }
                    last_step = Instant::now();
                }
                if p.follow && last_follow.elapsed() >= Duration::from_secs(1) {
                    last_follow = Instant::now();
                    if let Err(e) = self.follow_tick(p).await {
                        p.message = Some(e.to_string());
                    }
                }
            }
            if !event::poll(Duration::from_millis(40))? {
                continue;
            }
            let Event::Key(key) = event::read()? else {
                continue; // resize and the rest: the next draw fits the new size
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            if let Some(p) = &mut player {
                let reqs = p.key(key);
                if reqs.contains(&Request::Back) {
                    if browser.is_none() {
                        return Ok(());
                    }
                    player = None;
                    self.verifying = None;
                    continue;
                }
                if let Err(e) = self.fulfil(p, reqs).await {
                    p.message = Some(e.to_string());
                }
                last_step = Instant::now();
            } else if let Some(b) = &mut browser {
                for req in b.key(key) {
                    if let Err(e) = self.browse(b, req, &mut player).await {
                        match e {
                            Stop::Quit => return Ok(()),
                            Stop::Failed(e) => b.message = Some(e.to_string()),
                        }
                    }
                }
            }
        }
    }

    async fn browse(
        &mut self,
        b: &mut Browser,
        req: BrowserRequest,
        player: &mut Option<Player>,
    ) -> Result<(), Stop> {
        match req {
            BrowserRequest::Quit => return Err(Stop::Quit),
            BrowserRequest::Reload => {
                let rows = self
                    .source
                    .sessions(&self.filter, &b.typed, b.sort, b.descending, 0, PAGE)
                    .await?;
                b.loaded(0, rows);
            }
            BrowserRequest::More => {
                let offset = b.rows.len() as u64;
                let rows = self
                    .source
                    .sessions(&self.filter, &b.typed, b.sort, b.descending, offset, PAGE)
                    .await?;
                b.loaded(offset, rows);
            }
            BrowserRequest::Open(id) => {
                let mut p = open_player(&self.source, &id).await?;
                p.follow = self.follow;
                self.verify_in_background(id);
                *player = Some(p);
            }
        }
        Ok(())
    }

    fn verify_in_background(&mut self, id: String) {
        let (tx, rx) = oneshot::channel();
        let source = self.source.clone();
        tokio::spawn(async move {
            let verdict = source
                .verify(&id)
                .await
                .unwrap_or_else(|e| Integrity::Broken {
                    seq: 0,
                    reason: format!("cannot verify: {e}"),
                });
            let _ = tx.send(verdict);
        });
        self.verifying = Some(rx);
    }

    /// Carries out what the player asked for.
    async fn fulfil(&mut self, p: &mut Player, mut reqs: Vec<Request>) -> Result<(), ReplayError> {
        let id = p.header.session_id.clone();
        while let Some(req) = reqs.pop() {
            match req {
                Request::Back => {}
                Request::Detail(seq) => p.detail = self.source.event(&id, seq).await?,
                Request::Window { seq } => {
                    let last = p
                        .header
                        .last_seq
                        .max(self.source.last_seq(&id).await?.unwrap_or(0));
                    p.header.last_seq = last;
                    let target = seq.unwrap_or(last);
                    let from = match seq {
                        None => last.saturating_sub(WINDOW_EVENTS - 1),
                        Some(s) => s.saturating_sub(WINDOW_EVENTS / 4),
                    };
                    let to = from + WINDOW_EVENTS - 1;
                    let steps = self.source.steps(&id, from, to).await?;
                    p.set_window(steps, (from, to), seq.map(|_| target));
                    reqs.extend(p.detail_request());
                }
                Request::Page { forward } => {
                    let (from, to) = if forward {
                        (p.window.1 + 1, p.window.1 + WINDOW_EVENTS)
                    } else {
                        let from = p.window.0.saturating_sub(WINDOW_EVENTS);
                        (from, p.window.0.saturating_sub(1))
                    };
                    let steps = self.source.steps(&id, from, to).await?;
                    if steps.is_empty() {
                        // A stretch with no commands (e.g. one long COPY): skip over it.
                        p.window = (from, to);
                        if (forward && to < p.header.last_seq) || (!forward && from > 0) {
                            reqs.push(Request::Page { forward });
                        }
                        continue;
                    }
                    let at = if forward { Some(from) } else { None };
                    p.set_window(steps, (from, to), at);
                    reqs.extend(p.detail_request());
                }
                Request::Search {
                    needle,
                    from,
                    forward,
                } => match self.source.search(&id, &needle, from, forward).await? {
                    Some(seq) => {
                        p.message = Some(format!("match at seq {seq}"));
                        if seq >= p.window.0 && seq <= p.window.1 {
                            p.cursor = p
                                .steps
                                .iter()
                                .position(|s| s.seq >= seq)
                                .unwrap_or(p.cursor);
                            reqs.extend(p.detail_request());
                        } else {
                            reqs.push(Request::Window { seq: Some(seq) });
                        }
                    }
                    None => {
                        p.message = Some(format!(
                            "no {} match for `{needle}`",
                            if forward { "further" } else { "earlier" }
                        ))
                    }
                },
                Request::SeekOffset(ns) => {
                    match self.source.seq_at(&id, p.header.start_ns + ns).await? {
                        Some(seq) => reqs.push(Request::Window { seq: Some(seq) }),
                        None => p.message = Some("the session has no command that late".into()),
                    }
                }
                Request::Copy(text) => copy_osc52(&text),
            }
        }
        Ok(())
    }

    /// `--follow`: pick up a live session's new events, like `tail -f`.
    async fn follow_tick(&mut self, p: &mut Player) -> Result<(), ReplayError> {
        let id = p.header.session_id.clone();
        let Some(header) = self.source.header(&id).await? else {
            return Ok(());
        };
        let last = self.source.last_seq(&id).await?.unwrap_or(header.last_seq);
        let old_last = p.header.last_seq;
        let grew = last > old_last;
        let at_end = p.cursor + 1 >= p.steps.len();
        p.header = crate::model::SessionHeader {
            last_seq: last,
            ..header
        };
        if grew && at_end {
            self.fulfil(p, vec![Request::Window { seq: None }]).await?;
        } else if grew && old_last <= p.window.1 {
            // New events inside the loaded window: redraw it, the cursor staying put.
            let at = p.current().map(|s| s.seq);
            let steps = self.source.steps(&id, p.window.0, p.window.1).await?;
            let window = p.window;
            p.set_window(steps, window, at);
            let reqs = p.detail_request();
            self.fulfil(p, reqs).await?;
        }
        Ok(())
    }
}

/// Asks the terminal to put `text` on the clipboard (OSC 52), which also works over SSH.
fn copy_osc52(text: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{b64}\x07");
    let _ = out.flush();
}
