//! The session player's state and keys. Keys change the state or ask the app for data
//! ([`Request`]); drawing is in `draw_player`. Nothing here touches the archive, so the
//! player can be driven and drawn in tests from data made by hand.

use crate::model::{EventDetail, Integrity, SessionHeader, Step};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

/// Playback speeds, slowest first.
pub const SPEEDS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// During playback no gap between two commands lasts longer than this.
pub const MAX_IDLE_GAP: Duration = Duration::from_secs(2);

/// Which pane has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Timeline,
    Result,
}

/// A line the user is typing at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Search(String),
    Time(String),
}

/// Data the player needs from the archive.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Load the timeline window holding `seq` and put the cursor on the step at or
    /// after it (`None`: the last step).
    Window { seq: Option<u64> },
    /// Load the window after (true) or before (false) the current one.
    Page { forward: bool },
    /// Load the event the result pane shows.
    Detail(u64),
    /// Find the next or previous command matching the needle.
    Search {
        needle: String,
        from: u64,
        forward: bool,
    },
    /// Jump to the first command at or after this many ns from the start.
    SeekOffset(i64),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Leave the player.
    Back,
}

/// Everything the player shows.
#[derive(Debug, Clone)]
pub struct Player {
    pub header: SessionHeader,
    pub integrity: Integrity,
    pub steps: Vec<Step>,
    /// The seq range the loaded window covers.
    pub window: (u64, u64),
    pub cursor: usize,
    pub detail: Option<EventDetail>,
    pub focus: Pane,
    pub hex: bool,
    pub result_scroll: (usize, usize),
    pub prompt: Option<Prompt>,
    pub last_search: Option<String>,
    pub playing: bool,
    pub speed: usize,
    pub message: Option<String>,
    pub help: bool,
    pub follow: bool,
}

impl Player {
    /// A player on a session's first window.
    pub fn new(header: SessionHeader, steps: Vec<Step>, window: (u64, u64)) -> Self {
        Player {
            header,
            integrity: Integrity::Checking,
            steps,
            window,
            cursor: 0,
            detail: None,
            focus: Pane::Timeline,
            hex: false,
            result_scroll: (0, 0),
            prompt: None,
            last_search: None,
            playing: false,
            speed: 2,
            message: None,
            help: false,
            follow: false,
        }
    }

    /// The step under the cursor.
    pub fn current(&self) -> Option<&Step> {
        self.steps.get(self.cursor)
    }

    /// The seq the result pane should show for the current step.
    pub fn detail_seq(&self) -> Option<u64> {
        self.current().map(|s| s.result_seq.unwrap_or(s.seq))
    }

    /// The event seqs to read when `seq` (the current step's) is not cached: it first,
    /// then the steps just behind and ahead of the cursor.
    pub fn nearby_detail_seqs(&self, seq: u64, ahead: usize, behind: usize) -> Vec<u64> {
        let from = self.cursor.saturating_sub(behind);
        let to = (self.cursor + ahead + 1).min(self.steps.len());
        let mut out = vec![seq];
        out.extend(
            self.steps[from.min(to)..to]
                .iter()
                .map(|s| s.result_seq.unwrap_or(s.seq))
                .filter(|&s| s != seq),
        );
        out
    }

    /// Replaces the window and puts the cursor on the step at or after `seq`.
    pub fn set_window(&mut self, steps: Vec<Step>, window: (u64, u64), seq: Option<u64>) {
        self.steps = steps;
        self.window = window;
        self.cursor = match seq {
            Some(s) => self
                .steps
                .iter()
                .position(|st| st.seq >= s)
                .unwrap_or(self.steps.len().saturating_sub(1)),
            None => self.steps.len().saturating_sub(1),
        };
        self.result_scroll = (0, 0);
    }

    fn step_by(&mut self, delta: isize) -> Vec<Request> {
        let target = self.cursor as isize + delta;
        if target < 0 {
            if self.window.0 > 0 {
                return vec![Request::Page { forward: false }];
            }
            self.cursor = 0;
        } else if target as usize >= self.steps.len() {
            if self.window.1 < self.header.last_seq {
                return vec![Request::Page { forward: true }];
            }
            self.cursor = self.steps.len().saturating_sub(1);
        } else {
            self.cursor = target as usize;
        }
        self.result_scroll = (0, 0);
        self.detail_request()
    }

    /// Asks for the current step's detail when it is not the one shown.
    pub fn detail_request(&self) -> Vec<Request> {
        match self.detail_seq() {
            Some(seq) if self.detail.as_ref().is_none_or(|d| d.seq != seq) => {
                vec![Request::Detail(seq)]
            }
            _ => Vec::new(),
        }
    }

    /// How long playback waits before the next step, at the current speed.
    pub fn play_delay(&self) -> Option<Duration> {
        let cur = self.current()?;
        let next = self.steps.get(self.cursor + 1)?;
        let gap = Duration::from_nanos((next.ts_ns - cur.ts_ns).max(0) as u64).min(MAX_IDLE_GAP);
        Some(gap.div_f64(SPEEDS[self.speed]))
    }

    /// One playback tick: the next step, or the end of playback.
    pub fn advance(&mut self) -> Vec<Request> {
        if self.cursor + 1 >= self.steps.len()
            && self.window.1 >= self.header.last_seq
            && !self.follow
        {
            self.playing = false;
            self.message = Some("end of session".into());
            return Vec::new();
        }
        self.step_by(1)
    }

