//! Configuration resolved once, before any work: flag > environment > `.env` in the
//! working directory > built-in default, for the old scripts' variable names and the URL
//! forms. Pure apart from `Layers::from_process`, which reads the environment and the
//! `.env` file. Passwords live in `Secret`, whose `Debug` and `Display` print `***`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::{MysqlArgs, PostgresArgs};
use crate::hint::WithHint;

/// Where a configuration value came from; later variants lose to earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Default,
    DotEnv,
    Env,
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Default => "default",
            Origin::DotEnv => ".env",
            Origin::Env => "environment",
            Origin::Flag => "flag",
        })
    }
}

/// The environment and the `.env` file, kept apart so that precedence can be applied.
#[derive(Debug, Default, Clone)]
pub struct Layers {
    pub env: HashMap<String, String>,
    pub dotenv: HashMap<String, String>,
}

impl Layers {
    /// Read the process environment and the `.env` file (absent is fine, unreadable is not).
    pub fn from_process(dotenv_path: &Path, explicit: bool) -> Result<Self> {
        let env = std::env::vars().collect();
        let mut dotenv = HashMap::new();
        match dotenvy::from_path_iter(dotenv_path) {
            Ok(iter) => {
                for item in iter {
                    let (k, v) = item.with_context(|| {
                        format!("reading configuration file {}", dotenv_path.display())
                    })?;
                    dotenv.insert(k, v);
                }
            }
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading configuration file {}", dotenv_path.display())
                });
            }
        }
        Ok(Layers { env, dotenv })
    }

    /// The value of `var` by precedence, with where it came from; empty values count as set.
    pub fn get(&self, flag: Option<&str>, var: &str) -> Option<(String, Origin)> {
        if let Some(v) = flag {
            return Some((v.to_string(), Origin::Flag));
        }
        if let Some(v) = self.env.get(var) {
            return Some((v.clone(), Origin::Env));
        }
        self.dotenv.get(var).map(|v| (v.clone(), Origin::DotEnv))
    }

    /// Like `get`, falling back to a default.
    pub fn get_or(&self, flag: Option<&str>, var: &str, default: &str) -> (String, Origin) {
        self.get(flag, var)
            .unwrap_or_else(|| (default.to_string(), Origin::Default))
    }
}

/// A password: never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The password itself, for the connection call only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How a connection uses TLS, in libpq's words (MySQL's `DISABLED`, `PREFERRED`,
/// `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY` are read as the same five).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS, and the certificate must chain to a trusted root (any host name).
    VerifyCa,
    /// TLS, a trusted certificate, and one issued for the host connected to.
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Option<SslMode> {
        Some(
            match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "disable" | "disabled" => SslMode::Disable,
                "prefer" | "preferred" => SslMode::Prefer,
                "require" | "required" => SslMode::Require,
                "verify-ca" => SslMode::VerifyCa,
                "verify-full" | "verify-identity" => SslMode::VerifyFull,
                _ => return None,
            },
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Is the server's certificate checked against trusted roots?
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// TLS settings of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    /// PEM file of the roots to trust; without it, the Mozilla root set.
    pub ca_file: Option<PathBuf>,
}

/// One server's resolved connection settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub container: Option<String>,
    /// The database named in the URL's path, if any.
    pub database: Option<String>,
    pub tls: Tls,
    /// Where host/port/user came from, for `check`.
    pub origin: Origin,
    /// Where host and port came from: a container is resolved only when both are defaults.
    pub address_origin: Origin,
    /// Set when the address came from (or was not asked of) the Docker engine.
    pub resolved_via: Option<String>,
    /// Every setting with where it came from, for `check` (the password as `***`).
    pub settings: Vec<Setting>,
}

/// One resolved setting and its origin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    pub name: &'static str,
    pub value: String,
    pub from: Origin,
}

