//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert`, through rustls (no OpenSSL).
//!
//! Each mode means what it means to libpq:
//!
//! | `sslmode`     | encrypted                   | the server's certificate is checked for |
//! |---------------|-----------------------------|-----------------------------------------|
//! | `disable`     | never                       | -                                       |
//! | `prefer`      | when the server offers TLS  | nothing                                 |
//! | `require`     | always                      | nothing (with `sslrootcert`: its chain) |
//! | `verify-ca`   | always                      | a chain to a CA in `sslrootcert`        |
//! | `verify-full` | always                      | that chain, and the host name           |
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and refuses `sslrootcert` in a
//! URL: lakecheck takes both out of the URL ([`split_tls_params`]), keeps tokio-postgres's own
//! `SslMode` for whether to encrypt, and checks certificates with a rustls verifier of its own
//! per mode.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::TlsConnector;

/// A `sslmode` as libpq spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Every mode, as written in a URL or a rule file.
const MODES: &[(&str, TlsMode)] = &[
    ("disable", TlsMode::Disable),
    ("prefer", TlsMode::Prefer),
    ("require", TlsMode::Require),
    ("verify-ca", TlsMode::VerifyCa),
    ("verify-full", TlsMode::VerifyFull),
];

impl TlsMode {
    /// The mode named `text`, or an error listing the modes there are.
    pub fn parse(text: &str) -> Result<Self, String> {
        MODES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, mode)| *mode)
            .ok_or_else(|| {
                format!(
                    "unknown sslmode `{text}`; write one of {}",
                    MODES
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    pub fn name(self) -> &'static str {
        MODES
            .iter()
            .find(|(_, mode)| *mode == self)
            .map(|(name, _)| *name)
            .expect("every mode is listed")
    }

    /// Whether tokio-postgres encrypts: the verify modes require TLS like `require`.
    pub fn ssl_mode(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    /// Nothing: encrypted against eavesdroppers, not against a server in the middle.
    Nothing,
    /// A chain to a trusted CA, whatever host name the certificate names.
    Chain,
    /// The chain and the host name.
    ChainAndHost,
}

/// A source's TLS settings, from `sslmode` and `sslrootcert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// The PEM file of trusted CA certificates (`sslrootcert`).
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// libpq's checks per mode, including its old rule that `require` with a root certificate
    /// given behaves as `verify-ca`.
    fn verification(&self) -> Verification {
        match self.mode {
            TlsMode::Disable | TlsMode::Prefer => Verification::Nothing,
            TlsMode::Require if self.root_cert.is_some() => Verification::Chain,
            TlsMode::Require => Verification::Nothing,
            TlsMode::VerifyCa => Verification::Chain,
            TlsMode::VerifyFull => Verification::ChainAndHost,
        }
    }

    /// The settings in words, for telling pooled connections of different settings apart.
    pub fn profile(&self) -> String {
        match &self.root_cert {
            Some(path) => format!(
                "sslmode={} sslrootcert={}",
                self.mode.name(),
                path.display()
            ),
            None => format!("sslmode={}", self.mode.name()),
        }
    }

    /// The rustls connector for these settings: reads `sslrootcert` when the mode checks
    /// certificates. Installs lakecheck's crypto provider first (see [`crypto_provider`]).
    pub fn connector(&self) -> Result<RustlsConnector, String> {
        let provider = crypto_provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let chain = match self.verification() {
            Verification::ChainAndHost => {
                let config = builder
                    .with_root_certificates(self.trusted_roots()?)
                    .with_no_client_auth();
                return Ok(RustlsConnector {
                    config: Arc::new(config),
                });
            }
            Verification::Nothing => None,
            Verification::Chain => Some(
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.trusted_roots()?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("cannot set up TLS: {e}"))?,
            ),
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LibpqVerifier { provider, chain }))
            .with_no_client_auth();
        Ok(RustlsConnector {
            config: Arc::new(config),
        })
    }

    /// The CA certificates of `sslrootcert`, or of libpq's default `~/.postgresql/root.crt`.
    fn trusted_roots(&self) -> Result<RootCertStore, String> {
        let path = match &self.root_cert {
            Some(path) => path.clone(),
            None => default_root_cert().ok_or_else(|| {
                format!(
                    "sslmode={} checks the server's certificate but no CA certificate is given: \
                     set `sslrootcert` to the PEM file of the CA that signed it",
                    self.mode.name()
                )
            })?,
        };
        read_roots(&path)
    }

    /// Why a connection failed in TLS, in words, when it did: `host` is the name connected to.
    pub fn explain(&self, error: &tokio_postgres::Error, host: &str) -> Option<String> {
        let tls = find_rustls_error(error)?;
        let roots = || match &self.root_cert {
            Some(path) => format!("sslrootcert `{}`", path.display()),
            None => "~/.postgresql/root.crt".to_string(),
        };
        Some(match tls {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "TLS: the server's certificate does not match the host name `{host}` \
                 (sslmode=verify-full checks it; {tls}): connect by a name the certificate holds, \
                 or use sslmode=verify-ca to check its chain only"
            ),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "TLS: the server's certificate is not trusted: its issuer is not a CA of {} \
                 (unknown issuer); point sslrootcert at the CA certificate that signed it",
                roots()
            ),
            rustls::Error::InvalidCertificate(cause) => format!(
                "TLS: the server's certificate is refused ({cause}) under sslmode={}",
                self.mode.name()
            ),
            other => format!("TLS handshake failed: {other}"),
        })
    }
}

