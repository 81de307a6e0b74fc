//! What is on screen, drawn with ratatui's TestBackend from data made by hand: the
//! browser, the player at its first command, after stepping, on a search hit, on an
//! error, on a masked cell, and with a broken chain.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use tapline_replay_tui::browser::{Browser, draw_browser};
use tapline_replay_tui::draw_player::draw_player;
use tapline_replay_tui::model::{EventDetail, Integrity, SessionHeader, SessionRow, Status, Step};
use tapline_replay_tui::player::{Player, Request};
use tapline_replay_tui::session_index::SessionIndex;
use tapline_replay_tui::theme::Theme;

const T0: i64 = 1_795_300_000_000_000_000;

fn screen(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf.cell((x, y)).map_or(" ", |c| c.symbol()));
        }
        out.push('\n');
    }
    out
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn step(seq: u64, ms: i64, label: &str, status: Option<Status>, result_seq: Option<u64>) -> Step {
    Step {
        seq,
        ts_ns: T0 + ms * 1_000_000,
        kind: if seq == 0 {
            "session_start".into()
        } else {
            "query".into()
        },
        label: label.into(),
        status,
        duration_us: result_seq.map(|_| 1500),
        result_seq,
        masked: label.contains("customers"),
    }
}

fn player() -> Player {
    let header = SessionHeader {
        session_id: "01JDBREPLAYTEST0000000000".into(),
        user: "alice".into(),
        groups: vec!["dba".into()],
        client_addr: "10.0.0.7:50311".into(),
        connection: "orders-prod".into(),
        upstream: "postgres://tapline@orders-db:5432".into(),
        database: Some("orders".into()),
        start_ns: T0,
        end_ns: Some(T0 + 9_000_000_000),
        end_reason: Some("client_closed".into()),
        last_seq: 8,
        events: 9,
        commands: 3,
    };
    let steps = vec![
        step(0, 0, "client 10.0.0.7 user alice", Some(Status::Ok), None),
        step(
            1,
            1200,
            "SELECT id, total FROM orders LIMIT 2",
            Some(Status::Ok),
            Some(2),
        ),
        step(
            3,
            2500,
            "SELECT * FROM missing_table",
            Some(Status::Error),
            Some(4),
        ),
        step(
            5,
            4000,
            "SELECT name, email FROM customers",
            Some(Status::Ok),
            Some(6),
        ),
    ];
    let mut p = Player::new(header, steps, (0, 2047));
    p.integrity = Integrity::Verified;
    p.detail = Some(detail(
        0,
        "session_start",
        "client 10.0.0.7 user alice database orders",
        &[],
    ));
    p
}

fn detail(seq: u64, kind: &str, text: &str, masked: &[&str]) -> EventDetail {
    EventDetail {
        seq,
        ts_ns: T0 + seq as i64 * 1_000_000,
        kind: kind.into(),
        direction: "server".into(),
        status: "ok".into(),
        command: None,
        row_count: Some(2),
        duration_us: Some(1500),
        masked: masked.iter().map(|s| s.to_string()).collect(),
        payload: b"T\x00\x00\x00\x1fid".to_vec(),
        text: Some(text.into()),
        chain: vec![0xab; 4],
    }
}

fn draw(p: &Player) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(140, 24)).unwrap();
    t.draw(|f| draw_player(f, p, &Theme { color: true }))
        .unwrap();
    t
}

