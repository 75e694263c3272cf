//! A TCP relay in front of the test MySQL server that slows what the server sends, so
//! that an export is still writing a table's file when `migrate`'s import reaches it,
//! and can cut each connection once the server has sent it a given number of bytes (a
//! network that fails in the middle of a table).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

pub struct Throttle {
    pub port: u16,
}

impl Throttle {
    /// Relay to `upstream` (a `mysql://` URL), the server's bytes at `rate` bytes a
    /// second per connection; with `cut`, a connection is closed once the server has
    /// sent it that many bytes.
    pub fn start(upstream: &str, rate: u64, cut: Option<u64>) -> Throttle {
        let to = host_port(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || forward(c2, s2));
                std::thread::spawn(move || slowly(server, client, rate, cut));
            }
        });
        Throttle { port }
    }

    /// `url` with this relay's port in place of the server's.
    pub fn url(&self, url: &str) -> String {
        let hp = host_port(url);
        url.replacen(&hp, &format!("127.0.0.1:{}", self.port), 1)
    }
}

/// `host:port` of a `mysql://user@host:port/...` URL.
fn host_port(url: &str) -> String {
    let rest = url.split('@').next_back().unwrap();
    rest.split('/').next().unwrap().to_string()
}

/// Client to server, as it comes.
fn forward(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Server to client, at `rate` bytes a second, closed after `cut` bytes.
fn slowly(mut from: TcpStream, mut to: TcpStream, rate: u64, cut: Option<u64>) {
    let mut buf = [0u8; 16 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let n = match cut {
            Some(c) if sent + n as u64 >= c => {
                let _ = to.write_all(&buf[..(c - sent) as usize]);
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            _ => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}
