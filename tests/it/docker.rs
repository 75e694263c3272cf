//! Finding servers through the Docker Engine API, against a small fake engine served on
//! a Unix socket by the test, for what the real engine of `docker_engine.rs` (Docker
//! 20.10, API 1.41, the newest Debian ships) cannot be made to answer here: an engine of
//! API 1.47 (Docker 27), asked without a version in the path, whose answers carry
//! the newer shape (IPv4 and IPv6 bindings of one port). Running, unpublished, exited,
//! missing and ambiguous containers are tested against the real engine only. The
//! unreachable-engine tests need no engine at all.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::harness::*;

/// Inspect answers by container name: (HTTP status, JSON body).
fn answers() -> HashMap<&'static str, (u16, &'static str)> {
    HashMap::from([(
        "db_published",
        (
            200,
            r#"{"Id":"4f1c","Name":"/db_published","State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":4242,"ExitCode":0,"Error":"","StartedAt":"2026-11-21T04:00:00.000000000Z","FinishedAt":"0001-01-01T00:00:00Z"},"NetworkSettings":{"Ports":{"3306/tcp":[{"HostIp":"0.0.0.0","HostPort":"3306"},{"HostIp":"::","HostPort":"3306"}],"33060/tcp":null},"Networks":{"alkemio_default":{"IPAddress":"172.18.0.2","Gateway":"172.18.0.1"}}}}"#,
        ),
    )])
}

/// Serve the fake engine on a socket in `dir` (a thread that lives as long as the test);
/// the request lines it received are in the returned list.
fn fake_engine(dir: &Path) -> (PathBuf, Arc<Mutex<Vec<String>>>) {
    let path = dir.join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            seen.lock().unwrap().push(request_line.trim().to_string());
            let path = request_line.split(' ').nth(1).unwrap_or("");
            let name = path
                .split("/containers/")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .unwrap_or("");
            let all = answers();
            let missing = format!(r#"{{"message":"No such container: {name}"}}"#);
            let (status, body) = match all.get(name) {
                Some((s, b)) => (*s, b.to_string()),
                None => (404, missing),
            };
            let reason = if status == 200 { "OK" } else { "Not Found" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nApi-Version: 1.47\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (path, requests)
}

fn check_with(w: &World, socket: &Path, container: &str) -> std::process::Output {
    w.cmd()
        .env_remove("MYSQL_URL")
        .env("MYSQL_CONTAINER", container)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .arg("check")
        .output()
        .unwrap()
}

/// An engine of API 1.47: requests carry no version in their path, so every engine
/// answers in its own (the real engine of `docker_engine.rs` answers 1.41), and the
/// newer answer's IPv4 and IPv6 bindings of one port resolve to the loopback address.
#[test]
fn an_api_1_47_answer_resolves_and_requests_carry_no_version() {
    let w = World::new("docker_published");
    let (socket, requests) = fake_engine(w.path());
    let o = check_with(&w, &socket, "db_published");
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("docker: container `db_published`: published port 3306/tcp -> 127.0.0.1:3306"),
        "{out}"
    );
    assert!(out.contains("MariaDB") || out.contains("mysql"), "{out}");
    let requests = requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /containers/db_published/json ")),
        "{requests:?}"
    );
}

#[test]
fn an_unreachable_engine_is_explained() {
    let w = World::new("docker_unreachable");
    let o = check_with(&w, &w.path().join("no-such.sock"), "db_published");
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach the Docker engine at") && err.contains("hint:"),
        "{err}"
    );
    // A socket file nobody listens on.
    let stale = w.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let o = check_with(&w, &stale, "db_published");
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("cannot reach the Docker engine"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn no_container_means_no_engine_call_and_explicit_addresses_win() {
    let w = World::new("docker_not_asked");
    // No container named: a broken DOCKER_HOST does not matter.
    let o = w
        .cmd()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("check")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    // A container named but the address given: Docker is not asked, and check says so.
    let o = w
        .cmd()
        .env("MYSQL_CONTAINER", "db_exited")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("check")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("Docker not asked"), "{}", stdout(&o));
}
