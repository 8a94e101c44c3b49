//! TLS for Seisan's HTTP APIs (the node's and the bank's), with rustls and the ring
//! provider (no cmake, no system OpenSSL).
//!
//! - [`server_config`]: a server's PEM certificate chain and private key, checked at
//!   startup (a missing, unreadable or mismatched file fails naming the file).
//! - [`serve`]: an axum router over plain HTTP or, with a config, HTTPS; either way the
//!   handlers see each client's address (`ConnectInfo<SocketAddr>`, which the node's
//!   per-address rate limit needs).
//! - [`client_tls`]: the TLS settings of a ureq client: trust exactly the CA in a PEM
//!   file, or else the webpki (Mozilla) roots.
//! - [`write_testnet_certs`]: a testnet CA and a certificate per server for
//!   `127.0.0.1`/`localhost`.

use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

mod testnet;
pub use testnet::{write_testnet_certs, TestnetCerts, CA_FILE};

/// Why TLS could not be set up. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("TLS key {} holds no PEM private key (-----BEGIN PRIVATE KEY-----): {reason}", path.display())]
    NoKey { path: PathBuf, reason: String },
    #[error("{what} {} is not valid PEM: {reason}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS certificate {} and key {} do not go together: {reason}", cert.display(), key.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS key {} is readable by group or others (mode {mode:o}); run chmod 600 {}", path.display(), path.display())]
    KeyNotPrivate { path: PathBuf, mode: u32 },
    #[error("generating the testnet certificates: {reason}")]
    Generate { reason: String },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The ring provider, named explicitly: another crate of the binary may enable a
/// second rustls provider, and then rustls cannot pick a process default.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server's TLS settings from its PEM certificate chain (leaf first) and private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_pem = read("TLS certificate", cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            what: "TLS certificate",
            path: cert.to_path_buf(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            what: "TLS certificate",
            path: cert.to_path_buf(),
        });
    }
    // A private key others can read is refused, as the node's key files are.
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(key)
            .map_err(|source| TlsError::Read {
                what: "TLS key",
                path: key.to_path_buf(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777
    };
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyNotPrivate {
            path: key.to_path_buf(),
            mode,
        });
    }
    let key_pem = read("TLS key", key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::NoKey {
        path: key.to_path_buf(),
        reason: error.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: error.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|error| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: error.to_string(),
        })?;
    // The servers speak HTTP/1.1 only (axum without its http2 feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A ureq client's TLS settings: trust only the CA certificates in `ca` (PEM), or the
/// webpki (Mozilla) roots without one.
pub fn client_tls(ca: Option<&Path>) -> Result<ureq::tls::TlsConfig, TlsError> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let Some(path) = ca else {
        return Ok(TlsConfig::builder().build());
    };
    let pem = read("CA file", path)?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(error) => {
                return Err(TlsError::Pem {
                    what: "CA file",
                    path: path.to_path_buf(),
                    reason: error.to_string(),
                })
            }
        }
    }
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            what: "CA file",
            path: path.to_path_buf(),
        });
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&certificates))
        .build())
}

/// How many TLS handshakes may be under way at once; a connection beyond that waits
/// for a slot before its handshake starts (the kernel's backlog holds it).
pub const MAX_PENDING_HANDSHAKES: usize = 512;
/// How long a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the HTTP server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// What a plain-HTTP client gets from an HTTPS port, so that `curl http://...` says why
/// instead of failing with a garbled reply.
const PLAIN_HTTP_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 62\r\n\r\nthis port serves HTTPS only: use an https:// URL (TLS is on)\r\n";

/// Serves `router` on `listener` until `shutdown` resolves: HTTPS with `tls`, plain
/// HTTP without. Handlers can extract `ConnectInfo<SocketAddr>` either way.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            let local = listener.local_addr()?;
            let (sender, incoming) = mpsc::channel(ACCEPTED_QUEUE);
            let acceptor = tokio::spawn(accept_loop(listener, config, sender));
            // `tap_io` gives the listener axum's `ConnectInfo<SocketAddr>` support.
            let result = axum::serve(TlsListener { incoming, local }.tap_io(|_| {}), service)
                .with_graceful_shutdown(shutdown)
                .await;
            acceptor.abort();
            result
        }
    }
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// Hands the HTTP server connections whose handshake is done; handshakes run in their
/// own tasks so that a slow client never holds up the others.
struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when the server is being dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    sender: mpsc::Sender<(TlsStream, SocketAddr)>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let slots = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (stream, address) = match listener.accept().await {
            Ok(connection) => connection,
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%error, "accepting an HTTPS connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, stream)).await {
                Ok(Ok(Some(tls))) => {
                    let _ = sender.send((tls, address)).await;
                }
                Ok(Ok(None)) => {
                    tracing::debug!(%address, "plain HTTP on the HTTPS port, refused");
                }
                Ok(Err(error)) => tracing::debug!(%address, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%address, "TLS handshake timed out"),
            }
        });
    }
}

