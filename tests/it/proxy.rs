//! A TCP proxy in front of the shared PostgreSQL that reads the protocol's messages from
//! the client and, the first time one is the query `COMMIT`, drops the connection: after
//! forwarding it (the server commits; the client never hears so) or instead of forwarding
//! it (the server never commits). Later connections pass untouched. Plain protocol only:
//! clients must use `sslmode=disable` through it.

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
}

pub struct Proxy {
    pub port: u16,
}

impl Proxy {
    pub fn start(upstream: u16, cut: CutAt) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(true));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let armed = armed.clone();
                std::thread::spawn(move || relay(client, server, cut, armed));
            }
        });
        Proxy { port }
    }
}

fn relay(mut client: TcpStream, mut server: TcpStream, cut: CutAt, armed: Arc<AtomicBool>) {
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
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
            if commit && armed.swap(false, Ordering::SeqCst) {
                // The client is cut off first, so that no answer can reach it.
                let _ = client.shutdown(Shutdown::Both);
                if cut == CutAt::AfterCommit {
                    let _ = server.write_all(&msg);
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
