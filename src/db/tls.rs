//! TLS for both servers, with rustls (ring). One rule for both, in libpq's words:
//! `prefer` and `require` encrypt without checking the certificate, `verify-ca` checks
//! that it chains to a trusted root, `verify-full` also that it names the host. The roots
//! are the CA file given (only it), else the Mozilla root set. For PostgreSQL this module
//! is tokio-postgres's TLS connector; for MySQL it builds mysql_async's `SslOpts`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result, anyhow};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::config::{SslMode, Tls};
use crate::hint::WithHint;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trusted roots: the CA file's certificates, or the Mozilla set.
fn roots(tls: &Tls) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("reading the CA file {}", path.display()))
                .hint("give a PEM file holding the certificate authority's certificate")?;
            if certs.is_empty() {
                return Err(anyhow!("{} holds no certificate", path.display()));
            }
            for c in certs {
                store
                    .add(c)
                    .with_context(|| format!("a certificate of {}", path.display()))?;
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

/// The rustls configuration for PostgreSQL under this mode (None: no TLS).
pub fn client_config(tls: &Tls) -> Result<Option<Arc<ClientConfig>>> {
    if tls.mode == SslMode::Disable {
        return Ok(None);
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let config = if tls.mode == SslMode::VerifyFull {
        builder
            .with_root_certificates(roots(tls)?)
            .with_no_client_auth()
    } else {
        let verifier = Verifier {
            full: if tls.mode == SslMode::VerifyCa {
                Some(
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots(tls)?), provider())
                        .build()
                        .map_err(|e| anyhow!("TLS setup: {e}"))?,
                )
            } else {
                None
            },
            provider: provider(),
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    };
    Ok(Some(Arc::new(config)))
}

/// `prefer`/`require` (no `full`: any certificate) and `verify-ca` (`full` checks the
/// chain; a name mismatch is accepted). Handshake signatures are always checked.
#[derive(Debug)]
struct Verifier {
    full: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(full) = &self.full else {
            return Ok(ServerCertVerified::assertion());
        };
        match full.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres's TLS connector over rustls.
#[derive(Clone)]
pub struct PgTls(pub Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, Self::Error> {
        Ok(PgTlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.0.clone()),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

pub struct PgTlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let s = self.connector.connect(self.name, stream).await?;
            Ok(PgTlsStream(Box::new(s)))
        })
    }
}

pub struct PgTlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    /// No channel binding: SCRAM still authenticates; `channel_binding=require` servers
    /// are not supported.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// mysql_async's TLS options under this mode (None: no TLS).
pub fn mysql_ssl_opts(tls: &Tls) -> Option<mysql_async::SslOpts> {
    if tls.mode == SslMode::Disable {
        return None;
    }
    let mut opts = mysql_async::SslOpts::default()
        .with_danger_accept_invalid_certs(!tls.mode.verifies())
        .with_danger_skip_domain_validation(tls.mode == SslMode::VerifyCa);
    if let Some(ca) = &tls.ca_file {
        opts = opts
            .with_root_certs(vec![ca.clone().into()])
            .with_disable_built_in_roots(true);
    }
    Some(opts)
}
