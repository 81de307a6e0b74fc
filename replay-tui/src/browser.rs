//! The session browser: one row per session, filtered as you type, sortable by any
//! column, loaded a page at a time as the cursor moves.

use crate::model::{Integrity, SessionRow};
use crate::source::SortKey;
use crate::theme::Theme;
use crate::time::{clock, duration};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use std::collections::HashMap;

/// Rows fetched per page.
pub const PAGE: u64 = 200;

/// What the browser asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserRequest {
    /// Reload from the first page (the filter or the sort changed).
    Reload,
    /// Fetch the page after the loaded rows.
    More,
    /// Open the session.
    Open(String),
    Quit,
}

/// The browser's state.
#[derive(Debug, Clone)]
pub struct Browser {
    pub rows: Vec<SessionRow>,
    /// No rows beyond those loaded.
    pub exhausted: bool,
    pub cursor: usize,
    pub typed: String,
    pub typing: bool,
    pub sort: SortKey,
    pub descending: bool,
    pub integrity: HashMap<String, Integrity>,
    pub message: Option<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            rows: Vec::new(),
            exhausted: false,
            cursor: 0,
            typed: String::new(),
            typing: false,
            sort: SortKey::Start,
            descending: true,
            integrity: HashMap::new(),
            message: None,
        }
    }
}

impl Browser {
    /// Handles a key; returns what to do.
    pub fn key(&mut self, key: KeyEvent) -> Vec<BrowserRequest> {
        self.message = None;
        if self.typing {
            match key.code {
                KeyCode::Enter | KeyCode::Esc => self.typing = false,
                KeyCode::Backspace => {
                    self.typed.pop();
                    return vec![BrowserRequest::Reload];
                }
                KeyCode::Char(c) => {
                    self.typed.push(c);
                    return vec![BrowserRequest::Reload];
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
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + 1).min(self.rows.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::PageDown => {
                self.cursor = (self.cursor + 20).min(self.rows.len().saturating_sub(1))
            }
            KeyCode::PageUp => self.cursor = self.cursor.saturating_sub(20),
            KeyCode::Char('g') | KeyCode::Home => self.cursor = 0,
            KeyCode::Char('G') | KeyCode::End => self.cursor = self.rows.len().saturating_sub(1),
            KeyCode::Char('s') | KeyCode::Right => {
                let i = SortKey::ALL
                    .iter()
                    .position(|k| *k == self.sort)
                    .unwrap_or(0);
                self.sort = SortKey::ALL[(i + 1) % SortKey::ALL.len()];
                out.push(BrowserRequest::Reload);
            }
            KeyCode::Left => {
                let i = SortKey::ALL
                    .iter()
                    .position(|k| *k == self.sort)
                    .unwrap_or(0);
                self.sort = SortKey::ALL[(i + SortKey::ALL.len() - 1) % SortKey::ALL.len()];
                out.push(BrowserRequest::Reload);
            }
            KeyCode::Char('r') => {
                self.descending = !self.descending;
                out.push(BrowserRequest::Reload);
            }
            KeyCode::Enter => {
                if let Some(r) = self.rows.get(self.cursor) {
                    out.push(BrowserRequest::Open(r.session_id.clone()));
                }
            }
            _ => {}
        }
        if !self.exhausted && self.cursor + 50 >= self.rows.len() && !self.rows.is_empty() {
            out.push(BrowserRequest::More);
        }
        out
    }

    /// Replaces (`offset` 0) or extends the loaded rows.
    pub fn loaded(&mut self, offset: u64, rows: Vec<SessionRow>) {
        self.exhausted = (rows.len() as u64) < PAGE;
        if offset == 0 {
            self.rows = rows;
            self.cursor = 0;
        } else {
            self.rows.extend(rows);
        }
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
            "tapline sessions  {} loaded{}  sorted by {sort_name} {}{}",
            b.rows.len(),
            if b.exhausted { "" } else { "+" },
            if b.descending { "↓" } else { "↑" },
            if b.typed.is_empty() {
                String::new()
            } else {
                format!("  filter: {}", b.typed)
            }
        )))
        .style(theme.title()),
        head,
    );
    let now = tapline_store::event::now_ns();
    let height = body.height.saturating_sub(3) as usize;
    let top = b.cursor.saturating_sub(height.saturating_sub(1));
    let rows: Vec<Row> = b
        .rows
        .iter()
        .enumerate()
        .skip(top)
        .take(height.max(1))
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
            "↑↓ move  Enter open  / filter (user, connection, command text)  s/←→ sort column  r reverse  q quit".into()
        })
    };
    f.render_widget(
        Paragraph::new(help)
            .style(theme.dim())
            .block(Block::default().borders(Borders::TOP)),
        foot,
    );
}
