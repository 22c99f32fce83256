//! The neutral SQL on a real PostgreSQL: every value type through every column type it may meet,
//! what is refused and why, transactions that fail or are left open, and migrations raced by many
//! nodes. Each test gets a database of its own (see `support::pg`) and is skipped without a server.

mod support;

use std::sync::{Arc, Barrier};

use sitesync_core::Error;
use sitesync_core::store::sql::{Dialect, Value, transaction};
use sitesync_server::storage::{Database, PgDatabase, SqliteDatabase, migrate, with};

fn database_error(result: sitesync_core::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Database(why)) => why,
        other => panic!("expected a database error, got {other:?}"),
    }
}

#[test]
fn every_value_round_trips_through_every_column_type() {
    let Some(test) = support::pg::database() else { return };
    let db = test.connect(2);
    assert_eq!(db.dialect(), Dialect::Postgres);
    with(&db, |sql| {
        assert_eq!(sql.dialect(), Dialect::Postgres);
        sql.batch(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, i BIGINT, n INTEGER, h SMALLINT, f BOOLEAN, s TEXT, \
             v VARCHAR(20), b BYTEA)",
        )?;
        let full = [
            Value::Int(1),
            Value::Int(i64::MIN),
            Value::Int(-7),
            Value::Int(300),
            Value::Int(1),
            "工地 'quoted' ?".into(),
            "v".into(),
            Value::Bytes(vec![0, 255, 10]),
        ];
        assert_eq!(sql.exec("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &full)?, 1);
        let mut nulls = vec![Value::Int(2)];
        nulls.extend(std::iter::repeat_n(Value::Null, 7));
        sql.exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &nulls)?;
        sql.exec(
            "INSERT INTO t (id, f, b) VALUES (?1, ?2, ?3)",
            &[3.into(), false.into(), Vec::<u8>::new().into()],
        )?;

        let rows = sql.query("SELECT id, i, n, h, f, s, v, b FROM t ORDER BY id", &[])?;
        assert_eq!(rows[0].0, full);
        assert_eq!(rows[1].0, nulls);
        assert_eq!(rows[2].int(4)?, 0, "false reads as 0");
        assert_eq!(rows[2].bytes(7)?, Vec::<u8>::new());
        // A NULL compared through a placeholder of each type, and text read back from a literal.
        let row = sql.one(
            "SELECT COUNT(*), 'lit', CAST(?1 AS TEXT) IS NULL FROM t WHERE i IS NOT DISTINCT FROM ?2",
            &[Value::Null, Value::Null],
        )?;
        assert_eq!(row.0, vec![Value::Int(2), "lit".into(), Value::Int(1)]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn values_postgresql_would_misread_are_refused_with_the_fix() {
    let Some(test) = support::pg::database() else { return };
    let db = test.connect(1);
    with(&db, |sql| {
        sql.batch("CREATE TABLE t (i BIGINT PRIMARY KEY, n INTEGER, f BOOLEAN, s TEXT)")?;
        sql.exec("INSERT INTO t (i) VALUES (?1), (?2)", &[1.into(), 2.into()])?;
        Ok(())
    })
    .unwrap();
    let run = |stmt: &str, params: &[Value]| with(&db, |sql| sql.query(stmt, params));

    let sum = database_error(run("SELECT SUM(i) FROM t", &[]));
    assert!(sum.contains("AS BIGINT") && sum.contains("numeric"), "{sum}");
    assert_eq!(
        run("SELECT CAST(SUM(i) AS BIGINT) FROM t", &[]).unwrap()[0]
            .int(0)
            .unwrap(),
        3
    );
    let float = database_error(run("SELECT 1.5::float8", &[]));
    assert!(float.contains("AS BIGINT"), "{float}");

    let wide = database_error(run("UPDATE t SET n = ?1", &[Value::Int(1 << 40)]));
    assert!(wide.contains("does not fit INTEGER"), "{wide}");
    let not_bool = database_error(run("UPDATE t SET f = ?1", &[Value::Int(2)]));
    assert!(not_bool.contains("BOOLEAN"), "{not_bool}");
    let text_for_int = database_error(run("SELECT * FROM t WHERE i = ?1", &["1".into()]));
    assert!(
        text_for_int.contains("int8") && text_for_int.contains("cannot take text"),
        "{text_for_int}"
    );
    let count = database_error(run("SELECT * FROM t WHERE i = ?1", &[]));
    assert!(count.contains("takes 1 parameters, 0 given"), "{count}");
    let mixed = database_error(run("SELECT * FROM t WHERE i = ? OR i = ?1", &[1.into()]));
    assert!(mixed.contains("mixes"), "{mixed}");

    // The server's own errors come through with their SQLSTATE.
    let duplicate = database_error(with(&db, |sql| sql.exec("INSERT INTO t (i) VALUES (?1)", &[1.into()])));
    assert!(duplicate.contains("SQLSTATE 23505"), "{duplicate}");
    let missing = database_error(run("SELECT * FROM nowhere", &[]));
    assert!(missing.contains("SQLSTATE 42P01"), "{missing}");
}

#[test]
fn a_failed_transaction_leaves_nothing() {
    let Some(test) = support::pg::database() else { return };
    let db = test.connect(1);
    with(&db, |sql| sql.batch("CREATE TABLE t (i BIGINT)")).unwrap();
    let failed: sitesync_core::Result<()> = with(&db, |sql| {
        transaction(sql, true, |tx| {
            tx.exec("INSERT INTO t VALUES (?1)", &[1.into()])?;
            Err(Error::Database("refused".into()))
        })
    });
    assert!(failed.is_err());
    let committed = with(&db, |sql| {
        transaction(sql, true, |tx| tx.exec("INSERT INTO t VALUES (?1)", &[2.into()]))
    });
    assert_eq!(committed.unwrap(), 1);
    let rows = with(&db, |sql| sql.query("SELECT i FROM t", &[])).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].int(0).unwrap(), 2, "only the committed insert is there");
}

#[test]
fn a_call_that_leaves_a_transaction_open_does_not_poison_the_next() {
    let Some(test) = support::pg::database() else { return };
    // One connection, so every call below gets the one the previous call left.
    let db = test.connect(1);
    let other = test.connect(1);
    with(&db, |sql| sql.batch("CREATE TABLE t (i BIGINT)")).unwrap();
    let backend = |db: &PgDatabase| with(db, |sql| sql.one("SELECT pg_backend_pid()", &[])?.int(0)).unwrap();
    let first = backend(&db);

    // Returns with a transaction open and a row in it.
    with(&db, |sql| {
        sql.exec("BEGIN", &[])?;
        sql.exec("INSERT INTO t VALUES (?1)", &[1.into()])?;
        Ok(())
    })
    .unwrap();
    // Returns with a transaction aborted by a failed statement.
    with(&db, |sql| {
        sql.batch("BEGIN; INSERT INTO t VALUES (2)")?;
        assert!(sql.exec("SELECT * FROM nowhere", &[]).is_err());
        Ok(())
    })
    .unwrap();
    assert_eq!(backend(&db), first, "the same connection, rolled back, not replaced");

    // Panics inside a transaction.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with(&db, |sql| -> sitesync_core::Result<()> {
            sql.exec("BEGIN", &[])?;
            sql.exec("INSERT INTO t VALUES (?1)", &[3.into()])?;
            panic!("a bug in a handler");
        })
    }));
    assert!(panicked.is_err());

    // The next caller writes outside any transaction: another connection sees it at once.
    with(&db, |sql| sql.exec("INSERT INTO t VALUES (?1)", &[4.into()])).unwrap();
    let seen = with(&other, |sql| sql.query("SELECT i FROM t ORDER BY i", &[])).unwrap();
    let seen: Vec<i64> = seen.iter().map(|r| r.int(0).unwrap()).collect();
    assert_eq!(
        seen,
        vec![4],
        "nothing of the abandoned transactions, and the new write committed"
    );
}

