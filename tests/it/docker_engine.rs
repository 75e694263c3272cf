//! Finding servers through a REAL Docker engine (Docker 20.10 from Debian, API 1.41),
//! started by `scripts/docker-engine.sh` (`WITH_DOCKER=1 scripts/dev-services.sh`), with
//! the two images it builds locally: busybox-static alone, and this machine's own
//! MariaDB server. Every test makes its own uniquely named containers and removes them
//! when it ends, even after a panic.
//!
//! They are `#[ignore]`d, so a run without an engine reports them as skipped rather than
//! passing them empty; `scripts/test.sh` includes them when `WITH_DOCKER=1` (as `.ci/run`
//! sets it), and then a missing engine is a failure.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::export::export_dir;
use crate::harness::*;

const BUSYBOX: &str = "pgconverge-test-busybox:1";
const MARIADB: &str = "pgconverge-test-mariadb:1";
const SOCKET: &str = "/var/run/docker.sock";
/// A busybox container that stays up, publishing 3306 (nothing listens behind it).
const SLEEPER: &[&str] = &[
    "-p",
    "127.0.0.1::3306",
    BUSYBOX,
    "/bin/busybox",
    "sleep",
    "600",
];
static N: AtomicUsize = AtomicUsize::new(0);

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker client")
}

fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The engine and both images must be there: these tests run only when asked for
/// (`WITH_DOCKER=1 scripts/test.sh`), and then a missing engine is a failure.
fn engine() {
    let answer = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", BUSYBOX, MARIADB])
        .output();
    if answer.as_ref().is_ok_and(|o| o.status.success()) {
        return;
    }
    // What the client said, so that a failure in CI explains itself.
    let why = match &answer {
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run the docker client: {e}"),
    };
    panic!(
        "no Docker engine with the test images ({why}): run `WITH_DOCKER=1 scripts/dev-services.sh`"
    );
}

/// Containers of one test, removed on drop (also when the test panics).
struct Containers {
    prefix: String,
    names: Vec<String>,
}

impl Containers {
    fn new(test: &str) -> Containers {
        Containers {
            prefix: format!(
                "{}pgc_{test}_{}_{}",
                crate::harness::test_prefix(),
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            names: Vec::new(),
        }
    }

    /// `docker run -d` a container named `<prefix>_<suffix>`; returns its full name.
    fn run(&mut self, suffix: &str, args: &[&str]) -> String {
        self.run_named(format!("{}_{suffix}", self.prefix), args)
    }

    /// `docker run -d` a container named exactly `name`.
    fn run_named(&mut self, name: String, args: &[&str]) -> String {
        self.names.push(name.clone());
        let mut all = vec!["run", "-d", "--name", name.as_str()];
        all.extend_from_slice(args);
        docker_ok(&all);
        name
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if !self.names.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(self.names.iter().map(String::as_str));
            let _ = docker(&args);
        }
    }
}

/// The binary with MySQL found through `container` (no MySQL address set).
fn via(w: &World, container: &str, docker_host: &str) -> Command {
    let mut c = w.cmd();
    c.env_remove("MYSQL_URL")
        .env("MYSQL_CONTAINER", container)
        .env("DOCKER_HOST", docker_host);
    c
}

/// `pgconverge check` with MySQL found through `container`.
fn check(w: &World, container: &str, docker_host: &str) -> Output {
    via(w, container, docker_host)
        .arg("check")
        .output()
        .unwrap()
}

