//! Test harness: every test gets its own uniquely named databases on both servers
//! (created at start, dropped in `Drop`, which also runs when the test panics;
//! `TEST_KEEP_DBS=1` keeps them), and runs the real binary in its own temp directory
//! with a clean configuration environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use mysql_async::prelude::*;

/// A prefix put in front of every database, role and container the tests create
/// (`PGCONVERGE_TEST_PREFIX`, default none), so they can share a server with names of
/// their own.
pub fn test_prefix() -> String {
    std::env::var("PGCONVERGE_TEST_PREFIX").unwrap_or_default()
}

pub fn mysql_url() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The MariaDB with its binary log on (delta chains): scripts/dev-services.sh starts it.
pub fn mysql_binlog_url() -> String {
    std::env::var("TEST_MYSQL_BINLOG_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3307".into())
}

pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Run a future to completion on a private runtime (tests are plain `#[test]`s).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(f)
}

fn mysql_opts(db: Option<&str>) -> mysql_async::Opts {
    mysql_opts_at(&mysql_url(), db)
}

fn mysql_opts_at(url: &str, db: Option<&str>) -> mysql_async::Opts {
    let base = mysql_async::Opts::from_url(url).expect("a MySQL test URL");
    mysql_async::OptsBuilder::from_opts(base)
        .db_name(db.map(str::to_string))
        .prefer_socket(false)
        .into()
}

pub fn pg_config(db: &str) -> tokio_postgres::Config {
    let mut c: tokio_postgres::Config = postgres_url().parse().expect("TEST_POSTGRES_URL");
    c.dbname(db);
    c
}

/// Run SQL (several statements allowed) on MySQL, in `db` or without a database.
pub fn mysql_exec(db: Option<&str>, sql: &str) {
    mysql_exec_at(&mysql_url(), db, sql)
}

/// `mysql_exec` on the server at `url`.
pub fn mysql_exec_at(url: &str, db: Option<&str>, sql: &str) {
    block(async {
        let mut conn = mysql_async::Conn::new(mysql_opts_at(url, db))
            .await
            .unwrap_or_else(|e| panic!("mysql connect to {url}: {e}"));
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("mysql: {e}\n{sql}"));
        conn.disconnect().await.ok();
    })
}

/// Rows of a MySQL query as text (text protocol; NULL is None).
pub fn mysql_rows(db: &str, sql: &str) -> Vec<Vec<Option<Vec<u8>>>> {
    mysql_rows_at(&mysql_url(), db, sql)
}

/// `mysql_rows` on the server at `url`.
pub fn mysql_rows_at(url: &str, db: &str, sql: &str) -> Vec<Vec<Option<Vec<u8>>>> {
    block(async {
        let mut conn = mysql_async::Conn::new(mysql_opts_at(url, Some(db)))
            .await
            .expect("mysql connect");
        conn.query_drop("SET time_zone = '+00:00'")
            .await
            .expect("mysql time_zone");
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.expect("mysql query");
        rows.into_iter()
            .map(|r| {
                r.unwrap_raw()
                    .into_iter()
                    .map(|v| match v {
                        None | Some(mysql_async::Value::NULL) => None,
                        Some(mysql_async::Value::Bytes(b)) => Some(b),
                        Some(other) => Some(other.as_sql(true).into_bytes()),
                    })
                    .collect()
            })
            .collect()
    })
}

/// Run SQL that may fail on PostgreSQL database `db`: the server's message when it does.
pub fn pg_try(db: &str, sql: &str) -> Result<(), String> {
    block(async {
        let (client, conn) = pg_config(db)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("pg connect");
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("{e:?}"))
    })
}

/// Run SQL (several statements allowed) on PostgreSQL database `db`.
pub fn pg_exec(db: &str, sql: &str) {
    block(async {
        let (client, conn) = pg_config(db)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("pg connect");
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("postgres: {e:?}\n{sql}"));
    })
}

