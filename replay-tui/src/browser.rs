//! The session browser: one row per session, filtered as you type, sortable by any
//! column. Rows come from the [`SessionIndex`] read once when the browser opens, so
//! moving, paging, sorting and filtering over millions of sessions never wait on the
//! archive; only the rows on screen are built for drawing.

use crate::model::{Integrity, SessionRow};
use crate::session_index::{SessionIndex, SortKey, TextFilter};
use crate::theme::Theme;
use crate::time::{clock, duration};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use std::collections::HashMap;
use std::sync::Arc;

/// Rows moved by PgUp/PgDn.
pub const PAGE_ROWS: usize = 20;

/// What the browser asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserRequest {
    /// Sort or filter again (the sort key, direction or typed text changed).
    Arrange,
    /// List the archive afresh (sessions recorded since the browser opened).
    Refresh,
    /// Open the session.
    Open(String),
    Quit,
}

/// The browser's state.
#[derive(Debug, Clone)]
pub struct Browser {
    pub index: Arc<SessionIndex>,
    /// Rows of the index that the filter keeps, in display order.
    pub order: Arc<Vec<u32>>,
    pub cursor: usize,
    pub typed: String,
    pub typing: bool,
    pub sort: SortKey,
    pub descending: bool,
    pub integrity: HashMap<String, Integrity>,
    pub message: Option<String>,
    /// Work under way in the background, shown in the title ("searching commands…").
    pub busy: Option<String>,
}

impl Browser {
    /// A browser over `index`, newest sessions first.
    pub fn new(index: SessionIndex) -> Self {
        let mut b = Browser {
            index: Arc::new(index),
            order: Arc::new(Vec::new()),
            cursor: 0,
            typed: String::new(),
            typing: false,
            sort: SortKey::Start,
            descending: true,
            integrity: HashMap::new(),
            message: None,
            busy: None,
        };
        b.order = Arc::new(
            b.index
                .arrange(b.sort, b.descending, &TextFilter::default()),
        );
        b
    }

    /// The typed filter, before any command hits are known.
    pub fn text_filter(&self) -> TextFilter {
        TextFilter {
            needle: self.typed.to_lowercase(),
            command_hits: None,
        }
    }

    /// The session under the cursor.
    pub fn selected(&self) -> Option<SessionRow> {
        self.order.get(self.cursor).map(|&i| self.index.row(i))
    }

    /// Shows a new arrangement. With `keep_place`, the cursor stays on the same
    /// session if it is still listed (a filter widening as command hits arrive);
    /// otherwise it goes to the top.
    pub fn arranged(&mut self, order: Vec<u32>, keep_place: bool) {
        let current = self.order.get(self.cursor).copied();
        self.order = Arc::new(order);
        self.cursor = match (keep_place, current) {
            (true, Some(row)) => self.order.iter().position(|&i| i == row).unwrap_or(0),
            _ => 0,
        };
    }

    /// Replaces the index (a refresh) with its arrangement.
    pub fn relisted(&mut self, index: Arc<SessionIndex>, order: Vec<u32>) {
        let current = self.selected().map(|r| r.session_id);
        self.index = index;
        self.order = Arc::new(order);
        self.cursor = current
            .and_then(|id| self.order.iter().position(|&i| self.index.id(i) == id))
            .unwrap_or(0);
    }

    fn last(&self) -> usize {
        self.order.len().saturating_sub(1)
    }

    fn step_sort(&mut self, by: isize) {
        let n = SortKey::ALL.len() as isize;
        let i = SortKey::ALL
            .iter()
            .position(|k| *k == self.sort)
            .unwrap_or(0) as isize;
        self.sort = SortKey::ALL[((i + by).rem_euclid(n)) as usize];
    }