/// libpq's default root certificate file, when it exists.
fn default_root_cert() -> Option<PathBuf> {
    let path = Path::new(&std::env::var_os("HOME")?).join(".postgresql/root.crt");
    path.is_file().then_some(path)
}

fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let unreadable =
        |cause: String| format!("cannot read sslrootcert `{}`: {cause}", path.display());
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(e.to_string()))?;
    if certificates.is_empty() {
        return Err(unreadable("it holds no PEM certificate".into()));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| unreadable(format!("a certificate in it is unusable: {e}")))?;
    }
    Ok(roots)
}

/// The rustls error behind a tokio-postgres error, looking through the `io::Error` rustls's
/// stream wraps it in (whose `source()` skips the wrapped error itself).
fn find_rustls_error(error: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                return Some(tls);
            }
        }
        cause = current.source();
    }
    None
}

/// The crypto provider lakecheck's TLS uses: `ring`, installed as the process default once
/// (idempotent). Both `ring` and `aws-lc-rs` are compiled in through dependencies, and rustls
/// refuses to pick between them itself; called wherever connections are made, so library
/// users and tests get it too. A provider installed earlier by the embedding program is kept.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .expect("a default crypto provider is installed above")
}

/// rustls as tokio-postgres's TLS, with the certificate checks of one source's settings.
/// Cloned for each connection (and each cancel request).
#[derive(Clone)]
pub struct RustlsConnector {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            connector: TlsConnector::from(self.config.clone()),
            server_name: ServerName::try_from(host.to_string())?,
        })
    }
}

