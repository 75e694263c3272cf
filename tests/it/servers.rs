//! Throwaway servers for tests that need a server configured differently from the
//! shared ones (TLS on and required): a PostgreSQL cluster made by `initdb` and a MariaDB
//! made by `mariadb-install-db`, each on its own free port and directory, stopped when
//! dropped (also after a panic). Certificates come from a throwaway CA made by openssl.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate it signed, for `127.0.0.1` only (not `localhost`).
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ossl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(d));
        ossl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=pgconverge test CA",
        ]);
        ossl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        ossl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        Certs { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Copies of the server's certificate, key and CA in `dir`, owned by `user`.
    fn install(&self, dir: &Path, user: &str) {
        for f in ["server.crt", "server.key", "ca.crt"] {
            std::fs::copy(self.dir.path().join(f), dir.join(f)).unwrap();
        }
        run(Command::new("chown").args(["-R", user]).arg(dir));
        run(Command::new("chmod")
            .args(["600"])
            .arg(dir.join("server.key")));
    }
}

fn world_readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("chmod").args(["755"]).arg(dir.path()));
    dir
}

/// A PostgreSQL cluster with TLS on, accepting only TLS connections (trust auth).
pub struct TlsPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl TlsPostgres {
    pub fn start(certs: &Certs) -> TlsPostgres {
        let dir = world_readable_tempdir();
        let data = dir.path().join("data");
        let port = free_port();
        run(Command::new("chown").args(["postgres"]).arg(dir.path()));
        run(Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "initdb",
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data));
        certs.install(&data, "postgres");
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n",
            dir.path().display()
        );
        let mut c = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        c.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), c).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        run(Command::new("runuser")
            .args(["-u", "postgres", "--", "pg_ctl", "-w", "-s", "-l"])
            .arg(dir.path().join("log"))
            .arg("-D")
            .arg(&data)
            .arg("start"));
        TlsPostgres { port, dir }
    }

    /// Run SQL through the local socket.
    pub fn sql(&self, db: &str, sql: &str) {
        run(Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]));
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "pg_ctl",
                "-s",
                "-m",
                "immediate",
                "-D",
            ])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

/// A MariaDB server with TLS on; its user `tls` (password `pw`) must use TLS.
pub struct TlsMariaDb {
    pub port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl TlsMariaDb {
    pub fn start(certs: &Certs) -> TlsMariaDb {
        let dir = world_readable_tempdir();
        let d = dir.path();
        let port = free_port();
        run(Command::new("chown").args(["mysql"]).arg(d));
        run(Command::new("mariadb-install-db")
            .args([
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", d.join("data").display())));
        certs.install(d, "mysql");
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg("--user=mysql")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("err").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--ssl-cert={}", d.join("server.crt").display()))
            .arg(format!("--ssl-key={}", d.join("server.key").display()))
            .arg(format!("--ssl-ca={}", d.join("ca.crt").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let db = TlsMariaDb { port, dir, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !db.sql_ok("SELECT 1") {
            assert!(
                std::time::Instant::now() < deadline,
                "MariaDB did not start: {}",
                std::fs::read_to_string(db.dir.path().join("err")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        db.sql(
            "CREATE USER 'tls'@'%' IDENTIFIED BY 'pw' REQUIRE SSL; GRANT ALL ON *.* TO 'tls'@'%';",
        );
        db
    }

    fn sql_ok(&self, sql: &str) -> bool {
        Command::new("mariadb")
            .args(["-uroot", "-S"])
            .arg(self.dir.path().join("sock"))
            .args(["-e", sql])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Run SQL as root through the local socket.
    pub fn sql(&self, sql: &str) {
        run(Command::new("mariadb")
            .args(["-uroot", "-S"])
            .arg(self.dir.path().join("sock"))
            .args(["-e", sql]));
    }
}

impl Drop for TlsMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
