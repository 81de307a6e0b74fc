//! A caller with a valid login, told to get past the rules, against a real PostgreSQL
//! through the gateway: every way found so far of making the policy check read a
//! statement differently from the server, of hiding a statement kind below the top of
//! the tree, of running it indirectly, or of reading a denied table in another form.
//! Each case checks on the server itself that nothing ran (the victim table is still
//! there, its rows are all there, no file was written), not only that the client got
//! an error. Unparseable SQL is let through (`unparseable_sql = "open"`), the harder
//! setting: a bypass must be caught by reading the statement, not by refusing what the
//! parser does not know.
//!
//! A bypass found later becomes a case here first.

mod support;

use std::process::Command;
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::PgServer;
use support::raw_client::{RawClient, function_call, message, parse_bind_execute, sqlstate_of};

const KINDS: &str = r#"["drop", "truncate", "alter_role", "alter_role_password", "create_role",
  "grant", "revoke", "copy_program", "delete_without_where", "update_without_where",
  "catalog_write", "create_rule", "create_extension"]"#;

fn start(pg: &PgServer, extra_kinds: &str) -> GatewayProc {
    let indirect = if extra_kinds.is_empty() {
        String::new()
    } else {
        format!(
            "[[deny]]\nname = \"indirect\"\nkinds = [{extra_kinds}]\nmessage = \"indirect\"\n\n"
        )
    };
    let config = format!(
        "[policy]\nunparseable_sql = \"open\"\nunparseable_closed_groups = []\n\n\
         [[deny]]\nname = \"no-destruction\"\nkinds = {KINDS}\nmessage = \"destructive\"\n\n\
         {indirect}\
         [[deny]]\nname = \"payroll\"\ntables = [\"payroll\"]\nmessage = \"payroll is off limits\"\n\n\
         [[deny]]\nname = \"no-sleep\"\npattern = \"(?i)pg_sleep\"\nmessage = \"no sleeping\"\n\n\
         [[connections]]\nname = \"shop\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n"
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

fn setup(pg: &PgServer) {
    pg.psql_direct("postgres", "CREATE DATABASE shop");
    pg.psql_direct(
        "shop",
        "CREATE TABLE victim (id int); INSERT INTO victim SELECT generate_series(1, 5);\
         CREATE TABLE payroll (who text, amount int); INSERT INTO payroll VALUES ('ann', 123456);\
         CREATE ROLE reporter NOLOGIN; ANALYZE payroll;",
    );
}

/// The victim is there with all its rows, and no role was made a superuser.
fn untouched(pg: &PgServer, after: &str) {
    let n = pg.psql_direct("shop", "SELECT count(*) FROM victim");
    assert_eq!(n, "5", "victim changed after `{after}`");
    let supers = pg.psql_direct(
        "shop",
        "SELECT count(*) FROM pg_roles WHERE rolsuper AND rolname <> 'tapline_up'",
    );
    assert_eq!(supers, "0", "a superuser appeared after `{after}`");
    let roles = pg.psql_direct(
        "shop",
        "SELECT count(*) FROM pg_roles WHERE rolname = 'boss'",
    );
    assert_eq!(roles, "0", "a role was created after `{after}`");
}

/// `sql` is refused with 42501 and the rule named `rule` (its message), and the
/// session carries on.
async fn refused(client: &tokio_postgres::Client, sql: &str, message: &str) {
    match client.simple_query(sql).await {
        Ok(_) => panic!("`{sql}` was not refused"),
        Err(e) => {
            let db = e.as_db_error().unwrap_or_else(|| panic!("`{sql}`: {e}"));
            assert_eq!(db.code().code(), "42501", "`{sql}`: {}", db.message());
            assert_eq!(db.message(), message, "`{sql}`");
        }
    }
    let rows = client
        .simple_query("SELECT 1")
        .await
        .expect("the session goes on");
    assert!(!rows.is_empty());
}

#[test]
fn the_check_reads_strings_and_identifiers_as_the_server_does() {
    let pg = PgServer::start();
    setup(&pg);
    let gw = start(&pg, "");
    let marker = tempfile::tempdir().unwrap();
    let shell = marker.path().join("shell-ran");
    support::runtime().block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        // standard_conforming_strings off by SET, then the classic.
        c.simple_query("SET standard_conforming_strings = off")
            .await
            .unwrap();
        let attack = r"SELECT '\''; DROP TABLE victim; --'";
        refused(&c, attack, "destructive").await;
        untouched(&pg, attack);
        let attack = format!(
            r"SELECT '\''; COPY (SELECT 1) TO PROGRAM $$touch {}$$; --'",
            shell.display()
        );
        refused(&c, &attack, "destructive").await;
        assert!(!shell.exists(), "COPY TO PROGRAM ran");
        refused(
            &c,
            r"SELECT '\''; SELECT * FROM payroll; --'",
            "payroll is off limits",
        )
        .await;
        refused(&c, r"SELECT '\''; TRUNCATE victim; --'", "destructive").await;
        untouched(&pg, "TRUNCATE");
        // A string that is harmless under either reading still runs.
        let rows = c.simple_query(r"SELECT 'it\'s'").await.unwrap();
        let value = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(value.as_deref(), Some("it's"));

        // Off by set_config, and the attack pipelined right behind it, before the
        // server's report of the change can reach the gateway.
        c.simple_query("SET standard_conforming_strings = on")
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            c.simple_query("SELECT set_config('standard_conforming_strings', 'off', false)"),
            c.simple_query(r"SELECT 'x\' '; DROP TABLE victim; --'"),
        );
        a.unwrap();
        assert!(b.is_err(), "the pipelined DROP was not refused");
        untouched(&pg, "pipelined set_config");
        c.simple_query("SET standard_conforming_strings = on")
            .await
            .unwrap();

        // Unicode escapes in identifiers and strings.
        refused(&c, r#"SELECT U&"pg\005fsleep"(0)"#, "no sleeping").await;
        refused(
            &c,
            r#"SELECT U&"pg!005fsleep" UESCAPE '!' (0)"#,
            "no sleeping",
        )
        .await;
        refused(
            &c,
            r#"SELECT * FROM U&"p\0061yroll""#,
            "payroll is off limits",
        )
        .await;
        // Comments and dollar quotes hide nothing.
        refused(
            &c,
            "SELECT 1 /* ; */ ; DROP /* x */ TABLE victim",
            "destructive",
        )
        .await;
        refused(&c, "SELECT $a$ $b$ $a$; DROP TABLE victim", "destructive").await;
        untouched(&pg, "comments");
    });

    // A switch to SJIS pipelined ahead of a literal whose last character ends in
    // 0x5C: read with the old encoding, that byte escapes the closing quote.
    let mut raw = RawClient::connect(gw.port);
    let attack = b"SELECT E'\x95\x5c'; DROP TABLE victim; --'".to_vec();
    let replies = raw.pipelined(&[b"SET client_encoding = 'SJIS'", &attack]);
    assert_eq!(sqlstate_of(&replies[0]), None, "{:?}", replies[0]);
    assert_eq!(
        sqlstate_of(&replies[1]).as_deref(),
        Some("42501"),
        "{:?}",
        replies[1]
    );
    untouched(&pg, "pipelined SJIS");
    drop(raw);

    // Off from the startup packet, through psql.
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=agent dbname=shop",
            gw.port
        ))
        .env("PGOPTIONS", "-c standard_conforming_strings=off")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            r"SELECT '\''; DROP TABLE victim; --'",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("destructive"), "psql: {stderr}");
    untouched(&pg, "PGOPTIONS");
}