/// One TLS handshake, with the host name the certificate is checked against.
pub struct RustlsConnect {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.server_name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// An encrypted connection to the server.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    /// No `tls-server-end-point` binding (it needs the certificate's signature hash): SCRAM
    /// runs without channel binding, as with libpq's `channel_binding=prefer` when unsupported.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The certificate check of every mode but `verify-full` (which is rustls's own): `prefer` and
/// `require` accept any certificate, as libpq; `verify-ca` checks the chain to a trusted CA but
/// not the host name (WebPKI checks the chain before the name, so a name mismatch means the
/// chain was good). Either way the handshake's signatures are verified, so the session is
/// encrypted with the key the certificate holds.
#[derive(Debug)]
struct LibpqVerifier {
    provider: Arc<CryptoProvider>,
    /// The chain check of `verify-ca`; `None` for no check.
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
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

/// The TLS parameters of a connection string, taken out of it because tokio-postgres refuses
/// them: the string without them, `sslmode`, `sslrootcert`. Handles URLs
/// (`postgres://…?sslmode=verify-full&sslrootcert=/ca.pem`, values percent-decoded) and
/// `key=value` strings (`host=db sslmode=require`).
pub fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root_cert) = (None, None);
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            mode = Some(value);
            true
        }
        "sslrootcert" => {
            root_cert = Some(value);
            true
        }
        _ => false,
    };
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let rest = if is_url {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        let value = percent_encoding::percent_decode_str(value)
                            .decode_utf8_lossy()
                            .into_owned();
                        !take(key, value)
                    })
                    .collect();
                match kept.is_empty() {
                    true => base.to_string(),
                    false => format!("{base}?{}", kept.join("&")),
                }
            }
        }
    } else {
        url.split_whitespace()
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                !take(key.trim(), value.trim_matches('\'').to_string())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root_cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::url_with_both(
        "postgres://u:p@db:5432/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        "postgres://u:p@db:5432/app",
        Some("verify-full"),
        Some("/etc/ca.pem")
    )]
    #[case::other_params_kept(
        "postgresql://u@db/app?connect_timeout=5&sslmode=require&application_name=x",
        "postgresql://u@db/app?connect_timeout=5&application_name=x",
        Some("require"),
        None
    )]
    #[case::no_query("postgres://u@db/app", "postgres://u@db/app", None, None)]
    #[case::key_value(
        "host=db user=u sslmode=verify-ca sslrootcert='/ca.pem' dbname=app",
        "host=db user=u dbname=app",
        Some("verify-ca"),
        Some("/ca.pem")
    )]
    fn tls_params_are_taken_out_of_connection_strings(
        #[case] url: &str,
        #[case] rest: &str,
        #[case] mode: Option<&str>,
        #[case] root_cert: Option<&str>,
    ) {
        assert_eq!(
            split_tls_params(url),
            (
                rest.to_string(),
                mode.map(str::to_string),
                root_cert.map(str::to_string)
            )
        );
    }

    #[rstest]
    #[case(TlsMode::Disable, None, Verification::Nothing)]
    #[case(TlsMode::Prefer, Some("/ca.pem"), Verification::Nothing)]
    #[case(TlsMode::Require, None, Verification::Nothing)]
    // libpq: require with a root certificate file behaves as verify-ca.
    #[case(TlsMode::Require, Some("/ca.pem"), Verification::Chain)]
    #[case(TlsMode::VerifyCa, Some("/ca.pem"), Verification::Chain)]
    #[case(TlsMode::VerifyFull, Some("/ca.pem"), Verification::ChainAndHost)]
    fn each_mode_checks_what_libpq_checks(
        #[case] mode: TlsMode,
        #[case] root_cert: Option<&str>,
        #[case] expected: Verification,
    ) {
        let settings = TlsSettings {
            mode,
            root_cert: root_cert.map(PathBuf::from),
        };
        assert_eq!(settings.verification(), expected);
    }

    #[test]
    fn modes_read_as_libpq_spells_them() {
        for (name, mode) in MODES {
            assert_eq!(TlsMode::parse(name), Ok(*mode));
            assert_eq!(mode.name(), *name);
        }
        assert_eq!(
            TlsMode::parse("verify_full"),
            Err(
                "unknown sslmode `verify_full`; write one of disable, prefer, require, \
                 verify-ca, verify-full"
                    .to_string()
            )
        );
    }

    #[test]
    fn a_missing_root_certificate_is_named() {
        let settings = TlsSettings {
            mode: TlsMode::VerifyFull,
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        let error = settings.connector().err().expect("no such file");
        assert!(
            error.starts_with("cannot read sslrootcert `/nonexistent/ca.pem`: "),
            "{error}"
        );
    }
}