    /// Handles a key; returns what to do.
    pub fn key(&mut self, key: KeyEvent) -> Vec<BrowserRequest> {
        self.message = None;
        if self.typing {
            match key.code {
                KeyCode::Enter | KeyCode::Esc => self.typing = false,
                KeyCode::Backspace => {
                    self.typed.pop();
                    return vec![BrowserRequest::Arrange];
                }
                KeyCode::Char(c) => {
                    self.typed.push(c);
                    return vec![BrowserRequest::Arrange];
                }
                _ => {}
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => out.push(BrowserRequest::Quit),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                out.push(BrowserRequest::Quit)
            }
            KeyCode::Char('/') => self.typing = true,
            KeyCode::Down | KeyCode::Char('j') => self.cursor = (self.cursor + 1).min(self.last()),
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::PageDown => self.cursor = (self.cursor + PAGE_ROWS).min(self.last()),
            KeyCode::PageUp => self.cursor = self.cursor.saturating_sub(PAGE_ROWS),
            KeyCode::Char('g') | KeyCode::Home => self.cursor = 0,
            KeyCode::Char('G') | KeyCode::End => self.cursor = self.last(),
            KeyCode::Char('s') | KeyCode::Right => {
                self.step_sort(1);
                out.push(BrowserRequest::Arrange);
            }
            KeyCode::Left => {
                self.step_sort(-1);
                out.push(BrowserRequest::Arrange);
            }
            KeyCode::Char('r') => {
                self.descending = !self.descending;
                out.push(BrowserRequest::Arrange);
            }
            KeyCode::Char('R') | KeyCode::F(5) => out.push(BrowserRequest::Refresh),
            KeyCode::Enter => {
                if let Some(r) = self.selected() {
                    out.push(BrowserRequest::Open(r.session_id));
                }
            }
            _ => {}
        }
        out
    }
}

const COLUMNS: [&str; 10] = [
    "start",
    "user",
    "connection",
    "protocol",
    "duration",
    "commands",
    "errors",
    "blocked",
    "masked",
    "integrity",
];

/// Draws the browser.
pub fn draw_browser(f: &mut Frame, b: &Browser, theme: &Theme) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(2),
    ])
    .areas(f.area());
    let sort_name = COLUMNS[SortKey::ALL.iter().position(|k| *k == b.sort).unwrap_or(0)];
    f.render_widget(
        Paragraph::new(Line::from(format!(
            "tapline sessions  {} of {}  sorted by {sort_name} {}{}{}",
            b.order.len(),
            b.index.len(),
            if b.descending { "↓" } else { "↑" },
            if b.typed.is_empty() {
                String::new()
            } else {
                format!("  filter: {}", b.typed)
            },
            b.busy
                .as_deref()
                .map(|w| format!("  ({w})"))
                .unwrap_or_default()
        )))
        .style(theme.title()),
        head,
    );
    let now = tapline_store::event::now_ns();
    let height = body.height.saturating_sub(3) as usize;
    let top = b.cursor.saturating_sub(height.saturating_sub(1));
    let end = (top + height.max(1)).min(b.order.len());
    let rows: Vec<Row> = (top..end)
        .map(|i| (i, b.index.row(b.order[i])))
        .map(|(i, r)| {
            let integrity = b
                .integrity
                .get(&r.session_id)
                .cloned()
                .unwrap_or(Integrity::NotChecked);
            let badge_style = match integrity {
                Integrity::Verified => theme.ok(),
                Integrity::Broken { .. } => theme.error(),
                _ => theme.dim(),
            };
            let row = Row::new(vec![
                Cell::from(clock(r.start_ns)),
                Cell::from(r.user.clone()),
                Cell::from(r.connection.clone()),
                Cell::from(r.protocol.clone()),
                Cell::from(format!(
                    "{}{}",
                    duration(r.duration_ns(now)),
                    if r.live { " live" } else { "" }
                )),
                Cell::from(r.commands.to_string()),
                Cell::from(r.errors.to_string()).style(if r.errors > 0 {
                    theme.error()
                } else {
                    theme.dim()
                }),
                Cell::from(r.blocked.to_string()).style(if r.blocked > 0 {
                    theme.warn()
                } else {
                    theme.dim()
                }),
                Cell::from(r.masked_values.to_string()).style(if r.masked_values > 0 {
                    theme.masked()
                } else {
                    theme.dim()
                }),
                Cell::from(integrity.badge()).style(badge_style),
            ]);
            if i == b.cursor {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(23),
        Constraint::Length(14),
        Constraint::Length(14),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Min(10),
    ];
    let header = Row::new(COLUMNS.iter().map(|c| Cell::from(*c))).style(theme.header_cell());
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::default().borders(Borders::ALL)),
        body,
    );
    let help = if b.typing {
        format!("/{}  (Enter keeps the filter, Esc too)", b.typed)
    } else {
        b.message.clone().unwrap_or_else(|| {
            "↑↓ move  Enter open  / filter (user, connection, command text)  s/←→ sort column  r reverse  R refresh  q quit".into()
        })
    };
    f.render_widget(
        Paragraph::new(help)
            .style(theme.dim())
            .block(Block::default().borders(Borders::TOP)),
        foot,
    );
}