#[test]
fn statement_kinds_are_found_anywhere_in_the_tree() {
    let pg = PgServer::start();
    setup(&pg);
    let gw = start(&pg, "");
    support::runtime().block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        for sql in [
            "WITH d AS (DELETE FROM victim RETURNING *) SELECT count(*) FROM d",
            "EXPLAIN ANALYZE DELETE FROM victim",
            "EXPLAIN (ANALYZE, FORMAT JSON) UPDATE victim SET id = 0",
            "MERGE INTO victim v USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
            "DELETE FROM victim WHERE true",
            "DELETE FROM victim WHERE 1 = 1",
            "DELETE FROM victim WHERE 'yes'",
            "DELETE FROM victim WHERE id = id",
            "UPDATE victim SET id = id WHERE NOT false",
            "PREPARE p AS TRUNCATE victim",
            "ALTER USER tapline_up PASSWORD 'owned'",
            "ALTER GROUP reporter RENAME TO r2",
            "CREATE ROLE boss SUPERUSER",
            "CREATE USER boss",
            "UPDATE pg_authid SET rolsuper = true WHERE rolname = 'reporter'",
            "REVOKE ALL ON victim FROM public",
            "SELECT 1; WITH x AS (UPDATE victim SET id = 0 RETURNING 1) SELECT 1",
            "CREATE RULE r AS ON INSERT TO payroll DO ALSO DELETE FROM victim",
        ] {
            refused(&c, sql, "destructive").await;
            untouched(&pg, sql);
        }
        // Bounded writes still run.
        c.simple_query("DELETE FROM victim WHERE id > 100")
            .await
            .unwrap();
        c.simple_query("UPDATE victim SET id = id WHERE id = 1")
            .await
            .unwrap();
    });
}

