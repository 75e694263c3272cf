//! Finding a database server through the Docker Engine API (bollard, Unix socket from
//! `DOCKER_HOST`, default `/var/run/docker.sock`). Used only when a container name is
//! configured and the host/port are not: then the container must exist and be running,
//! and its published host port (or, unpublished, its address on its network) is used.
//! The decision is the pure `decide`; this is the only module that talks to the engine.

use anyhow::{Result, anyhow};
use bollard::models::ContainerInspectResponse;
use bollard::{API_DEFAULT_VERSION, Docker};

use crate::config::{Layers, Origin, ServerConfig};
use crate::hint::with_hint;

/// Where the container's server is reachable, and how we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub host: String,
    pub port: u16,
    pub how: String,
}

/// The engine's Unix socket: `DOCKER_HOST` (environment or `.env`) or the default.
pub fn socket_path(layers: &Layers) -> Result<String> {
    let host = layers
        .get(None, "DOCKER_HOST")
        .map(|(v, _)| v)
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    match host.strip_prefix("unix://") {
        Some(path) => Ok(path.to_string()),
        None => Err(with_hint(
            anyhow!("DOCKER_HOST is `{host}`: only unix:// sockets are supported"),
            "point DOCKER_HOST at the engine's Unix socket, or set MYSQL_HOST/POSTGRES_HOST and the port instead of the container",
        )),
    }
}

/// If `cfg` names a container and its address was not set explicitly, resolve it through
/// the engine; `internal_port` is the server's port inside the container.
pub async fn apply(cfg: &mut ServerConfig, internal_port: u16, layers: &Layers) -> Result<()> {
    let Some(container) = cfg.container.clone() else {
        return Ok(());
    };
    if cfg.address_origin != Origin::Default {
        cfg.resolved_via = Some(format!(
            "container `{container}` named, but the address was set explicitly ({}): Docker not asked",
            cfg.address_origin
        ));
        return Ok(());
    }
    let socket = socket_path(layers)?;
    let r = inspect(&socket, &container, internal_port).await?;
    cfg.host = r.host;
    cfg.port = r.port;
    cfg.resolved_via = Some(format!("container `{container}`: {}", r.how));
    Ok(())
}