/// The loopback port a container publishes its 3306 on.
fn published_port(container: &str) -> String {
    docker_ok(&["port", container, "3306/tcp"])
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

fn default_host() -> String {
    format!("unix://{SOCKET}")
}

/// Wait until MariaDB in the container answers at `url` (it starts in a few seconds).
fn wait_for_mariadb(url: &str) {
    let start = Instant::now();
    loop {
        let ok = block(async {
            let pool = mysql_async::Pool::new(opts(url));
            let ok = match pool.get_conn().await {
                Ok(mut c) => mysql_async::prelude::Queryable::query_drop(&mut c, "SELECT 1")
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            let _ = pool.disconnect().await;
            ok
        });
        if ok {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "MariaDB in the container did not answer at {url}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Never the local socket the server names (it would be this machine's own MariaDB).
fn opts(url: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(url).unwrap())
        .prefer_socket(false)
        .into()
}

fn mariadb_exec(url: &str, sql: &str) {
    block(async {
        let pool = mysql_async::Pool::new(opts(url));
        let mut c = pool
            .get_conn()
            .await
            .expect("connect to the container's MariaDB");
        mysql_async::prelude::Queryable::query_drop(&mut c, sql)
            .await
            .expect(sql);
        drop(c);
        pool.disconnect().await.unwrap();
    })
}

/// A MariaDB server in a container publishing 3306 on a loopback port: `pgconverge
/// export` finds it through MYSQL_CONTAINER alone, reads it end to end, and the import
/// and verify agree with what the container holds.
#[test]
#[ignore = "needs a Docker engine: WITH_DOCKER=1 scripts/test.sh"]
fn a_published_port_is_found_and_an_export_runs_end_to_end() {
    engine();
    let w = World::new("dockerreal_published");
    let mut c = Containers::new("published");
    let name = c.run("mysql", &["-p", "127.0.0.1::3306", MARIADB]);
    let port = published_port(&name);
    let url = format!("mysql://root@127.0.0.1:{port}");
    wait_for_mariadb(&url);
    mariadb_exec(
        &url,
        &format!(
            "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20));
             INSERT INTO `{db}`.t VALUES (1, 'in a container'), (2, NULL);",
            db = w.db
        ),
    );
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, v varchar(20))");

    let o = check(&w, &name, &default_host());
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!(
            "docker: container `{name}`: published port 3306/tcp -> 127.0.0.1:{port}"
        )),
        "{}",
        stdout(&o)
    );
    let o = via(&w, &name, &default_host())
        .args(["export", &w.db, "--out", "out"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("migration_manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["export_info"]["container"], name.as_str());
    assert_eq!(manifest["tables"]["t"]["rows"], 2);
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_rows("SELECT id::text, v FROM t ORDER BY id"),
        vec![
            vec![Some("1".into()), Some("in a container".into())],
            vec![Some("2".into()), None]
        ]
    );
    // verify --source reads the container's server again, through the engine.
    let o = via(&w, &name, &default_host())
        .args(["verify", dir.to_str().unwrap(), "--source"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
}

/// The same server with its port not published: its address on the engine's bridge
/// network, with the server's own port, where `check` reaches it.
#[test]
#[ignore = "needs a Docker engine: WITH_DOCKER=1 scripts/test.sh"]
fn an_unpublished_port_uses_the_address_on_the_network() {
    engine();
    let w = World::new("dockerreal_unpublished");
    let mut c = Containers::new("unpublished");
    let name = c.run("mysql", &[MARIADB]);
    let ip = docker_ok(&[
        "inspect",
        &name,
        "--format",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
    ]);
    assert!(!ip.is_empty());
    wait_for_mariadb(&format!("mysql://root@{ip}:3306"));
    let o = check(&w, &name, &default_host());
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!(
            "port 3306/tcp not published; address on network `bridge` {ip}:3306"
        )),
        "{}",
        stdout(&o)
    );
}

/// A container that has exited: one line with its status and the `docker start` hint;
/// and the ones that do not exist, with the names the user may have meant.
#[test]
#[ignore = "needs a Docker engine: WITH_DOCKER=1 scripts/test.sh"]
fn exited_missing_and_prefix_names_are_one_clear_line() {
    engine();
    let w = World::new("dockerreal_exited");
    let mut c = Containers::new("exited");
    let exited = c.run("db", &[BUSYBOX, "/bin/busybox", "true"]);
    let start = Instant::now();
    while docker_ok(&["inspect", &exited, "--format", "{{.State.Status}}"]) != "exited" {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = check(&w, &exited, &default_host());
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "error: container `{exited}` is not running (status: exited)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("hint: start it with `docker start {exited}`")),
        "{err}"
    );
    // A name nothing has.
    let o = check(&w, &format!("{}_nowhere_at_all", c.prefix), &default_host());
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // A prefix of a real name (the project prefix of a compose name left out, or the
    // end cut off): the engine matches names exactly, so it does not exist, and the hint
    // names the container meant.
    let long = c.run("db_mysql", &[BUSYBOX, "/bin/busybox", "sleep", "600"]);
    let prefix = format!("{}_db_mys", c.prefix);
    let o = check(&w, &prefix, &default_host());
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("container `{prefix}` does not exist")),
        "{err}"
    );
    assert!(err.contains(&format!("`{long}`")), "{err}");
}

/// A name that is also the start of another container's ID: the engine takes the exact
/// name first, so the container named so is the one used; a bare ID prefix is followed
/// too, and said.
#[test]
#[ignore = "needs a Docker engine: WITH_DOCKER=1 scripts/test.sh"]
fn an_ambiguous_name_resolves_to_the_exact_name_and_an_id_prefix_is_said() {
    engine();
    let w = World::new("dockerreal_ambiguous");
    let mut c = Containers::new("ambiguous");
    let first = c.run("first", SLEEPER);
    let id = docker_ok(&["inspect", &first, "--format", "{{.Id}}"]);
    // A second container NAMED after the first one's ID prefix.
    let named = c.run_named(id[..12].to_string(), SLEEPER);
    let o = check(&w, &named, &default_host());
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "docker: container `{named}`: published port 3306/tcp -> 127.0.0.1:{}",
            published_port(&named)
        )),
        "{out}"
    );
    assert!(!out.contains("by ID prefix"), "{out}");
    // The first container by a prefix of its ID that is nobody's name.
    let short = &id[..13];
    let o = check(&w, short, &default_host());
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "published port 3306/tcp -> 127.0.0.1:{} (container `{first}`, by ID prefix)",
            published_port(&first)
        )),
        "{out}"
    );
}

/// DOCKER_HOST names the socket explicitly, here through another path (a symbolic link):
/// it is the one used, and a wrong one is reported as such.
#[test]
#[ignore = "needs a Docker engine: WITH_DOCKER=1 scripts/test.sh"]
fn docker_host_names_the_socket() {
    engine();
    let w = World::new("dockerreal_docker_host");
    let mut c = Containers::new("docker_host");
    let name = c.run("db", SLEEPER);
    let link = w.path().join("engine.sock");
    std::os::unix::fs::symlink(SOCKET, &link).unwrap();
    let o = check(&w, &name, &format!("unix://{}", link.display()));
    assert!(
        stdout(&o).contains(&format!(
            "docker: container `{name}`: published port 3306/tcp"
        )),
        "{}",
        stdout(&o)
    );
    let wrong = w.path().join("none.sock");
    let o = check(&w, &name, &format!("unix://{}", wrong.display()));
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains(&format!(
            "cannot reach the Docker engine at {}",
            wrong.display()
        )),
        "{}",
        stderr(&o)
    );
}