#[test]
fn indirect_execution_runs_nothing_that_is_refused_directly() {
    let pg = PgServer::start();
    setup(&pg);
    let gw = start(
        &pg,
        r#""create_function", "create_trigger", "do_block", "dynamic_sql""#,
    );
    // The same rules without the indirect kinds: the bodies themselves are read.
    let gw_bodies = start(&pg, "");
    support::runtime().block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        for sql in [
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
            "DO $$ BEGIN PERFORM 1; END $$",
            "CREATE TRIGGER t AFTER INSERT ON victim FOR EACH ROW EXECUTE FUNCTION now()",
            "SELECT query_to_xml('select 1', true, false, '')",
        ] {
            refused(&c, sql, "indirect").await;
        }
        let c = support::login(gw_bodies.port, "agent", "shop").await;
        for (sql, message) in [
            (
                "CREATE FUNCTION wipe() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE victim; END $$",
                "destructive",
            ),
            (
                "CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM victim'",
                "destructive",
            ),
            (
                "CREATE PROCEDURE wipe() LANGUAGE plpgsql AS $$ BEGIN IF true THEN TRUNCATE victim; END IF; END $$",
                "destructive",
            ),
            ("DO $$ BEGIN EXECUTE 'DROP TABLE victim'; END $$", "destructive"),
            ("DO $d$ BEGIN DELETE FROM victim WHERE 1 = 1; END $d$", "destructive"),
            // Computed SQL text: the first rule refuses it (any kind, any table).
            (
                "DO $$ BEGIN EXECUTE 'SELECT * FROM ' || 'pay' || 'roll'; END $$",
                "destructive",
            ),
            (
                "SELECT query_to_xml('select * from payroll', true, false, '')",
                "payroll is off limits",
            ),
            (
                "SELECT query_to_xml('DELETE FROM victim RETURNING id', true, false, '')",
                "destructive",
            ),
        ] {
            refused(&c, sql, message).await;
            untouched(&pg, sql);
        }
        let funcs = pg.psql_direct("shop", "SELECT count(*) FROM pg_proc WHERE proname = 'wipe'");
        assert_eq!(funcs, "0", "a refused function was created");
    });
    // Kind rules alone (no table rule to refuse what it cannot read): SQL computed at
    // run time may be any kind, so it is refused too.
    let kinds_only = GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            ..Default::default()
        },
        &format!(
            "[[deny]]\nname = \"no-destruction\"\nkinds = {KINDS}\nmessage = \"destructive\"\n\n\
             [[connections]]\nname = \"shop\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
             upstream_password_env = \"{PASSWORD_ENV}\"\n"
        ),
    );
    let shell = pg.dir().join("program-ran");
    support::runtime().block_on(async {
        let c = support::login(kinds_only.port, "agent", "shop").await;
        for sql in [
            "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'victim'); END $$".to_string(),
            "DO $$ BEGIN EXECUTE 'DR' || 'OP TABLE victim'; END $$".to_string(),
            "DO $$ BEGIN EXECUTE chr(68) || 'ELETE FROM victim'; END $$".to_string(),
            "DO $$ DECLARE q text := 'TRUNCATE victim'; BEGIN EXECUTE q; END $$".to_string(),
            format!(
                "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}'''; END $$",
                shell.display()
            ),
            format!(
                "DO $$ BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch {}'); END $$",
                shell.display()
            ),
            "SELECT query_to_xml(format('DELETE FROM %I RETURNING id', 'victim'), true, false, '')"
                .to_string(),
            "CREATE FUNCTION wipe(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE ' || t; END $$"
                .to_string(),
        ] {
            refused(&c, &sql, "destructive").await;
            untouched(&pg, &sql);
        }
        assert!(!shell.exists(), "COPY TO PROGRAM ran");
        // Constant dynamic SQL that is harmless still runs.
        c.simple_query("DO $$ BEGIN EXECUTE 'SELECT 1'; END $$")
            .await
            .expect("a constant, harmless EXECUTE");
    });
}

