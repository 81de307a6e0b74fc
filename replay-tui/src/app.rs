//! The viewer's loop: the terminal, keys, playback ticks, and the archive reads the
//! browser and player ask for.
//!
//! The terminal is restored on every way out: a normal quit, an error, a panic
//! (ratatui's hook) and SIGTERM/SIGHUP (a flag the loop checks between frames). When
//! the terminal itself goes away (the tmux window closed, the SSH connection dropped),
//! the viewer ends at once: a watchdog sees the hang-up on its terminal, or a stop the
//! loop did not get to because the terminal library was stuck reading a dead tty.

use crate::browser::{Browser, BrowserRequest, draw_browser};
use crate::detail_cache::{DetailCache, PREFETCH_PAYLOAD_LIMIT, READ_AHEAD, READ_BEHIND};
use crate::draw_player::draw_player;
use crate::error::ReplayError;
use crate::model::Integrity;
use crate::player::{Player, Request};
use crate::session_index::{SessionIndex, TextFilter};
use crate::source::{ArchiveSource, WINDOW_EVENTS};
use crate::theme::Theme;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tapline_query::sessions::SessionFilter;
use tokio::sync::{mpsc, oneshot};

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
        // The listing of a large archive takes seconds: it runs behind the first frame.
        None => Some(Browser::new(SessionIndex::default())),
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(ReplayError::NotATerminal);
    }
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone());
    watch_terminal(stop.clone());
    let mut terminal = ratatui::try_init()?;
    let (browse_tx, browse_rx) = mpsc::unbounded_channel();
    let result = App {
        source,
        theme: Theme::from_env(),
        filter: options.filter,
        follow: options.follow,
        stop,
        verifying: None,
        generation: Arc::new(AtomicU64::new(0)),
        browse_tx,
        browse_rx,
        details: DetailCache::default(),
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

/// How often the watchdog looks at the terminal.
const WATCHDOG_TICK: Duration = Duration::from_millis(200);

/// How long a stop may wait for the loop before the watchdog ends the viewer itself.
const STOP_GRACE: Duration = Duration::from_millis(800);

/// Ends the process when its terminal hangs up (nothing is left to restore), or when a
/// stop was asked for and the loop has not returned within `STOP_GRACE`: crossterm can
/// spin inside one read on a hung-up tty and never come back to check the flag.
fn watch_terminal(stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("replay-watchdog".into())
        .spawn(move || {
            let mut stopping_since: Option<Instant> = None;
            loop {
                std::thread::sleep(WATCHDOG_TICK);
                if terminal_hung_up() {
                    std::process::exit(0);
                }
                if stop.load(Ordering::Relaxed) {
                    let since = *stopping_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= STOP_GRACE {
                        restore();
                        std::process::exit(0);
                    }
                }
            }
        });
    if spawned.is_err() {
        // Without the watchdog the signal flag still ends the loop in the usual case.
    }
}

/// Whether the viewer's terminal has hung up: the tty on standard input reports
/// POLLHUP (or is no longer valid).
fn terminal_hung_up() -> bool {
    #[cfg(unix)]
    {
        let mut fds = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a zero timeout; poll only writes `revents`.
        let n = unsafe { libc::poll(&mut fds, 1, 0) };
        n > 0 && fds.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
    }
    #[cfg(not(unix))]
    {
        false
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

/// What a background browse job hands back, tagged with the generation of the
/// request it answers so a stale answer (the user typed on) is dropped.
enum BrowseUpdate {
    Arranged {
        generation: u64,
        order: Vec<u32>,
        keep_place: bool,
        /// Command hits are still being searched for.
        more_coming: bool,
    },
    Relisted {
        generation: u64,
        index: Arc<SessionIndex>,
        order: Vec<u32>,
    },
    Failed {
        generation: u64,
        message: String,
    },
}

/// How long typing must pause before the command text of the archive is searched.
const COMMAND_SEARCH_DELAY: Duration = Duration::from_millis(250);

struct App {
    source: Arc<ArchiveSource>,
    theme: Theme,
    filter: SessionFilter,
    follow: bool,
    stop: Arc<AtomicBool>,
    verifying: Option<oneshot::Receiver<Integrity>>,
    /// The newest browse request; background jobs stop when it moves on.
    generation: Arc<AtomicU64>,
    browse_tx: mpsc::UnboundedSender<BrowseUpdate>,
    browse_rx: mpsc::UnboundedReceiver<BrowseUpdate>,
    /// Results read ahead of the player's cursor.
    details: DetailCache,
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
        if let Some(b) = &mut browser {
            self.relist_in_background(b);
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
            if let Some(b) = &mut browser {
                self.take_browse_updates(b);
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
            BrowserRequest::Arrange => self.arrange_in_background(b),
            BrowserRequest::Refresh => self.relist_in_background(b),
            BrowserRequest::Open(id) => {
                let mut p = open_player(&self.source, &id).await?;
                p.follow = self.follow;
                self.verify_in_background(id);
                *player = Some(p);
            }
        }
        Ok(())
    }

    /// Applies what background browse jobs finished, if still current.
    fn take_browse_updates(&mut self, b: &mut Browser) {
        let current = self.generation.load(Ordering::Relaxed);
        while let Ok(update) = self.browse_rx.try_recv() {
            match update {
                BrowseUpdate::Arranged {
                    generation,
                    order,
                    keep_place,
                    more_coming,
                } if generation == current => {
                    b.arranged(order, keep_place);
                    b.busy = more_coming.then(|| "searching commands…".to_string());
                }
                BrowseUpdate::Relisted {
                    generation,
                    index,
                    order,
                } if generation == current => {
                    b.relisted(index, order);
                    b.busy = None;
                }
                BrowseUpdate::Failed {
                    generation,
                    message,
                } if generation == current => {
                    b.busy = None;
                    b.message = Some(message);
                }
                _ => {}
            }
        }
    }

    /// Sorts and filters the index off the loop: names at once, then, when typing
    /// pauses, the sessions whose commands contain the text.
    fn arrange_in_background(&mut self, b: &mut Browser) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        b.busy = Some("sorting…".into());
        let (index, sort, descending, filter) =
            (b.index.clone(), b.sort, b.descending, b.text_filter());
        let (tx, current, source, session_filter) = (
            self.browse_tx.clone(),
            self.generation.clone(),
            self.source.clone(),
            self.filter.clone(),
        );
        tokio::spawn(async move {
            let stale = || current.load(Ordering::Relaxed) != generation;
            let more_coming = !filter.needle.is_empty();
            let Ok(order) = arrange(index.clone(), sort, descending, filter.clone()).await else {
                return;
            };
            let _ = tx.send(BrowseUpdate::Arranged {
                generation,
                order,
                keep_place: false,
                more_coming,
            });
            if !more_coming {
                return;
            }
            tokio::time::sleep(COMMAND_SEARCH_DELAY).await;
            if stale() {
                return;
            }
            let hits = match source.command_hits(&session_filter, &filter.needle).await {
                Ok(h) => h,
                Err(e) => {
                    let _ = tx.send(BrowseUpdate::Failed {
                        generation,
                        message: e.to_string(),
                    });
                    return;
                }
            };
            if stale() {
                return;
            }
            let filter = TextFilter {
                command_hits: Some(hits),
                ..filter
            };
            if let Ok(order) = arrange(index, sort, descending, filter).await {
                let _ = tx.send(BrowseUpdate::Arranged {
                    generation,
                    order,
                    keep_place: true,
                    more_coming: false,
                });
            }
        });
    }

    /// Lists the archive afresh off the loop, keeping the sort and filter.
    fn relist_in_background(&mut self, b: &mut Browser) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        b.busy = Some("listing the archive…".into());
        let (sort, descending, mut filter) = (b.sort, b.descending, b.text_filter());
        let (tx, source, session_filter) = (
            self.browse_tx.clone(),
            self.source.clone(),
            self.filter.clone(),
        );
        tokio::spawn(async move {
            let listed = async {
                let index = Arc::new(source.session_index(&session_filter).await?);
                if !filter.needle.is_empty() {
                    filter.command_hits =
                        Some(source.command_hits(&session_filter, &filter.needle).await?);
                }
                Ok::<_, ReplayError>(index)
            };
            let update = match listed.await {
                Ok(index) => match arrange(index.clone(), sort, descending, filter).await {
                    Ok(order) => BrowseUpdate::Relisted {
                        generation,
                        index,
                        order,
                    },
                    Err(_) => return,
                },
                Err(e) => BrowseUpdate::Failed {
                    generation,
                    message: e.to_string(),
                },
            };
            let _ = tx.send(update);
        });
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
    /// The next match in the search's direction, wrapping around the session as vim's
    /// wrapscan does; `true` with a match found after wrapping.
    async fn search_wrapping(
        &self,
        p: &Player,
        id: &str,
        needle: &str,
        from: u64,
        forward: bool,
    ) -> Result<Option<(u64, bool)>, ReplayError> {
        if let Some(seq) = self.source.search(id, needle, from, forward).await? {
            return Ok(Some((seq, false)));
        }
        // From the other end: strictly after seq 0 (the session's start), or strictly
        // before the seq after its last event.
        let restart = if forward { 0 } else { p.header.last_seq + 1 };
        Ok(self
            .source
            .search(id, needle, restart, forward)
            .await?
            .map(|seq| (seq, true)))
    }

    async fn fulfil(&mut self, p: &mut Player, mut reqs: Vec<Request>) -> Result<(), ReplayError> {
        let id = p.header.session_id.clone();
        while let Some(req) = reqs.pop() {
            match req {
                Request::Back => {}
                Request::Detail(seq) => {
                    if !self.details.contains(&id, seq) {
                        let seqs: Vec<u64> = p
                            .nearby_detail_seqs(seq, READ_AHEAD, READ_BEHIND)
                            .into_iter()
                            .filter(|&s| s == seq || !self.details.contains(&id, s))
                            .collect();
                        let read = self
                            .source
                            .events(&id, &seqs, PREFETCH_PAYLOAD_LIMIT)
                            .await?;
                        self.details.insert(&id, read);
                    }
                    p.detail = self.details.get(&id, seq);
                }
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
                } => match self.search_wrapping(p, &id, &needle, from, forward).await? {
                    Some((seq, wrapped)) => {
                        p.message = Some(match (wrapped, forward) {
                            (false, _) => format!("match at seq {seq}"),
                            (true, true) => {
                                format!("search hit BOTTOM, continuing at TOP: match at seq {seq}")
                            }
                            (true, false) => {
                                format!("search hit TOP, continuing at BOTTOM: match at seq {seq}")
                            }
                        });
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
                    None => p.message = Some(format!("no match for `{needle}` in the session")),
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

/// Sorts on a blocking thread: over millions of sessions it takes a moment.
async fn arrange(
    index: Arc<SessionIndex>,
    sort: crate::session_index::SortKey,
    descending: bool,
    filter: TextFilter,
) -> Result<Vec<u32>, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || index.arrange(sort, descending, &filter)).await
}

/// Asks the terminal to put `text` on the clipboard (OSC 52), which also works over SSH.
fn copy_osc52(text: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{b64}\x07");
    let _ = out.flush();
}