    /// Handles one key; returns what to load.
    pub fn key(&mut self, key: KeyEvent) -> Vec<Request> {
        self.message = None;
        if let Some(prompt) = self.prompt.take() {
            return self.prompt_key(prompt, key);
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        let page = 20;
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => vec![Request::Back],
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                vec![Request::Back]
            }
            KeyCode::Tab => {
                self.focus = match self.focus {
                    Pane::Timeline => Pane::Result,
                    Pane::Result => Pane::Timeline,
                };
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') if self.focus == Pane::Result => {
                self.result_scroll.0 += 1;
                Vec::new()
            }
            KeyCode::Up | KeyCode::Char('k') if self.focus == Pane::Result => {
                self.result_scroll.0 = self.result_scroll.0.saturating_sub(1);
                Vec::new()
            }
            KeyCode::Right | KeyCode::Char('l') if self.focus == Pane::Result => {
                self.result_scroll.1 += 1;
                Vec::new()
            }
            KeyCode::Left | KeyCode::Char('h') if self.focus == Pane::Result => {
                self.result_scroll.1 = self.result_scroll.1.saturating_sub(1);
                Vec::new()
            }
            KeyCode::PageDown if self.focus == Pane::Result => {
                self.result_scroll.0 += page;
                Vec::new()
            }
            KeyCode::PageUp if self.focus == Pane::Result => {
                self.result_scroll.0 = self.result_scroll.0.saturating_sub(page);
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => self.step_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.step_by(-1),
            KeyCode::PageDown => self.step_by(page as isize),
            KeyCode::PageUp => self.step_by(-(page as isize)),
            KeyCode::Char('g') | KeyCode::Home => vec![Request::Window { seq: Some(0) }],
            KeyCode::Char('G') | KeyCode::End => vec![Request::Window { seq: None }],
            KeyCode::Char(' ') => {
                self.playing = !self.playing;
                Vec::new()
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
                self.message = Some(format!("speed {}×", SPEEDS[self.speed]));
                Vec::new()
            }
            KeyCode::Char('-') => {
                self.speed = self.speed.saturating_sub(1);
                self.message = Some(format!("speed {}×", SPEEDS[self.speed]));
                Vec::new()
            }
            KeyCode::Char('x') => {
                self.hex = !self.hex;
                Vec::new()
            }
            KeyCode::Char('/') => {
                self.prompt = Some(Prompt::Search(String::new()));
                Vec::new()
            }
            KeyCode::Char('t') => {
                self.prompt = Some(Prompt::Time(String::new()));
                Vec::new()
            }
            KeyCode::Char('n') | KeyCode::Char('N') => match (&self.last_search, self.current()) {
                (Some(needle), Some(cur)) => vec![Request::Search {
                    needle: needle.clone(),
                    from: cur.seq,
                    forward: key.code == KeyCode::Char('n'),
                }],
                _ => {
                    self.message = Some("no search yet: press / first".into());
                    Vec::new()
                }
            },
            KeyCode::Char('y') => match self.current().map(|s| s.label.clone()) {
                Some(label) => {
                    self.message = Some("command copied to the clipboard".into());
                    vec![Request::Copy(label)]
                }
                None => Vec::new(),
            },
            KeyCode::Char('?') => {
                self.help = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn prompt_key(&mut self, prompt: Prompt, key: KeyEvent) -> Vec<Request> {
        let (mut text, is_search) = match prompt {
            Prompt::Search(t) => (t, true),
            Prompt::Time(t) => (t, false),
        };
        match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter if is_search => {
                if text.is_empty() {
                    return Vec::new();
                }
                self.last_search = Some(text.clone());
                let from = self.current().map_or(0, |s| s.seq);
                vec![Request::Search {
                    needle: text,
                    from,
                    forward: true,
                }]
            }
            KeyCode::Enter => match parse_offset(&text) {
                Some(ns) => vec![Request::SeekOffset(ns)],
                None => {
                    self.message = Some(format!(
                        "`{text}` is not an offset: write 90, 1m30s or 01:30"
                    ));
                    Vec::new()
                }
            },
            KeyCode::Backspace => {
                text.pop();
                self.prompt = Some(if is_search {
                    Prompt::Search(text)
                } else {
                    Prompt::Time(text)
                });
                Vec::new()
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.prompt = Some(if is_search {
                    Prompt::Search(text)
                } else {
                    Prompt::Time(text)
                });
                Vec::new()
            }
            _ => {
                self.prompt = Some(if is_search {
                    Prompt::Search(text)
                } else {
                    Prompt::Time(text)
                });
                Vec::new()
            }
        }
    }
}

/// Parses a time offset: `90` (seconds), `1m30s`, `250ms`, `01:30` or `1:02:03`.
pub fn parse_offset(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.contains(':') {
        let mut secs: i64 = 0;
        for part in t.split(':') {
            secs = secs * 60 + part.parse::<i64>().ok()?;
        }
        return Some(secs * 1_000_000_000);
    }
    if let Ok(s) = t.parse::<f64>() {
        return Some((s * 1e9) as i64);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1_000_000.0
        } else {
            match c {
                'h' => 3.6e12,
                'm' => 6e10,
                's' => 1e9,
                _ => return None,
            }
        };
        total += (num.parse::<f64>().ok()? * unit) as i64;
        num.clear();
    }
    num.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_in_the_usual_forms() {
        assert_eq!(parse_offset("90"), Some(90_000_000_000));
        assert_eq!(parse_offset("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_offset("01:30"), Some(90_000_000_000));
        assert_eq!(parse_offset("250ms"), Some(250_000_000));
        assert_eq!(parse_offset("soon"), None);
    }
}
