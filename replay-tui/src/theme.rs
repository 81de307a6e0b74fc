//! Styles, with and without colour: `NO_COLOR` (any value) keeps every distinction
//! through bold, reverse, underline and dim instead.

use ratatui::style::{Color, Modifier, Style};

/// The viewer's styles.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set.
    pub fn from_env() -> Self {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn pick(&self, colored: Style, plain: Style) -> Style {
        if self.color { colored } else { plain }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn selected(&self) -> Style {
        self.pick(
            Style::default().bg(Color::Blue).fg(Color::White),
            Style::default().add_modifier(Modifier::REVERSED),
        )
    }

    pub fn dim(&self) -> Style {
        self.pick(
            Style::default().fg(Color::DarkGray),
            Style::default().add_modifier(Modifier::DIM),
        )
    }

    pub fn ok(&self) -> Style {
        self.pick(Style::default().fg(Color::Green), Style::default())
    }

    pub fn error(&self) -> Style {
        self.pick(
            Style::default().fg(Color::Red),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }

    pub fn warn(&self) -> Style {
        self.pick(
            Style::default().fg(Color::Yellow),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }

    /// Masked cells look masked: a distinct style that is never plain text.
    pub fn masked(&self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Magenta)
                .add_modifier(Modifier::ITALIC),
            Style::default().add_modifier(Modifier::ITALIC | Modifier::UNDERLINED),
        )
    }

    pub fn header_cell(&self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }

    pub fn focus_border(&self) -> Style {
        self.pick(
            Style::default().fg(Color::Cyan),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
}