async fn inspect(socket: &str, container: &str, internal_port: u16) -> Result<Resolved> {
    let unreachable = |e: String| {
        with_hint(
            anyhow!(
                "cannot reach the Docker engine at {socket} to find container `{container}`: {e}"
            ),
            "is Docker running and may this user use its socket? Or set the host and port instead of the container",
        )
    };
    let docker = Docker::connect_with_unix(socket, 10, API_DEFAULT_VERSION)
        .map_err(|e| unreachable(e.to_string()))?;
    let info = match docker.inspect_container(container, None).await {
        Ok(info) => info,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            let names = container_names(&docker).await;
            let near = crate::hint::similar(container, names.iter().map(String::as_str));
            let hint = if near.is_empty() {
                "check the name with `docker ps -a`, or fix MYSQL_CONTAINER / POSTGRES_CONTAINER"
                    .to_string()
            } else {
                format!(
                    "the engine has {}: container names must match exactly (check with `docker ps -a`)",
                    near.iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(with_hint(
                anyhow!("container `{container}` does not exist"),
                hint,
            ));
        }
        Err(e) => return Err(unreachable(e.to_string())),
    };
    // The engine also accepts an ID prefix; say which container that was.
    let name = info
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/'))
        .unwrap_or(container);
    let mut r = decide(&info, container, internal_port)?;
    if name != container {
        r.how = format!("{} (container `{name}`, by ID prefix)", r.how);
    }
    Ok(r)
}

/// Every container's names (running or not), for a suggestion; none if the engine
/// will not say.
async fn container_names(docker: &Docker) -> Vec<String> {
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect()
}

/// PURE: from an inspect response to an address. Running is required; a published host
/// port wins (an unspecified bind address means this host); otherwise the container's
/// address on its first network (by name), with the internal port.
pub fn decide(
    info: &ContainerInspectResponse,
    container: &str,
    internal_port: u16,
) -> Result<Resolved> {
    let state = info.state.as_ref();
    let running = state.and_then(|s| s.running).unwrap_or(false);
    if !running {
        let status = state
            .and_then(|s| s.status.as_ref())
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        return Err(with_hint(
            anyhow!("container `{container}` is not running (status: {status})"),
            format!("start it with `docker start {container}`"),
        ));
    }
    let net = info.network_settings.as_ref();
    let key = format!("{internal_port}/tcp");
    if let Some(bindings) = net
        .and_then(|n| n.ports.as_ref())
        .and_then(|p| p.get(&key))
        .and_then(|b| b.as_ref())
    {
        for b in bindings {
            let Some(port) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let ip = b.host_ip.as_deref().unwrap_or("");
            let host = match ip {
                "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
                other => other.to_string(),
            };
            return Ok(Resolved {
                how: format!("published port {key} -> {host}:{port}"),
                host,
                port,
            });
        }
    }
    let mut networks: Vec<(&String, String)> = net
        .and_then(|n| n.networks.as_ref())
        .map(|m| {
            m.iter()
                .filter_map(|(name, ep)| {
                    ep.ip_address
                        .clone()
                        .filter(|ip| !ip.is_empty())
                        .map(|ip| (name, ip))
                })
                .collect()
        })
        .unwrap_or_default();
    networks.sort();
    match networks.first() {
        Some((name, ip)) => Ok(Resolved {
            how: format!(
                "port {key} not published; address on network `{name}` {ip}:{internal_port}"
            ),
            host: ip.clone(),
            port: internal_port,
        }),
        None => Err(with_hint(
            anyhow!(
                "container `{container}` publishes no port for {key} and has no network address"
            ),
            format!(
                "publish the port (`-p {internal_port}:{internal_port}`) or set the host and port explicitly"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(json: &str) -> ContainerInspectResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn decisions() {
        type Want<'a> = Result<(&'a str, u16), &'a str>;
        let cases: &[(&str, Want)] = &[
            (
                r#"{"State":{"Status":"running","Running":true},"NetworkSettings":{"Ports":{"3306/tcp":[{"HostIp":"0.0.0.0","HostPort":"33060"}]},"Networks":{"n":{"IPAddress":"172.18.0.2"}}}}"#,
                Ok(("127.0.0.1", 33060)),
            ),
            (
                r#"{"State":{"Status":"running","Running":true},"NetworkSettings":{"Ports":{"3306/tcp":[{"HostIp":"10.0.0.5","HostPort":"3307"}]}}}"#,
                Ok(("10.0.0.5", 3307)),
            ),
            (
                r#"{"State":{"Status":"running","Running":true},"NetworkSettings":{"Ports":{"3306/tcp":null},"Networks":{"b":{"IPAddress":"172.18.0.3"},"a":{"IPAddress":""}}}}"#,
                Ok(("172.18.0.3", 3306)),
            ),
            (
                r#"{"State":{"Status":"exited","Running":false,"ExitCode":1}}"#,
                Err("container `db` is not running (status: exited)"),
            ),
            (
                r#"{"State":{"Status":"running","Running":true},"NetworkSettings":{"Ports":{}}}"#,
                Err("publishes no port for 3306/tcp"),
            ),
        ];
        for (json, want) in cases {
            let got = decide(&info(json), "db", 3306);
            match (got, want) {
                (Ok(r), Ok((h, p))) => assert_eq!((r.host.as_str(), r.port), (*h, *p)),
                (Err(e), Err(msg)) => assert!(format!("{e:#}").contains(msg), "{e:#}"),
                (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn docker_host_must_be_a_unix_socket() {
        let mut l = Layers::default();
        assert_eq!(socket_path(&l).unwrap(), "/var/run/docker.sock");
        l.env
            .insert("DOCKER_HOST".into(), "unix:///tmp/x.sock".into());
        assert_eq!(socket_path(&l).unwrap(), "/tmp/x.sock");
        l.env
            .insert("DOCKER_HOST".into(), "tcp://1.2.3.4:2375".into());
        assert!(socket_path(&l).is_err());
    }
}