#[test]
fn the_browser_lists_sessions_with_their_counts_and_badges() {
    let mut b = Browser::new(SessionIndex::from_rows(
        vec![
            SessionRow {
                session_id: "S1".into(),
                start_ns: T0,
                end_ns: Some(T0 + 65_000_000_000),
                user: "alice".into(),
                connection: "orders-prod".into(),
                protocol: "postgres".into(),
                commands: 42,
                errors: 3,
                blocked: 1,
                masked_values: 17,
                live: false,
            },
            SessionRow {
                session_id: "S2".into(),
                start_ns: T0 + 1_000_000_000,
                end_ns: None,
                user: "agent-7".into(),
                connection: "billing".into(),
                protocol: "postgres".into(),
                commands: 5,
                errors: 0,
                blocked: 0,
                masked_values: 0,
                live: true,
            },
        ],
        T0 + 2_000_000_000,
    ));
    b.integrity.insert(
        "S1".into(),
        Integrity::Broken {
            seq: 12,
            reason: "modified".into(),
        },
    );
    let mut t = Terminal::new(TestBackend::new(140, 10)).unwrap();
    t.draw(|f| draw_browser(f, &b, &Theme { color: true }))
        .unwrap();
    let s = screen(&t);
    for want in [
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
    ] {
        assert!(s.contains(want), "missing column {want}:\n{s}");
    }
    assert!(
        s.contains("alice") && s.contains("orders-prod") && s.contains("1m05s"),
        "{s}"
    );
    assert!(s.contains("42") && s.contains("17"), "{s}");
    assert!(s.contains("broken at seq 12"), "{s}");
    assert!(
        s.contains("agent-7") && s.contains("live") && s.contains("not yet checked"),
        "{s}"
    );
    assert!(s.contains("2 of 2"), "{s}");
}

#[test]
fn the_player_opens_on_the_first_command_with_header_and_footer() {
    let p = player();
    let s = screen(&draw(&p));
    assert!(s.contains("01JDBREPLAYTEST0000000000"), "{s}");
    assert!(s.contains("✔ verified"), "{s}");
    assert!(s.contains("alice (dba) from 10.0.0.7:50311"), "{s}");
    assert!(s.contains("orders-prod"), "{s}");
    assert!(
        s.contains("+1.200s") && s.contains("SELECT id, total FROM orders"),
        "{s}"
    );
    assert!(s.contains("seq 0") && s.contains("chain abababab"), "{s}");
    assert!(s.contains("? help"), "{s}");
}

#[test]
fn stepping_moves_the_cursor_and_asks_for_the_result() {
    let mut p = player();
    let reqs = p.key(key('j'));
    assert_eq!(p.cursor, 1);
    assert_eq!(reqs, vec![Request::Detail(2)]);
    p.detail = Some(detail(2, "result", "id\ttotal\n1\t9.50\n2\t12.00", &[]));
    let s = screen(&draw(&p));
    assert!(
        s.contains("id") && s.contains("total") && s.contains("12.00"),
        "{s}"
    );
    assert!(s.contains("seq 2") && s.contains("2 rows"), "{s}");
    // At the last step of the last window, stepping further stays put.
    p.cursor = 3;
    let reqs = p.key(key('j'));
    assert_eq!(p.cursor, 3);
    assert!(
        !reqs.iter().any(|r| matches!(r, Request::Page { .. })),
        "{reqs:?}"
    );
    // Past the end of a window that is not the session's last, the next one is asked for.
    p.header.last_seq = 5000;
    assert_eq!(p.key(key('j')), vec![Request::Page { forward: true }]);
}

#[test]
fn a_search_hit_is_shown_and_n_searches_on() {
    let mut p = player();
    p.key(key('/'));
    for c in "customers".chars() {
        p.key(key(c));
    }
    let s = screen(&draw(&p));
    assert!(s.contains("/customers"), "{s}");
    let reqs = p.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(
        reqs,
        vec![Request::Search {
            needle: "customers".into(),
            from: 0,
            forward: true
        }]
    );
    // The app found it at seq 5 and moved there.
    p.cursor = 3;
    p.message = Some("match at seq 5".into());
    p.detail = Some(detail(
        6,
        "result",
        "name\temail\nBob\t[redacted]",
        &["column:email=1"],
    ));
    let s = screen(&draw(&p));
    assert!(s.contains("match at seq 5"), "{s}");
    assert!(matches!(
        p.key(key('n')).as_slice(),
        [Request::Search {
            forward: true,
            from: 5,
            ..
        }]
    ));
}

#[test]
fn an_error_result_shows_its_sqlstate_and_message() {
    let mut p = player();
    p.cursor = 2;
    p.detail = Some(detail(
        4,
        "error",
        "42P01 ERROR: relation \"missing_table\" does not exist",
        &[],
    ));
    let s = screen(&draw(&p));
    assert!(s.contains("SQLSTATE 42P01"), "{s}");
    assert!(
        s.contains("relation \"missing_table\" does not exist"),
        "{s}"
    );
    assert!(s.contains("error"), "{s}");
}