/// The TLS stream, or `None` after answering a client that spoke plain HTTP.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    mut stream: TcpStream,
) -> std::io::Result<Option<TlsStream>> {
    use tokio::io::AsyncWriteExt;
    // A TLS connection opens with a handshake record (content type 22); an HTTP
    // request opens with an ASCII method name.
    let mut first = [0u8; 1];
    let read = stream.peek(&mut first).await?;
    if read == 1 && first[0].is_ascii_uppercase() {
        stream.write_all(PLAIN_HTTP_REFUSAL).await?;
        stream.shutdown().await?;
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_refusal_has_a_correct_content_length() {
        let text = std::str::from_utf8(PLAIN_HTTP_REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn missing_and_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let certs = write_testnet_certs(dir.path(), &["a", "b"]).unwrap();
        let (a_cert, a_key) = certs.server("a");
        let (_, b_key) = certs.server("b");
        server_config(&a_cert, &a_key).unwrap();

        let missing = dir.path().join("absent.pem");
        let error = server_config(&missing, &a_key).unwrap_err().to_string();
        assert!(error.contains("absent.pem"), "{error}");

        let error = server_config(&a_cert, &b_key).unwrap_err().to_string();
        assert!(
            error.contains("a.pem")
                && error.contains("b.key")
                && error.contains("do not go together"),
            "{error}"
        );

        // A key where the certificate belongs, and the other way round.
        let error = server_config(&a_key, &a_key).unwrap_err().to_string();
        assert!(
            error.contains("no PEM certificate") && error.contains("a.key"),
            "{error}"
        );
        let cert_as_key = dir.path().join("a-cert-as-key.pem");
        std::fs::copy(&a_cert, &cert_as_key).unwrap();
        set_mode(&cert_as_key, 0o600);
        let error = server_config(&a_cert, &cert_as_key)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no PEM private key") && error.contains("a-cert-as-key.pem"),
            "{error}"
        );

        // A key file others can read is refused.
        set_mode(&a_key, 0o644);
        let error = server_config(&a_cert, &a_key).unwrap_err().to_string();
        assert!(
            error.contains("chmod 600") && error.contains("a.key"),
            "{error}"
        );
        set_mode(&a_key, 0o600);

        let error = client_tls(Some(&a_key)).unwrap_err().to_string();
        assert!(
            error.contains("CA file") && error.contains("a.key"),
            "{error}"
        );
        client_tls(Some(&certs.ca)).unwrap();
    }

    /// Starts a TLS server answering `/hello`; returns its port.
    fn start(runtime: &tokio::runtime::Runtime, config: Arc<rustls::ServerConfig>) -> u16 {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let router =
            axum::Router::new().route(
                "/hello",
                axum::routing::get(
                    |axum::extract::ConnectInfo(address): axum::extract::ConnectInfo<
                        SocketAddr,
                    >| async move { format!("hello {}", address.ip()) },
                ),
            );
        runtime.spawn(serve(
            listener,
            Some(config),
            router,
            std::future::pending(),
        ));
        port
    }

    fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .build()
            .into()
    }

    #[test]
    fn https_with_the_ca_works_and_without_it_or_over_plain_http_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let certs = write_testnet_certs(dir.path(), &["node"]).unwrap();
        let (cert, key) = certs.server("node");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let port = start(&runtime, server_config(&cert, &key).unwrap());

        let trusted = agent(client_tls(Some(&certs.ca)).unwrap());
        for host in ["127.0.0.1", "localhost"] {
            let mut response = trusted
                .get(format!("https://{host}:{port}/hello"))
                .call()
                .unwrap();
            // The handler saw the client's address through the TLS listener.
            assert_eq!(
                response.body_mut().read_to_string().unwrap(),
                "hello 127.0.0.1"
            );
        }

        let error = agent(client_tls(None).unwrap())
            .get(format!("https://127.0.0.1:{port}/hello"))
            .call()
            .unwrap_err()
            .to_string();
        assert!(error.contains("UnknownIssuer"), "{error}");

        let mut response = agent(client_tls(None).unwrap())
            .get(format!("http://127.0.0.1:{port}/hello"))
            .call()
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert!(response
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("use an https:// URL"));
    }
}