/// Three steps, each of which fails if it runs twice.
const STEPS: [(i64, &str); 3] = [
    (1, "CREATE TABLE people (id TEXT PRIMARY KEY)"),
    (2, "INSERT INTO people VALUES ('first')"),
    (3, "ALTER TABLE people ADD COLUMN name TEXT NOT NULL DEFAULT ''"),
];

#[test]
fn migrations_raced_by_eight_nodes_apply_each_step_once() {
    let Some(test) = support::pg::database() else { return };
    let nodes = 8;
    let start = Arc::new(Barrier::new(nodes));
    let url = test.url().to_owned();
    let threads: Vec<_> = (0..nodes)
        .map(|_| {
            let start = Arc::clone(&start);
            let url = url.clone();
            std::thread::spawn(move || {
                let db = PgDatabase::connect(&url, 2).unwrap();
                start.wait();
                migrate(&db, &STEPS).unwrap()
            })
        })
        .collect();
    let mut applied: Vec<i64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    applied.sort_unstable();
    assert_eq!(applied, vec![1, 2, 3], "each step applied by exactly one node");

    let db = test.connect(1);
    let recorded = with(&db, |sql| {
        sql.query(
            "SELECT version, applied_at FROM sitesync.schema_migrations ORDER BY 1",
            &[],
        )
    })
    .unwrap();
    assert_eq!(
        recorded.iter().map(|r| r.int(0).unwrap()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let people = with(&db, |sql| sql.one("SELECT COUNT(*) FROM people", &[])?.int(0)).unwrap();
    assert_eq!(people, 1);
    assert_eq!(
        migrate(&db, &STEPS).unwrap(),
        Vec::<i64>::new(),
        "a restart applies nothing"
    );
}

#[test]
fn a_schema_from_a_newer_build_is_refused_and_left_alone() {
    let Some(test) = support::pg::database() else { return };
    let db = test.connect(1);
    assert_eq!(migrate(&db, &STEPS[..2]).unwrap(), vec![1, 2]);
    assert_eq!(migrate(&db, &STEPS).unwrap(), vec![3], "a newer build adds its step");
    match migrate(&db, &STEPS[..2]) {
        Err(Error::StoreTooNew { found, supported }) => assert_eq!((found, supported), (3, 2)),
        other => panic!("an older build must refuse the newer schema, got {other:?}"),
    }
    let versions = with(&db, |sql| {
        sql.one("SELECT COUNT(*) FROM sitesync.schema_migrations", &[])?.int(0)
    })
    .unwrap();
    assert_eq!(versions, 3);

    let unordered = database_error(migrate(&db, &[(2, "SELECT 1"), (1, "SELECT 1")]));
    assert!(unordered.contains("must increase"), "{unordered}");
    let sqlite = SqliteDatabase::new(rusqlite::Connection::open_in_memory().unwrap());
    assert!(matches!(migrate(&sqlite, &STEPS), Err(Error::Database(_))));
}

#[test]
fn the_postgres_date_guard_accepts_dates_only() {
    let Some(test) = support::pg::database() else { return };
    let db = test.connect(1);
    let guard = Dialect::Postgres.date_guard("?1");
    let ok = |d: &str| with(&db, |sql| sql.one(&format!("SELECT {guard}"), &[d.into()])?.int(0)).unwrap() == 1;
    assert!(ok("2026-11-30"));
    assert!(!ok("10000-01-01"));
    assert!(!ok("2026-1-30"));
    assert!(!ok("2026-11-30x"));

    // And on a column, as the projections use it.
    let column_guard = Dialect::Postgres.date_guard("day");
    let dated = with(&db, |sql| {
        sql.batch("CREATE TABLE days (day TEXT); INSERT INTO days VALUES ('2026-11-30'), ('yesterday'), (NULL)")?;
        sql.one(&format!("SELECT COUNT(*) FROM days WHERE {column_guard}"), &[])?
            .int(0)
    })
    .unwrap();
    assert_eq!(dated, 1);
}