impl ServerConfig {
    /// `user@host:port`, safe to print.
    pub fn display(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// The database to use: the one the command names, else the URL's; when both are
    /// given they must agree (a URL naming another database is not silently ignored).
    pub fn database_or(&self, named: Option<&str>, default: &str, what: &str) -> Result<String> {
        match (named, &self.database) {
            (Some(n), Some(u)) if n != u => Err(anyhow::anyhow!(
                "{what} is `{n}`, but the connection URL names database `{u}`"
            ))
            .hint("remove the database from the URL, or make the two agree"),
            (Some(n), _) => Ok(n.to_string()),
            (None, Some(u)) => Ok(u.clone()),
            (None, None) => Ok(default.to_string()),
        }
    }
}

/// The variable names and defaults of one server kind.
struct Vars {
    prefix: &'static str,
    scheme: &'static [&'static str],
    default_port: u16,
    default_user: &'static str,
    /// `<prefix>_<this>` holds the TLS mode, and the URL parameters that may set it.
    ssl_mode: (&'static str, &'static [&'static str]),
    /// Likewise for the CA file.
    ssl_ca: (&'static str, &'static [&'static str]),
}

const MYSQL: Vars = Vars {
    prefix: "MYSQL",
    scheme: &["mysql", "mariadb"],
    default_port: 3306,
    default_user: "root",
    ssl_mode: ("SSL_MODE", &["ssl-mode", "sslmode"]),
    ssl_ca: ("SSL_CA", &["ssl-ca", "sslrootcert"]),
};
const POSTGRES: Vars = Vars {
    prefix: "POSTGRES",
    scheme: &["postgres", "postgresql"],
    default_port: 5432,
    default_user: "postgres",
    ssl_mode: ("SSLMODE", &["sslmode"]),
    ssl_ca: ("SSLROOTCERT", &["sslrootcert"]),
};

struct Given<'a> {
    url: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<&'a str>,
    user: Option<&'a str>,
    password: Option<&'a str>,
    container: Option<&'a str>,
    ssl_mode: Option<&'a str>,
    ssl_ca: Option<&'a str>,
}

/// The source's database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Mysql,
    Postgresql,
}

impl Engine {
    /// As the manifest records it (`source.kind`).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Mysql => "mysql",
            Engine::Postgresql => "postgresql",
        }
    }

    /// From the manifest's `source.kind`.
    pub fn from_kind(kind: &str) -> Engine {
        match kind {
            "postgresql" | "postgres" => Engine::Postgresql,
            _ => Engine::Mysql,
        }
    }
}

const SOURCE_MYSQL: Vars = Vars {
    prefix: "SOURCE",
    scheme: &["mysql", "mariadb"],
    default_port: 3306,
    default_user: "root",
    ssl_mode: ("SSL_MODE", &["ssl-mode", "sslmode"]),
    ssl_ca: ("SSL_CA", &["ssl-ca", "sslrootcert"]),
};
const SOURCE_POSTGRES: Vars = Vars {
    prefix: "SOURCE",
    scheme: &["postgres", "postgresql"],
    default_port: 5432,
    default_user: "postgres",
    ssl_mode: ("SSLMODE", &["sslmode"]),
    ssl_ca: ("SSLROOTCERT", &["sslrootcert"]),
};

/// Resolve the source: `--source-url` / `SOURCE_URL` (its scheme names the engine:
/// `mysql://`, `mariadb://`, `postgres://`, `postgresql://`), else the MySQL settings.
pub fn source(
    source_url: Option<&str>,
    my: &MysqlArgs,
    layers: &Layers,
) -> Result<(Engine, ServerConfig)> {
    let Some((url, _)) = layers.get(source_url, "SOURCE_URL") else {
        return Ok((Engine::Mysql, mysql(my, layers)?));
    };
    let scheme = url.split("://").next().unwrap_or_default();
    let (engine, vars) = match scheme {
        "mysql" | "mariadb" => (Engine::Mysql, &SOURCE_MYSQL),
        "postgres" | "postgresql" => (Engine::Postgresql, &SOURCE_POSTGRES),
        _ => {
            return Err(anyhow::anyhow!(
                "SOURCE_URL's scheme is `{scheme}`, expected mysql, mariadb, postgres or postgresql"
            ))
            .hint("write it as postgres://user:password@host:port/database or mysql://...");
        }
    };
    let given = Given {
        url: Some(url.as_str()),
        host: None,
        port: None,
        user: None,
        password: None,
        container: None,
        ssl_mode: None,
        ssl_ca: None,
    };
    Ok((engine, resolve(vars, given, layers)?))
}