#[test]
fn masked_cells_are_drawn_in_their_own_style() {
    let mut p = player();
    p.cursor = 3;
    p.detail = Some(detail(
        6,
        "result",
        "name\temail\nBob\t[redacted]",
        &["column:email=1"],
    ));
    for color in [true, false] {
        let mut t = Terminal::new(TestBackend::new(140, 24)).unwrap();
        t.draw(|f| draw_player(f, &p, &Theme { color })).unwrap();
        let buf = t.backend().buffer();
        let s = screen(&t);
        assert!(s.contains("[redacted]"), "{s}");
        assert!(s.contains("ok masked"), "the timeline says so:\n{s}");
        let (line, col) = s
            .lines()
            .enumerate()
            .find_map(|(y, l)| l.find("[redacted]").map(|x| (y, l[..x].chars().count())))
            .unwrap();
        let masked = buf.cell((col as u16, line as u16)).unwrap().style();
        let bob_col = s.lines().nth(line).unwrap().find("Bob").unwrap();
        let plain = buf
            .cell((
                s.lines().nth(line).unwrap()[..bob_col].chars().count() as u16,
                line as u16,
            ))
            .unwrap()
            .style();
        assert_ne!(
            masked, plain,
            "a masked cell must not look like a plain one (color {color})"
        );
        assert!(masked.add_modifier.contains(Modifier::ITALIC), "{masked:?}");
    }
}

#[test]
fn a_broken_chain_turns_the_badge_red_with_its_seq() {
    let mut p = player();
    p.integrity = Integrity::Broken {
        seq: 7,
        reason: "modified".into(),
    };
    let t = draw(&p);
    let s = screen(&t);
    assert!(s.contains("✘ broken at seq 7 (modified)"), "{s}");
    let x = s.lines().next().unwrap().find('✘').unwrap();
    let col = s.lines().next().unwrap()[..x].chars().count() as u16;
    let style = t.backend().buffer().cell((col, 0)).unwrap().style();
    assert_eq!(style.fg, Some(ratatui::style::Color::Red));
}

#[test]
fn the_hex_toggle_shows_the_raw_payload() {
    let mut p = player();
    p.key(key('x'));
    let s = screen(&draw(&p));
    assert!(s.contains("payload (hex)"), "{s}");
    assert!(s.contains("00000000  54 00 00 00 1f 69 64"), "{s}");
    assert!(s.contains("T....id"), "{s}");
}

#[test]
fn policy_outcomes_are_drawn_distinctly_in_the_timeline() {
    let mut p = player();
    let outcomes = [
        (Status::Blocked, "DROP TABLE orders", Color::Red),
        (
            Status::Held,
            "DELETE FROM orders WHERE id < 100",
            Color::Yellow,
        ),
        (
            Status::Approved,
            "UPDATE orders SET total = 0 WHERE id = 7",
            Color::Yellow,
        ),
        (Status::Denied, "TRUNCATE audit_log", Color::Red),
    ];
    let steps: Vec<Step> = outcomes
        .iter()
        .enumerate()
        .map(|(i, (status, sql, _))| {
            step(
                2 * i as u64 + 1,
                1000 * (i as i64 + 1),
                sql,
                Some(*status),
                Some(2 * i as u64 + 2),
            )
        })
        .collect();
    p.set_window(steps, (0, 2047), Some(1));
    let t = draw(&p);
    let s = screen(&t);
    let buf = t.backend().buffer();
    for (status, sql, colour) in outcomes {
        let (line, text) = s
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(&sql[..12]))
            .unwrap_or_else(|| panic!("{sql} is not on screen:\n{s}"));
        let word = status.as_str();
        let at = text
            .find(word)
            .unwrap_or_else(|| panic!("`{word}` missing on the line of {sql}:\n{s}"));
        let col = text[..at].chars().count() as u16;
        let style = buf.cell((col, line as u16)).unwrap().style();
        assert_eq!(style.fg, Some(colour), "{word}");
    }
}