/// Rows of a PostgreSQL query, every column cast to text by the caller's SQL or here via
/// the simple-query protocol (text form; NULL is None).
pub fn pg_rows(db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    block(async {
        let (client, conn) = pg_config(db)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("pg connect");
        tokio::spawn(conn);
        let msgs = client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("postgres: {e:?}\n{sql}"));
        msgs.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A test's private world: a MySQL database, a PostgreSQL database (same name) and a
/// working directory. Dropped at the end of the test, even after a panic.
pub struct World {
    pub db: String,
    pub dir: tempfile::TempDir,
    /// The MySQL server of this world's source database.
    pub mysql_url: String,
    keep: bool,
    /// More PostgreSQL databases of this test (`pg_db`), dropped with it.
    extra: std::cell::RefCell<Vec<String>>,
}

impl World {
    pub fn new(test: &str) -> World {
        World::on(test, mysql_url())
    }

    /// A world whose source database lives on the MariaDB with the binary log on (delta
    /// chains). Fails, naming the fix, when that server does not answer.
    pub fn binlog(test: &str) -> World {
        let url = mysql_binlog_url();
        let up = block(async {
            match mysql_async::Conn::new(mysql_opts_at(&url, None)).await {
                Ok(c) => {
                    let _ = c.disconnect().await;
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        });
        if let Err(e) = up {
            panic!(
                "the MariaDB with the binary log ({url}, TEST_MYSQL_BINLOG_URL) does not answer: \
                 {e}; scripts/dev-services.sh starts it"
            );
        }
        World::on(test, url)
    }

    /// A world whose source database lives on the MySQL server at `mysql_url`.
    pub fn on(test: &str, mysql_url: String) -> World {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let short: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let db = format!("{}pgc_{short}_{}_{n}", test_prefix(), std::process::id());
        mysql_exec_at(
            &mysql_url,
            None,
            &format!(
                "DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ),
        );
        pg_exec(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        );
        pg_exec("postgres", &format!("CREATE DATABASE \"{db}\""));
        World {
            db,
            mysql_url,
            dir: tempfile::tempdir().expect("tempdir"),
            keep: std::env::var("TEST_KEEP_DBS").is_ok_and(|v| v == "1"),
            extra: Default::default(),
        }
    }

    /// Another PostgreSQL database of this test, `<db>_<suffix>`, created empty.
    pub fn pg_db(&self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.db);
        pg_exec(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
        pg_exec("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.extra.borrow_mut().push(name.clone());
        name
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary, in this world's directory, configured only through the test URLs.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pgconverge"));
        c.current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("MYSQL_")
                || k.starts_with("POSTGRES_")
                || k.starts_with("PGCONVERGE_")
                || k == "ALKEMIO_DB"
                || k == "KRATOS_DB"
            {
                c.env_remove(k);
            }
        }
        c.env("MYSQL_URL", &self.mysql_url)
            .env("POSTGRES_URL", postgres_url())
            .env("PGCONVERGE_RUN_LOG", self.run_log());
        c
    }

    /// The binary on a pseudo-terminal (`script`), configured as `cmd` is, with
    /// `command_line` as its arguments; stdin, stdout and stderr piped.
    pub fn in_terminal(&self, command_line: &str) -> Command {
        let bin = env!("CARGO_BIN_EXE_pgconverge");
        let mut script = Command::new("script");
        script
            .args(["-qec", &format!("{bin} {command_line}"), "/dev/null"])
            .current_dir(self.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // The world's configuration: its variables set, the others removed.
        for (k, v) in self.cmd().get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        script
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run pgconverge")
    }

    /// `import DIR --yes --copy-format FORMAT` (the tests that compare both COPY paths).
    pub fn import_as(&self, dir: &Path, format: &str) -> Output {
        self.run(&[
            "import",
            dir.to_str().expect("a UTF-8 path"),
            "--yes",
            "--copy-format",
            format,
        ])
    }

    pub fn run_log(&self) -> PathBuf {
        self.path().join("migration_log.jsonl")
    }

    /// Every entry of the run log, oldest first.
    /// The statements the last import ran: its `import_*.sql` journal, beside the run log.
    /// The newest import's narrative journal (`import_*.log`).
    pub fn journal_log(&self) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "log")
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("import_"))
            })
            .collect();
        logs.sort();
        std::fs::read_to_string(logs.last().expect("an import_*.log journal")).unwrap()
    }

    pub fn journal_sql(&self) -> String {
        let mut sql: Vec<PathBuf> = std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        sql.sort();
        std::fs::read_to_string(sql.last().expect("an import_*.sql journal")).unwrap()
    }

    pub fn run_log_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.run_log())
            .expect("the run log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The `status` of every run-log entry, oldest first.
    pub fn run_log_statuses(&self) -> Vec<String> {
        self.run_log_entries()
            .iter()
            .map(|e| e["status"].as_str().expect("a status").to_string())
            .collect()
    }

    pub fn mysql(&self, sql: &str) {
        mysql_exec_at(&self.mysql_url, Some(&self.db), sql)
    }

    /// Rows of a query on this world's MySQL database (text; NULL is None).
    pub fn mysql_rows(&self, sql: &str) -> Vec<Vec<Option<Vec<u8>>>> {
        mysql_rows_at(&self.mysql_url, &self.db, sql)
    }

    pub fn pg(&self, sql: &str) {
        pg_exec(&self.db, sql)
    }

    pub fn pg_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        pg_rows(&self.db, sql)
    }

    /// One PostgreSQL value as text.
    pub fn pg_value(&self, sql: &str) -> Option<String> {
        self.pg_rows(sql)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten()
    }

    /// The index-related catalog of every user schema, one line per fact: `pg_indexes`
    /// (with the tablespace), each index's flags (unique, primary, exclusion, immediate,
    /// clustered, valid, replica identity), its comment, statistics targets and the
    /// partitioned index it is attached to, every constraint (`pg_get_constraintdef`,
    /// deferrability, validated, backing index, inheritance, comment), the foreign keys'
    /// triggers, each table's replica identity and NOT NULL columns. Equal before and
    /// after an import means its index rebuilds put everything back as it was.
    pub fn index_catalog(&self) -> Vec<String> {
        const USER: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')";
        let queries = [
            format!(
                "SELECT 'index', i.schemaname, i.tablename, i.indexname, coalesce(i.tablespace, '-'), i.indexdef
                 FROM pg_indexes i JOIN pg_namespace n ON n.nspname = i.schemaname WHERE {USER}"
            ),
            format!(
                "SELECT 'flags', x.indexrelid::regclass::text, x.indisunique, x.indisprimary,
                        x.indisexclusion, x.indimmediate, x.indisclustered, x.indisvalid,
                        x.indisready, x.indislive, x.indisreplident, x.indnkeyatts,
                        coalesce(obj_description(x.indexrelid, 'pg_class'), '-'),
                        ARRAY(SELECT a.attnum || '=' || a.attstattarget FROM pg_attribute a
                              WHERE a.attrelid = x.indexrelid ORDER BY a.attnum)::text,
                        coalesce((SELECT h.inhparent::regclass::text FROM pg_inherits h
                                  WHERE h.inhrelid = x.indexrelid), '-'),
                        coalesce(c.reloptions::text, '-')
                 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER}"
            ),
            format!(
                "SELECT 'constraint', con.conrelid::regclass::text, con.conname, con.contype,
                        con.condeferrable, con.condeferred, con.convalidated,
                        coalesce(con.conindid::regclass::text, '-'),
                        coalesce(con.confrelid::regclass::text, '-'), con.conislocal,
                        con.coninhcount, con.connoinherit,
                        coalesce((SELECT p.conname FROM pg_constraint p WHERE p.oid = con.conparentid), '-'),
                        pg_get_constraintdef(con.oid),
                        coalesce(obj_description(con.oid, 'pg_constraint'), '-')
                 FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace WHERE {USER}"
            ),
            format!(
                "SELECT 'trigger', t.tgrelid::regclass::text, con.conname, t.tgfoid::regproc::text,
                        t.tgtype, t.tgenabled, t.tgdeferrable, t.tginitdeferred, count(*)
                 FROM pg_trigger t JOIN pg_constraint con ON con.oid = t.tgconstraint
                 JOIN pg_namespace n ON n.oid = con.connamespace WHERE {USER}
                 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
            ),
            format!(
                "SELECT 'table', c.oid::regclass::text, c.relkind, c.relreplident,
                        ARRAY(SELECT a.attname || ':' || a.attnotnull FROM pg_attribute a
                              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                              ORDER BY a.attnum)::text
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE {USER} AND c.relkind IN ('r', 'p')"
            ),
        ];
        let mut out: Vec<String> = queries
            .iter()
            .flat_map(|q| self.pg_rows(q))
            .map(|r| {
                r.into_iter()
                    .map(|v| v.unwrap_or_else(|| "NULL".into()))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect();
        out.sort();
        out
    }

    /// Every table of schema `public` with its row count and an md5 of all its rows:
    /// equal before and after means the target was not changed.
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        let tables = self.pg_rows(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
        );
        tables
            .into_iter()
            .map(|r| {
                let t = r[0].clone().unwrap();
                let q = t.replace('"', "\"\"");
                let v = self.pg_value(&format!(
                    "SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM public.\"{q}\" x"
                ));
                (t, v.unwrap())
            })
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if self.keep {
            eprintln!(
                "TEST_KEEP_DBS=1: keeping databases `{}` and {}",
                self.db,
                self.path().display()
            );
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")).keep();
            return;
        }
        let db = self.db.clone();
        let url = self.mysql_url.clone();
        let extra = self.extra.borrow().clone();
        // Never panic in drop (we may already be unwinding).
        let _ = std::panic::catch_unwind(|| {
            mysql_exec_at(&url, None, &format!("DROP DATABASE IF EXISTS `{db}`"));
            for name in std::iter::once(&db).chain(&extra) {
                pg_exec(
                    "postgres",
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                );
            }
        });
    }
}