/// Resolve the MySQL connection.
pub fn mysql(args: &MysqlArgs, layers: &Layers) -> Result<ServerConfig> {
    resolve(
        &MYSQL,
        Given {
            url: args.mysql_url.as_deref(),
            host: args.mysql_host.as_deref(),
            port: args.mysql_port.as_deref(),
            user: args.mysql_user.as_deref(),
            password: args.mysql_password.as_deref(),
            container: args.mysql_container.as_deref(),
            ssl_mode: args.mysql_ssl_mode.as_deref(),
            ssl_ca: args.mysql_ssl_ca.as_deref(),
        },
        layers,
    )
}

/// Resolve the PostgreSQL connection.
pub fn postgres(args: &PostgresArgs, layers: &Layers) -> Result<ServerConfig> {
    resolve(
        &POSTGRES,
        Given {
            url: args.postgres_url.as_deref(),
            host: args.postgres_host.as_deref(),
            port: args.postgres_port.as_deref(),
            user: args.postgres_user.as_deref(),
            password: args.postgres_password.as_deref(),
            container: args.postgres_container.as_deref(),
            ssl_mode: args.postgres_sslmode.as_deref(),
            ssl_ca: args.postgres_sslrootcert.as_deref(),
        },
        layers,
    )
}

fn resolve(vars: &Vars, given: Given<'_>, layers: &Layers) -> Result<ServerConfig> {
    let p = vars.prefix;
    let var = |name: &str| format!("{p}_{name}");
    // The URL supplies defaults for the parts; a part set at the same or a stronger level
    // than the URL wins, so `MYSQL_URL` in the environment beats `MYSQL_HOST` in `.env`.
    let url = layers.get(given.url, &var("URL"));
    let mut parts = UrlParts::default();
    let url_origin = match &url {
        Some((text, origin)) => {
            parts = parse_url(text, vars).with_context(|| format!("reading {}", var("URL")))?;
            *origin
        }
        None => Origin::Default,
    };
    let pick = |flag: Option<&str>, name: &str, from_url: Option<String>, default: &str| match (
        layers.get(flag, &var(name)),
        from_url,
    ) {
        (Some((v, o)), Some(u)) => {
            if o >= url_origin {
                (v, o)
            } else {
                (u, url_origin)
            }
        }
        (Some((v, o)), None) => (v, o),
        (None, Some(u)) => (u, url_origin),
        (None, None) => (default.to_string(), Origin::Default),
    };
    let (host, host_origin) = pick(given.host, "HOST", parts.host, "127.0.0.1");
    let (port_text, port_origin) = pick(
        given.port,
        "PORT",
        parts.port.map(|p| p.to_string()),
        &vars.default_port.to_string(),
    );
    let port: u16 = port_text
        .trim()
        .parse()
        .with_context(|| format!("{} is `{port_text}`, not a port number", var("PORT")))
        .hint(format!(
            "set {} to a number such as {}",
            var("PORT"),
            vars.default_port
        ))?;
    let (user, user_origin) = pick(given.user, "USER", parts.user, vars.default_user);
    let (password, password_origin) = pick(given.password, "PASSWORD", parts.password, "");
    let (mode_text, mode_origin) = pick(given.ssl_mode, vars.ssl_mode.0, parts.ssl_mode, "prefer");
    let mode = SslMode::parse(&mode_text)
        .with_context(|| format!("{} is `{mode_text}`", var(vars.ssl_mode.0)))
        .hint("use disable, prefer, require, verify-ca or verify-full")?;
    let (ca, ca_origin) = pick(given.ssl_ca, vars.ssl_ca.0, parts.ssl_ca, "");
    let container = layers.get(given.container, &var("CONTAINER"));
    let setting = |name: &'static str, value: &str, from: Origin| Setting {
        name,
        value: value.to_string(),
        from,
    };
    let settings = vec![
        setting("host", &host, host_origin),
        setting("port", &port_text, port_origin),
        setting("user", &user, user_origin),
        setting(
            "password",
            if password.is_empty() { "(none)" } else { "***" },
            password_origin,
        ),
        setting("tls", mode.name(), mode_origin),
        setting(
            "ca file",
            if ca.is_empty() {
                "(Mozilla roots)"
            } else {
                &ca
            },
            ca_origin,
        ),
        match &container {
            Some((c, o)) if !c.is_empty() => setting("container", c, *o),
            _ => setting("container", "(none)", Origin::Default),
        },
    ];
    let container = container.map(|(v, _)| v).filter(|v| !v.is_empty());
    if host.is_empty() {
        bail!("{} is empty", var("HOST"));
    }
    Ok(ServerConfig {
        host,
        port,
        user,
        password: (!password.is_empty()).then(|| Secret::new(password)),
        container,
        database: parts.database,
        tls: Tls {
            mode,
            ca_file: (!ca.is_empty()).then(|| PathBuf::from(ca)),
        },
        origin: host_origin.max(port_origin).max(user_origin),
        address_origin: host_origin.max(port_origin),
        resolved_via: None,
        settings,
    })
}