#[test]
fn table_rules_cover_every_form_that_reads_the_table() {
    let pg = PgServer::start();
    setup(&pg);
    let gw = start(&pg, "");
    support::runtime().block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        for sql in [
            "SELECT * FROM ONLY payroll",
            "COPY payroll TO STDOUT",
            "COPY (SELECT * FROM payroll) TO STDOUT",
            "SELECT (SELECT amount FROM payroll LIMIT 1)",
            "WITH p AS (SELECT * FROM payroll) SELECT * FROM p",
            "CREATE VIEW pv AS SELECT * FROM payroll",
            "SELECT table_to_xml('payroll', true, false, '')",
            "SELECT table_to_xml('public.payroll'::regclass, true, false, '')",
            "SELECT most_common_vals FROM pg_stats WHERE tablename = 'payroll'",
            "SELECT * FROM pg_catalog.pg_statistic",
            "ALTER TABLE payroll RENAME TO p2",
            "LOCK payroll",
            "SELECT * FROM \"payroll\"",
            "SELECT * FROM public . payroll",
            // The same forms inside SQL text the server runs later.
            "DO $$ BEGIN EXECUTE 'ALTER TABLE payroll RENAME TO p2'; END $$",
            "DO $$ BEGIN LOCK payroll; END $$",
            "CREATE FUNCTION ren() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE payroll RENAME TO p2; END $$",
            "SELECT query_to_xml('LOCK payroll', true, false, '')",
        ] {
            refused(&c, sql, "payroll is off limits").await;
        }
        let views = pg.psql_direct(
            "shop",
            "SELECT count(*) FROM pg_views WHERE viewname = 'pv'",
        );
        assert_eq!(views, "0");
        let tables = pg.psql_direct(
            "shop",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'payroll'",
        );
        assert_eq!(tables, "1", "payroll was renamed");
        // Other tables still read.
        c.simple_query("SELECT count(*) FROM victim").await.unwrap();
    });
}

/// Makes `bump()`, which counts its calls in `counter.n`; returns its OID.
fn counting_function(pg: &PgServer) -> u32 {
    pg.psql_direct(
        "shop",
        "CREATE TABLE counter (n int); INSERT INTO counter VALUES (0);\
         CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS $$ UPDATE counter SET n = n + 1 RETURNING n $$;",
    );
    pg.psql_direct("shop", "SELECT 'bump'::regproc::oid")
        .parse()
        .unwrap()
}

