//! Drawing the player: header, timeline, result pane, footer, and the help overlay.

use crate::model::{Integrity, Status, status_label};
use crate::player::{Pane, Player, Prompt, SPEEDS};
use crate::result_view::{ResultView, fit_widths, hex_dump, is_masked_value};
use crate::theme::Theme;
use crate::time::{clock, duration, offset};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use unicode_width::UnicodeWidthStr;

/// The one-line key help of the player.
pub const KEY_HELP: &str = "↑↓/jk step  PgUp/PgDn  g/G first/last  Space play  +/- speed  t time  / search  n/N  Tab pane  x hex  y copy  ? help  q back";

/// Draws the whole player.
pub fn draw_player(f: &mut Frame, p: &Player, theme: &Theme) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(5),
        Constraint::Length(3),
    ])
    .areas(f.area());
    draw_header(f, head, p, theme);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(body);
    draw_timeline(f, left, p, theme);
    draw_result(f, right, p, theme);
    draw_footer(f, foot, p, theme);
    if p.help {
        draw_help(f, theme);
    }
}

fn badge_style(i: &Integrity, theme: &Theme) -> Style {
    match i {
        Integrity::Verified => theme.ok(),
        Integrity::Broken { .. } => theme.error(),
        _ => theme.dim(),
    }
}

fn draw_header(f: &mut Frame, area: Rect, p: &Player, theme: &Theme) {
    let h = &p.header;
    let now = tapline_store::event::now_ns();
    let groups = if h.groups.is_empty() {
        String::new()
    } else {
        format!(" ({})", h.groups.join(", "))
    };
    let state = match (&h.end_ns, &h.end_reason) {
        (Some(_), Some(r)) => format!("ended: {r}"),
        (Some(_), None) => "ended".into(),
        _ => "live".into(),
    };
    let lines = vec![
        Line::from(vec![
            Span::styled("tapline replay ", theme.title()),
            Span::raw(h.session_id.clone()),
            Span::raw("  "),
            Span::styled(p.integrity.badge(), badge_style(&p.integrity, theme)),
            Span::styled(if p.follow { "  following" } else { "" }, theme.warn()),
        ]),
        Line::from(format!(
            "who  {}{groups} from {}  →  {} ({}{})",
            h.user,
            h.client_addr,
            h.connection,
            h.upstream,
            h.database
                .as_deref()
                .map(|d| format!(", db {d}"))
                .unwrap_or_default()
        )),
        Line::from(format!(
            "when {}  for {}  {}  {} events, {} commands",
            clock(h.start_ns),
            duration(h.end_ns.unwrap_or(now) - h.start_ns),
            state,
            h.events,
            h.commands
        )),
    ];
    f.render_widget(Paragraph::new(lines), area);
}

fn status_style(s: Option<Status>, theme: &Theme) -> Style {
    match s {
        Some(Status::Ok) => theme.ok(),
        Some(Status::Error | Status::Blocked | Status::Denied) => theme.error(),
        Some(Status::Held | Status::Approved) => theme.warn(),
        None => theme.dim(),
    }
}

fn pane_block<'a>(title: &'a str, focused: bool, theme: &Theme) -> Block<'a> {
    let b = Block::default().borders(Borders::ALL).title(title);
    if focused {
        b.border_style(theme.focus_border())
    } else {
        b
    }
}