#[derive(Debug, Default, PartialEq)]
struct UrlParts {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    ssl_mode: Option<String>,
    ssl_ca: Option<String>,
}

/// Read a connection URL completely, or say which part is wrong: a URL that does not
/// parse as `scheme://user:password@host:port[/database][?tls parameters]` is never
/// half-understood (`postgres:/app:pw@db.example.com` once meant 127.0.0.1).
fn parse_url(text: &str, vars: &Vars) -> Result<UrlParts> {
    let example = format!("{}://user:password@host:port", vars.scheme[0]);
    // Never echo the URL itself: it may hold a password.
    let Some((scheme, rest)) = text.split_once("://") else {
        let scheme = text.split(':').next().unwrap_or_default();
        return Err(anyhow::anyhow!(
            "not a URL of the form {example}: there is no `//` after `{scheme}:`"
        ))
        .hint(format!("write it as {example}"));
    };
    if !vars.scheme.contains(&scheme) {
        bail!(
            "URL scheme is `{scheme}`, expected `{}`",
            vars.scheme.join("` or `")
        );
    }
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(anyhow::anyhow!("the URL names no host"))
            .hint(format!("write it as {example}"));
    }
    // A user name or password holding `#`, `/` or `?` unencoded cuts the URL short:
    // say so, whatever part of it then failed to read.
    let unencoded = || -> Result<()> {
        let special = unencoded_in_userinfo(rest);
        if special.is_empty() {
            return Ok(());
        }
        Err(anyhow::anyhow!(
            "not a valid URL: its user name or password holds {} unencoded",
            quoted_list(&special)
        ))
        .hint(percent_encoding_hint(&special, &example))
    };
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            unencoded()?;
            return Err(anyhow::anyhow!("not a valid URL ({e})")).hint(format!(
                "expected {example}; {}",
                percent_encoding_hint(&['@', '#', '/', '?'], &example)
            ));
        }
    };
    if url.fragment().is_some() || url.path().trim_start_matches('/').contains(['/', '@']) {
        unencoded()?;
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow::anyhow!("the URL names no host"))
        .hint(format!("write it as {example}"))?;
    if url.fragment().is_some() {
        bail!("the URL has a `#` fragment, which a connection URL cannot have");
    }
    let path = url.path().trim_start_matches('/');
    if path.contains('/') {
        bail!("the URL's path has more than one part; at most a database name may follow the port");
    }
    let decode = percent_decode;
    let mut parts = UrlParts {
        host: Some(host.trim_matches(['[', ']']).to_string()),
        port: url.port(),
        user: (!url.username().is_empty()).then(|| decode(url.username())),
        password: url.password().map(decode),
        database: (!path.is_empty()).then(|| decode(path)),
        ..UrlParts::default()
    };
    for (key, value) in url.query_pairs() {
        if vars.ssl_mode.1.contains(&key.as_ref()) {
            parts.ssl_mode = Some(value.into_owned());
        } else if vars.ssl_ca.1.contains(&key.as_ref()) {
            parts.ssl_ca = Some(value.into_owned());
        } else {
            let known: Vec<&str> = vars
                .ssl_mode
                .1
                .iter()
                .chain(vars.ssl_ca.1)
                .copied()
                .collect();
            return Err(anyhow::anyhow!("the URL has an unknown parameter `{key}`"))
                .hint(format!("known parameters: {}", known.join(", ")));
        }
    }
    Ok(parts)
}

