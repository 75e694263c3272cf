//! A TCP proxy in front of the shared PostgreSQL that reads the protocol's messages from
//! the client and acts on the first one that is the query `COMMIT`: it drops the
//! connection after forwarding it (the server commits; the client never hears so) or
//! instead of forwarding it (the server never commits); or it forwards it and then
//! refuses every new connection (no server can be asked what became of it); or it
//! forwards it and holds the server's answer until the test releases it. Other
//! connections pass untouched. Plain protocol only: clients must use `sslmode=disable`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CutAt {
    /// COMMIT reaches the server; its answer never reaches the client.
    AfterCommit,
    /// COMMIT never reaches the server.
    BeforeCommit,
    /// COMMIT reaches the server, its answer never reaches the client, and from then on
    /// every new connection is refused.
    AfterCommitThenRefuse,
    /// COMMIT reaches the server; its answer reaches the client once `release` is called.
    HoldAnswer,
}

pub struct Proxy {
    pub port: u16,
    flags: Arc<Flags>,
}

#[derive(Default)]
struct Flags {
    /// The first COMMIT is still to come.
    armed: AtomicBool,
    /// COMMIT was forwarded to the server.
    commit_sent: AtomicBool,
    /// New connections are refused.
    refuse: AtomicBool,
    /// A held answer may go on.
    released: AtomicBool,
}

impl Proxy {
    pub fn start(upstream: u16, cut: CutAt) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let flags = Arc::new(Flags {
            armed: AtomicBool::new(true),
            ..Flags::default()
        });
        let shared = flags.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if shared.refuse.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let flags = shared.clone();
                std::thread::spawn(move || relay(client, server, cut, flags));
            }
        });
        Proxy { port, flags }
    }

    /// Has COMMIT been forwarded to the server?
    pub fn commit_sent(&self) -> bool {
        self.flags.commit_sent.load(Ordering::SeqCst)
    }

    /// Let a held answer reach the client (`CutAt::HoldAnswer`).
    pub fn release(&self) {
        self.flags.released.store(true, Ordering::SeqCst);
    }

    /// Wait (up to 120 s, against a hang) until COMMIT has been forwarded.
    pub fn wait_for_commit(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !self.commit_sent() {
            assert!(std::time::Instant::now() < deadline, "COMMIT never came");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn relay(mut client: TcpStream, mut server: TcpStream, cut: CutAt, flags: Arc<Flags>) {
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    // Set (for this connection) when its COMMIT's answer is to be held.
    let hold = Arc::new(AtomicBool::new(false));
    let (held, answers) = (hold.clone(), flags.clone());
    std::thread::spawn(move || {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let n = match from_server.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while held.load(Ordering::SeqCst) && !answers.released.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if to_client.write_all(&chunk[..n]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let mut buf: Vec<u8> = Vec::new();
    let mut started = false;
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Forward every complete message; look at each.
        loop {
            let (len, header) = if started {
                if buf.len() < 5 {
                    break;
                }
                (
                    u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize + 1,
                    5,
                )
            } else {
                if buf.len() < 4 {
                    break;
                }
                (
                    u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize,
                    4,
                )
            };
            if buf.len() < len {
                break;
            }
            let msg: Vec<u8> = buf.drain(..len).collect();
            let commit = started && msg[0] == b'Q' && msg[header..].starts_with(b"COMMIT");
            started = true;
            if commit && flags.armed.swap(false, Ordering::SeqCst) {
                if cut == CutAt::HoldAnswer {
                    hold.store(true, Ordering::SeqCst);
                    let _ = server.write_all(&msg);
                    flags.commit_sent.store(true, Ordering::SeqCst);
                    continue;
                }
                // No new connection from here on (before the client can try one).
                if cut == CutAt::AfterCommitThenRefuse {
                    flags.refuse.store(true, Ordering::SeqCst);
                }
                // The client is cut off first, so that no answer can reach it.
                let _ = client.shutdown(Shutdown::Both);
                if cut != CutAt::BeforeCommit {
                    let _ = server.write_all(&msg);
                    flags.commit_sent.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
            if server.write_all(&msg).is_err() {
                return;
            }
        }
    }
    let _ = server.shutdown(Shutdown::Both);
}