/// A raw protocol client: logs in (trusted) and sends fast-path FunctionCalls, as
/// libpq's PQfn does; returns each reply's messages up to ReadyForQuery.
#[test]
fn fast_path_calls_are_refused_under_rules_and_their_results_masked() {
    let pg = PgServer::start();
    setup(&pg);
    let bump = counting_function(&pg);
    pg.psql_direct(
        "shop",
        "CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS $$ SELECT 'card 4111111111111111 of ann' $$;",
    );
    let leak: u32 = pg
        .psql_direct("shop", "SELECT 'leak'::regproc::oid")
        .parse()
        .unwrap();

    // Rules apply and nothing is allowed: every call is refused before it runs.
    let gw = start(&pg, "");
    let mut c = RawClient::connect(gw.port);
    let reply = c.call(bump);
    assert_eq!(sqlstate_of(&reply).as_deref(), Some("42501"), "{reply:?}");
    assert_eq!(
        pg.psql_direct("shop", "SELECT n FROM counter"),
        "0",
        "bump() ran"
    );
    let reply = c.call(leak);
    assert_eq!(sqlstate_of(&reply).as_deref(), Some("42501"));

    // Allowed by name: it runs, recorded under its name, and its value is masked for
    // the client and the archive.
    let config = format!(
        "[policy]\nallow_fast_path = [\"leak\"]\n\n\
         [[deny]]\nname = \"no-destruction\"\nkinds = [\"drop\"]\n\n\
         [[mask]]\nname = \"pii\"\ndetectors = [\"credit_card\"]\nstrategy = \"redact\"\n\n\
         [[connections]]\nname = \"shop\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n"
    );
    let mut allowed = GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    );
    let mut c = RawClient::connect(allowed.port);
    let reply = c.call(leak);
    let (_, value) = reply
        .iter()
        .find(|(t, _)| *t == b'V')
        .unwrap_or_else(|| panic!("no function result: {reply:?}"));
    let text = String::from_utf8_lossy(&value[4..]).into_owned();
    assert_eq!(text, "card [redacted] of ann");
    let reply = c.call(bump);
    assert_eq!(
        sqlstate_of(&reply).as_deref(),
        Some("42501"),
        "not in the list"
    );
    assert_eq!(pg.psql_direct("shop", "SELECT n FROM counter"), "0");
    drop(c);
    assert!(allowed.stop(), "{}", allowed.log());
    let archive = support::parquet_dump::decompressed_archive(allowed.archive());
    let needle = b"4111111111111111";
    assert!(
        !archive.windows(needle.len()).any(|w| w == needle),
        "the raw card number is in the archive"
    );
    let rows = support::query_json(
        allowed.archive(),
        "SELECT command, status FROM commands WHERE command LIKE '<fast-path%' ORDER BY seq",
    );
    let text = serde_json::to_string(&rows).unwrap();
    assert!(text.contains("<fast-path call of leak(), oid"), "{text}");
    assert!(text.contains("blocked"), "{text}");
}

#[test]
fn a_fast_path_call_inside_an_unsynced_batch_is_refused_in_order() {
    let pg = PgServer::start();
    setup(&pg);
    let bump = counting_function(&pg);
    let gw = start(&pg, "");
    let mut c = RawClient::connect(gw.port);
    // Parse/Bind/Execute, then a FunctionCall before the Sync, all in one write.
    let mut batch = parse_bind_execute("SELECT 41 + 1");
    batch.extend(function_call(bump));
    batch.extend(message(b'S', &[]));
    c.send(&batch);
    let first = c.until_ready();
    let tags: Vec<u8> = first.iter().map(|(t, _)| *t).collect();
    // The batch's own answers come first, then the refusal of the call.
    let row = tags.iter().position(|t| *t == b'D').expect("the row");
    let error = tags.iter().position(|t| *t == b'E').expect("the refusal");
    assert!(row < error, "out of order: {tags:?}");
    assert_eq!(RawClient::rows(&first), [vec![Some("42".to_string())]]);
    assert_eq!(sqlstate_of(&first).as_deref(), Some("42501"), "{first:?}");
    assert_eq!(
        pg.psql_direct("shop", "SELECT n FROM counter"),
        "0",
        "bump() ran"
    );
    // Whatever is left of the batch ends at ReadyForQuery, and the session is in step.
    assert_eq!(tags.last(), Some(&b'Z'), "the session was closed: {tags:?}");
    let reply = c.pipelined(&[b"SELECT 'after'"]);
    let mut rows = RawClient::rows(reply.last().unwrap());
    if rows.is_empty() {
        // The Sync's own ReadyForQuery came first.
        rows = RawClient::rows(&c.until_ready());
    }
    assert_eq!(rows, [vec![Some("after".to_string())]]);
}