/// PURE: the characters of a URL's `user:password@` part that should have been
/// percent-encoded (`#`, `/`, `?`, `@`), read without a URL parser (which takes
/// `mysql://u:p#w@h` for host `u` and port `p`): everything before the last `@`, when it
/// holds a `:`. Only asked once the URL failed to read as one, to say why.
fn unencoded_in_userinfo(rest: &str) -> Vec<char> {
    let Some(at) = rest.rfind('@') else {
        return Vec::new();
    };
    let info = &rest[..at];
    if !info.contains(':') {
        return Vec::new();
    }
    ['@', '#', '/', '?']
        .into_iter()
        .filter(|c| info.contains(*c))
        .collect()
}

fn quoted_list(chars: &[char]) -> String {
    let quoted: Vec<String> = chars.iter().map(|c| format!("`{c}`")).collect();
    quoted.join(", ")
}

/// The hint for characters a URL cannot carry as they are: each with its encoding,
/// shown on a placeholder (never on the password itself).
fn percent_encoding_hint(chars: &[char], example: &str) -> String {
    let codes: Vec<String> = chars
        .iter()
        .map(|c| format!("`{c}` as `%{:02X}`", *c as u32))
        .collect();
    let scheme = example.split("://").next().unwrap_or("mysql");
    format!(
        "special characters in a user name or password must be percent-encoded: write {} \
         (`%` itself as `%25`); a password p@ss/w#rd is written p%40ss%2Fw%23rd in a \
         {scheme}:// URL; or give the password apart \
         (MYSQL_PASSWORD, POSTGRES_PASSWORD, or the --*-password flags), where it needs no encoding",
        codes.join(", ")
    )
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the run log lives: flag > PGCONVERGE_RUN_LOG > .env > `migration_log.jsonl`.
pub fn run_log_path(flag: Option<&Path>, layers: &Layers) -> PathBuf {
    let flag = flag.map(|p| p.to_string_lossy().into_owned());
    PathBuf::from(
        layers
            .get_or(flag.as_deref(), "PGCONVERGE_RUN_LOG", "migration_log.jsonl")
            .0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(env: &[(&str, &str)], dotenv: &[(&str, &str)]) -> Layers {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Layers {
            env: map(env),
            dotenv: map(dotenv),
        }
    }

    #[test]
    fn precedence_flag_env_dotenv_default() {
        // (flag, env, dotenv, expected host, expected origin)
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            Origin,
        );
        let cases: &[Case] = &[
            (Some("f"), Some("e"), Some("d"), "f", Origin::Flag),
            (None, Some("e"), Some("d"), "e", Origin::Env),
            (None, None, Some("d"), "d", Origin::DotEnv),
            (None, None, None, "127.0.0.1", Origin::Default),
        ];
        for (flag, env, dotenv, want, origin) in cases {
            let env: Vec<_> = env.iter().map(|v| ("MYSQL_HOST", *v)).collect();
            let dot: Vec<_> = dotenv.iter().map(|v| ("MYSQL_HOST", *v)).collect();
            let args = MysqlArgs {
                mysql_host: flag.map(String::from),
                ..Default::default()
            };
            let cfg = mysql(&args, &layers(&env, &dot)).unwrap();
            assert_eq!(cfg.host, *want);
            assert_eq!(cfg.origin, *origin);
        }
    }

    #[test]
    fn url_in_env_beats_parts_in_dotenv_but_not_parts_in_env() {
        let l = layers(
            &[("MYSQL_URL", "mysql://app:s%40cret@db.example:3307")],
            &[("MYSQL_HOST", "127.0.0.1"), ("MYSQL_USER", "root")],
        );
        let cfg = mysql(&MysqlArgs::default(), &l).unwrap();
        assert_eq!(
            (cfg.host.as_str(), cfg.port, cfg.user.as_str()),
            ("db.example", 3307, "app")
        );
        assert_eq!(cfg.password.unwrap().expose(), "s@cret");

        let l = layers(
            &[
                ("MYSQL_URL", "mysql://app@db.example"),
                ("MYSQL_HOST", "other"),
            ],
            &[],
        );
        let cfg = mysql(&MysqlArgs::default(), &l).unwrap();
        assert_eq!((cfg.host.as_str(), cfg.port), ("other", 3306));
    }

    #[test]
    fn passwords_never_show_in_debug_or_errors() {
        let l = layers(
            &[
                ("POSTGRES_PASSWORD", "hunter2"),
                ("MYSQL_URL", "mysql://u:hunter2@h:notaport"),
            ],
            &[],
        );
        let cfg = postgres(&PostgresArgs::default(), &l).unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
        assert!(format!("{cfg:?}").contains("***"));
        let err = mysql(&MysqlArgs::default(), &l).unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
    }

    #[test]
    fn urls_parse_completely_or_name_the_wrong_part() {
        let ok = |url: &str| {
            postgres(
                &PostgresArgs::default(),
                &layers(&[("POSTGRES_URL", url)], &[]),
            )
        };
        let cfg = ok("postgres://app:p%40ss@db.example.com:6543/appdb?sslmode=verify-full&sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            (
                cfg.host.as_str(),
                cfg.port,
                cfg.user.as_str(),
                cfg.database.as_deref()
            ),
            ("db.example.com", 6543, "app", Some("appdb"))
        );
        assert_eq!(cfg.password.unwrap().expose(), "p@ss");
        assert_eq!(
            cfg.tls,
            Tls {
                mode: SslMode::VerifyFull,
                ca_file: Some("/ca.pem".into())
            }
        );
        let cases: &[(&str, &str)] = &[
            (
                "postgres:/app:pw@prod-db.example.com:5432",
                "no `//` after `postgres:`",
            ),
            (
                "postgres:app:pw@prod-db.example.com:5432",
                "no `//` after `postgres:`",
            ),
            ("postgres:///appdb", "names no host"),
            ("postgres://app@db/a/b", "more than one part"),
            (
                "postgres://app@db?sslmod=require",
                "unknown parameter `sslmod`",
            ),
            ("postgres://app@db#x", "fragment"),
            ("postgres://app@db?sslmode=sometimes", "`sometimes`"),
            ("mysql://app@db", "scheme is `mysql`"),
        ];
        for (url, want) in cases {
            let err = format!("{:#}", ok(url).unwrap_err());
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("pw@"), "{url}: the password shows: {err}");
        }
        // MySQL's own words for the TLS modes.
        let l = layers(
            &[
                ("MYSQL_URL", "mysql://u@h?ssl-mode=VERIFY_IDENTITY"),
                ("MYSQL_SSL_CA", "/x.pem"),
            ],
            &[],
        );
        let cfg = mysql(&MysqlArgs::default(), &l).unwrap();
        assert_eq!(
            cfg.tls,
            Tls {
                mode: SslMode::VerifyFull,
                ca_file: Some("/x.pem".into())
            }
        );
        assert_eq!(
            mysql(&MysqlArgs::default(), &layers(&[], &[]))
                .unwrap()
                .tls
                .mode,
            SslMode::Prefer
        );
    }

    #[test]
    fn a_password_with_special_characters_is_told_to_be_percent_encoded() {
        let run = |url: &str| {
            let l = layers(&[("MYSQL_URL", url)], &[]);
            mysql(&MysqlArgs::default(), &l).map(|c| c.password.map(|p| p.expose().to_string()))
        };
        // (URL, the characters the message must name)
        let cases: &[(&str, &[&str])] = &[
            ("mysql://app:Se#cr3t@db:3306", &["`#`"]),
            ("mysql://app:Se/cr3t@db:3306", &["`/`"]),
            ("mysql://app:Se?cr3t@db:3306", &["`?`"]),
            ("mysql://app:12/Se@cr3t@db:3306/shop", &["`@`", "`/`"]),
            ("mysql://app:Se#c@r?3t@db:3306", &["`@`", "`#`", "`?`"]),
        ];
        for (url, names) in cases {
            let err = run(url).unwrap_err();
            let text = crate::hint::render(&err);
            assert!(text.contains("holds"), "{url}: {text}");
            for n in *names {
                assert!(text.contains(n), "{url}: {n} not named: {text}");
            }
            assert!(text.contains("percent-encoded"), "{url}: {text}");
            assert!(text.contains("%23") || text.contains("%2F") || text.contains("%40"));
            assert!(!text.contains("cr3t"), "{url}: the password shows: {text}");
        }
        // A password holding only `@` reads as it is; percent-encoded ones decode.
        assert_eq!(
            run("mysql://app:p@ss@db:3306").unwrap().as_deref(),
            Some("p@ss")
        );
        assert_eq!(
            run("mysql://app:p%23s%2Fs%3F@db:3306").unwrap().as_deref(),
            Some("p#s/s?")
        );
        // No password, an `@` in a query value: nothing to say about encoding.
        let l = layers(
            &[("POSTGRES_URL", "postgres://db:5432/x?sslrootcert=/a@b.pem")],
            &[],
        );
        let cfg = postgres(&PostgresArgs::default(), &l).unwrap();
        assert_eq!(cfg.tls.ca_file, Some("/a@b.pem".into()));
    }

    #[test]
    fn a_url_database_and_a_named_one_must_agree() {
        let l = layers(&[("POSTGRES_URL", "postgres://u@h/app")], &[]);
        let cfg = postgres(&PostgresArgs::default(), &l).unwrap();
        assert_eq!(cfg.database_or(None, "dflt", "--target-db").unwrap(), "app");
        assert_eq!(
            cfg.database_or(Some("app"), "dflt", "--target-db").unwrap(),
            "app"
        );
        let err = cfg
            .database_or(Some("other"), "dflt", "--target-db")
            .unwrap_err();
        assert!(format!("{err:#}").contains("the connection URL names database `app`"));
    }

    #[test]
    fn bad_port_and_scheme_are_errors() {
        let l = layers(&[("MYSQL_PORT", "33o6")], &[]);
        assert!(mysql(&MysqlArgs::default(), &l).is_err());
        let l = layers(&[("POSTGRES_URL", "mysql://h")], &[]);
        assert!(postgres(&PostgresArgs::default(), &l).is_err());
    }

    #[test]
    fn empty_password_is_none() {
        let l = layers(&[("MYSQL_PASSWORD", "")], &[]);
        assert!(mysql(&MysqlArgs::default(), &l).unwrap().password.is_none());
    }
}