fn draw_timeline(f: &mut Frame, area: Rect, p: &Player, theme: &Theme) {
    let block = pane_block(" timeline ", p.focus == Pane::Timeline, theme);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let height = inner.height as usize;
    if height == 0 {
        return;
    }
    // Keep the cursor in view, a third of the way down when possible.
    let top = p
        .cursor
        .saturating_sub(height / 3)
        .min(p.steps.len().saturating_sub(height));
    let lines: Vec<Line> = p
        .steps
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, s)| {
            let mut status = status_label(s.status).to_string();
            if s.masked {
                status.push_str(" masked");
            }
            let dur = s
                .duration_us
                .map(|us| duration(us as i64 * 1000))
                .unwrap_or_default();
            let label = s.label.replace(['\n', '\r', '\t'], " ");
            let line = Line::from(vec![
                Span::styled(
                    format!("{:>9} ", offset(s.ts_ns - p.header.start_ns)),
                    theme.dim(),
                ),
                Span::raw(format!("{dur:>7} ")),
                Span::styled(format!("{status:<8} "), status_style(s.status, theme)),
                Span::raw(label),
            ]);
            if i == p.cursor {
                line.style(theme.selected())
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_result(f: &mut Frame, area: Rect, p: &Player, theme: &Theme) {
    let title = if p.hex { " payload (hex) " } else { " result " };
    let block = pane_block(title, p.focus == Pane::Result, theme);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(d) = &p.detail else {
        f.render_widget(Paragraph::new("loading…").style(theme.dim()), inner);
        return;
    };
    let (skip_rows, skip_cols) = p.result_scroll;
    if p.hex {
        let lines: Vec<Line> = hex_dump(&d.payload)
            .into_iter()
            .skip(skip_rows)
            .map(Line::from)
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
        return;
    }
    match ResultView::from_event(&d.kind, d.text.as_deref(), &d.masked) {
        ResultView::Error {
            sqlstate,
            message,
            detail,
        } => {
            let mut lines = vec![Line::from(vec![Span::styled(
                format!("SQLSTATE {}", sqlstate.as_deref().unwrap_or("-----")),
                theme.error(),
            )])];
            lines.push(Line::styled(message, theme.error()));
            lines.extend(detail.into_iter().map(Line::from));
            f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        }
        ResultView::Lines(lines) => {
            let lines: Vec<Line> = lines.into_iter().skip(skip_rows).map(Line::from).collect();
            f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        }
        ResultView::Table {
            columns,
            rows,
            masked_columns,
            notes,
        } => {
            let cols: Vec<usize> =
                (skip_cols.min(columns.len().saturating_sub(1))..columns.len()).collect();
            let widths = fit_widths(&columns, &rows, 40);
            let header = Row::new(cols.iter().map(|&c| Cell::from(columns[c].clone())))
                .style(theme.header_cell());
            let body_rows: Vec<Row> = rows
                .iter()
                .skip(skip_rows)
                .map(|r| {
                    Row::new(cols.iter().map(|&c| {
                        let v = r.get(c).cloned().unwrap_or_default();
                        let masked =
                            masked_columns.get(c).copied().unwrap_or(false) || is_masked_value(&v);
                        if masked {
                            Cell::from(v).style(theme.masked())
                        } else {
                            Cell::from(v)
                        }
                    }))
                })
                .collect();
            let constraints: Vec<Constraint> = cols
                .iter()
                .map(|&c| Constraint::Length(widths[c] as u16))
                .collect();
            let [table_area, notes_area] = Layout::vertical([
                Constraint::Min(1),
                Constraint::Length(notes.len().min(2) as u16),
            ])
            .areas(inner);
            f.render_widget(
                Table::new(body_rows, constraints)
                    .header(header)
                    .column_spacing(2),
                table_area,
            );
            let notes: Vec<Line> = notes
                .into_iter()
                .map(|n| Line::styled(n, theme.dim()))
                .collect();
            f.render_widget(Paragraph::new(notes), notes_area);
        }
    }
}

fn draw_footer(f: &mut Frame, area: Rect, p: &Player, theme: &Theme) {
    let detail = match &p.detail {
        Some(d) => format!(
            "seq {}  {}  {}{}  {} bytes  chain {}…",
            d.seq,
            clock(d.ts_ns),
            d.kind,
            d.row_count
                .map(|n| format!("  {n} rows"))
                .unwrap_or_default(),
            d.payload.len(),
            d.chain
                .iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        None => String::new(),
    };
    let playing = if p.playing {
        format!("  ▶ {}×", SPEEDS[p.speed])
    } else {
        String::new()
    };
    let status = match (&p.prompt, &p.message) {
        (Some(Prompt::Search(t)), _) => Line::from(format!("/{t}")),
        (Some(Prompt::Time(t)), _) => Line::from(format!("jump to offset: {t}")),
        (None, Some(m)) => Line::styled(m.clone(), theme.warn()),
        (None, None) => Line::styled(KEY_HELP, theme.dim()),
    };
    let lines = vec![
        Line::from(format!(
            "{detail}{playing}  [{}/{} in window]",
            p.cursor + usize::from(!p.steps.is_empty()),
            p.steps.len()
        )),
        status,
    ];
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP)),
        area,
    );
}

/// The full key help, over everything.
fn draw_help(f: &mut Frame, theme: &Theme) {
    let text = [
        "↑ ↓  j k      step to the previous / next command",
        "PgUp PgDn     twenty commands at a time",
        "g G           first / last command",
        "Space         play or pause at the recorded pace",
        "+ -           speed 0.25× … 16× (idle gaps capped at 2 s)",
        "t             jump to a time offset (90, 1m30s, 01:30)",
        "/             search commands and results; n N next / previous",
        "Tab           switch pane (arrows scroll the result)",
        "x             raw protocol payload as hex and ASCII",
        "y             copy the command (OSC 52)",
        "q Esc         back, then quit",
        "",
        "any key closes this help",
    ];
    let area = f.area();
    let w = text.iter().map(|l| l.width()).max().unwrap_or(40) as u16 + 4;
    let h = text.len() as u16 + 2;
    let rect = Rect {
        x: area.width.saturating_sub(w) / 2,
        y: area.height.saturating_sub(h) / 2,
        width: w.min(area.width),
        height: h.min(area.height),
    };
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(text.iter().map(|l| Line::from(*l)).collect::<Vec<_>>()).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys ")
                .border_style(theme.focus_border()),
        ),
        rect,
    );
}