#[test]
fn card_numbers_the_client_sends_reach_the_upstream_but_not_the_archive() {
    let pg = PgServer::start();
    setup(&pg);
    pg.psql_direct("shop", "CREATE TABLE cards (id int, card text)");
    let config = format!(
        "[[mask]]\nname = \"pci\"\ndetectors = [\"credit_card\"]\nstrategy = \"redact\"\n\n\
         [[connections]]\nname = \"shop\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n"
    );
    let mut gw = GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    );
    // A literal (simple query), a bind parameter (extended), and a COPY row.
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=agent dbname=shop",
            gw.port
        ))
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "INSERT INTO cards VALUES (1, '4111111111111111')",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    support::runtime().block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        c.execute(
            "INSERT INTO cards VALUES (2, $1)",
            &[&"5500 0000 0000 0004"],
        )
        .await
        .unwrap();
    });
    let mut copy = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=agent dbname=shop",
            gw.port
        ))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", "COPY cards FROM STDIN"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = copy.stdin.take().unwrap();
        stdin.write_all(b"3\t378282246310005\n").unwrap();
    }
    assert!(copy.wait().unwrap().success());
    // The upstream got every value exactly.
    let stored = pg.psql_direct(
        "shop",
        "SELECT string_agg(card, ',' ORDER BY id) FROM cards",
    );
    assert_eq!(
        stored,
        "4111111111111111,5500 0000 0000 0004,378282246310005"
    );
    assert!(gw.stop(), "{}", gw.log());
    let archive = support::parquet_dump::decompressed_archive(gw.archive());
    for raw in [
        &b"4111111111111111"[..],
        b"5500 0000 0000 0004",
        b"378282246310005",
    ] {
        assert!(
            !archive.windows(raw.len()).any(|w| w == raw),
            "{} is in the archive",
            String::from_utf8_lossy(raw)
        );
    }
    let rows = support::query_json(
        gw.archive(),
        "SELECT command, masked FROM events WHERE direction = 'client' AND cardinality(masked) > 0 ORDER BY seq",
    );
    let text = serde_json::to_string(&rows).unwrap();
    assert!(
        text.contains("INSERT INTO cards VALUES (1, '[redacted]')"),
        "{text}"
    );
    assert!(text.contains("pci/detector:credit_card"), "{text}");
}

#[test]
fn a_connection_can_keep_its_sessions_to_the_encodings_it_expects() {
    let pg = PgServer::start();
    setup(&pg);
    let config = format!(
        "[policy]\nclient_encodings = [\"UTF8\", \"LATIN1\"]\n\n\
         [[deny]]\nname = \"no-destruction\"\nkinds = [\"drop\"]\n\n\
         [[connections]]\nname = \"shop\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n"
    );
    let gw = GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    );
    let psql = |encoding: &str, sql: &str| {
        Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=agent dbname=shop",
                gw.port
            ))
            .env("PGCLIENTENCODING", encoding)
            .args(["-X", "-A", "-t", "-c", sql])
            .output()
            .unwrap()
    };
    let ok = psql("LATIN1", "SHOW client_encoding");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "LATIN1");
    let refused = psql("SJIS", "SELECT 1");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(err.contains("client_encoding SJIS is not allowed"), "{err}");
    assert!(err.contains("allowed: UTF8, LATIN1"), "{err}");
    // A switch after login ends the session as soon as the server reports it.
    let mut raw = RawClient::connect(gw.port);
    let replies = raw.pipelined(&[b"SET client_encoding = 'BIG5'"]);
    let fatal = replies[0]
        .iter()
        .any(|(t, body)| *t == b'E' && String::from_utf8_lossy(body).contains("22023"));
    assert!(fatal, "{:?}", replies[0]);
}