/// A psql session on `url` named `app` (its application_name) that has run `sql` and
/// stays open, holding what it took, until the returned stdin is dropped and the child
/// waited for. Returns once `held()` says so (at most 20 s, else the test fails).
pub fn psql_holding(
    url: &str,
    app: &str,
    sql: &str,
    held: impl Fn() -> bool,
) -> (std::process::Child, std::process::ChildStdin) {
    use std::io::Write;
    let mut holder = Command::new("psql")
        .arg(url)
        .env("PGAPPNAME", app)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(stdin, "{sql}").unwrap();
    stdin.flush().unwrap();
    let t0 = std::time::Instant::now();
    while !held() {
        assert!(
            t0.elapsed().as_secs() < 20,
            "{app} did not take what it holds: {sql}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (holder, stdin)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert an exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// SQL that inserts `n` rows (n <= 1,000,000) into `table (cols)` with `SELECT exprs`,
/// where `seq.n` counts from 0; portable across MariaDB and MySQL 8 (no recursive CTE
/// limits, no temporary tables reopened).
pub fn mysql_fill_sql(table: &str, cols: &str, exprs: &str, n: u64) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS _digits (d INT PRIMARY KEY);
         INSERT IGNORE INTO _digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);
         INSERT INTO {table} ({cols})
           SELECT {exprs} FROM (
             SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d AS n
             FROM _digits a, _digits b, _digits c, _digits e, _digits f, _digits g
           ) seq WHERE seq.n < {n};
         DROP TABLE _digits;"
    )
}
