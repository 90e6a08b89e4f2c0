//! TLS to PostgreSQL with libpq's `sslmode` and `sslrootcert` (rustls, ring provider).
//!
//! tokio-postgres reads `sslmode` as `disable`, `prefer` or `require` only, and knows no
//! `sslrootcert`, so both are taken out of the connection string here (URL or key=value
//! form) and the driver is told only whether TLS is off, preferred or required. What is
//! verified follows libpq:
//!
//! | `sslmode` | encrypted | certificate chain | host name |
//! |---|---|---|---|
//! | `disable` | never | — | — |
//! | `prefer` (the default) | if the server offers it | no | no |
//! | `require` | always | only with `sslrootcert` (then as `verify-ca`) | no |
//! | `verify-ca` | always | yes | no |
//! | `verify-full` | always | yes | yes |
//!
//! The chain is checked against `sslrootcert` (a PEM file) when given, else against the
//! Mozilla roots of `webpki-roots`: compiled in (no dependence on the host's certificate
//! store, the same roots in every build) and already part of the build through the HTTP
//! client. A private CA, as most managed services use, needs `sslrootcert`.

use std::{borrow::Cow, fmt, path::PathBuf, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        verify_server_cert_signed_by_trust_anchor,
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
    server::ParsedCertificate,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values that the service supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified; plain otherwise.
    #[default]
    Prefer,
    /// TLS, unverified (verified like `VerifyCa` when a root certificate is given).
    Require,
    /// TLS with a certificate chain to a trusted root, whatever host name it names.
    VerifyCa,
    /// TLS with a trusted chain and a certificate for the host connected to.
    VerifyFull,
}

impl SslMode {
    const NAMES: &str = "disable, prefer, require, verify-ca or verify-full";

    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// What the driver must negotiate (it verifies nothing itself).
    pub(crate) fn driver_mode(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self {
            Self::Disable => Driver::Disable,
            Self::Prefer => Driver::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Driver::Require,
        }
    }
}

/// The TLS parameters of a connection string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

/// A TLS parameter that cannot be used. Names the parameter, never the connection string
/// (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TlsConfigError {
    field: &'static str,
    message: String,
}

/// `url` without its `sslmode` and `sslrootcert`, and those two parsed.
pub(crate) fn split_params(url: &str) -> Result<(Cow<'_, str>, TlsParams), TlsConfigError> {
    let (rest, found) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)
    } else {
        split_key_values(url)
    };
    let mut params = TlsParams::default();
    for (key, value) in found {
        match key {
            Key::SslMode => {
                params.mode = SslMode::parse(&value).ok_or_else(|| TlsConfigError {
                    field: "sslmode",
                    message: format!("unsupported value; use {}", SslMode::NAMES),
                })?;
            }
            Key::SslRootCert => params.root_cert = Some(PathBuf::from(value)),
        }
    }
    Ok((rest, params))
}

#[derive(Clone, Copy)]
enum Key {
    SslMode,
    SslRootCert,
}

fn key(name: &str) -> Option<Key> {
    match name {
        "sslmode" => Some(Key::SslMode),
        "sslrootcert" => Some(Key::SslRootCert),
        _ => None,
    }
}

/// The URL form: `?sslmode=…&sslrootcert=…` among the query's `&`-separated pairs, keys and
/// values percent-encoded (as tokio-postgres reads them).
fn split_url(url: &str) -> (Cow<'_, str>, Vec<(Key, String)>) {
    let Some((head, query)) = url.split_once('?') else {
        return (Cow::Borrowed(url), Vec::new());
    };
    let mut found = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let taken = pair.split_once('=').and_then(|(name, value)| {
            let name = percent_decode(name)?;
            Some((key(&name)?, percent_decode(value)?))
        });
        match taken {
            Some(param) => found.push(param),
            None => kept.push(pair),
        }
    }
    if found.is_empty() {
        return (Cow::Borrowed(url), found);
    }
    let rest = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    (Cow::Owned(rest), found)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The key=value form, with tokio-postgres's grammar: `key = value` pairs separated by
/// whitespace, values either bare or in single quotes, `\` escaping the next character.
/// A string that does not follow it is left whole, for the driver to refuse.
fn split_key_values(text: &str) -> (Cow<'_, str>, Vec<(Key, String)>) {
    let Some(pairs) = key_value_pairs(text) else {
        return (Cow::Borrowed(text), Vec::new());
    };
    let mut found = Vec::new();
    let mut kept = Vec::new();
    for (name, value, span) in pairs {
        match key(name) {
            Some(k) => found.push((k, value)),
            None => kept.push(&text[span.0..span.1]),
        }
    }
    if found.is_empty() {
        return (Cow::Borrowed(text), found);
    }
    (Cow::Owned(kept.join(" ")), found)
}

type Pair<'a> = (&'a str, String, (usize, usize));

fn key_value_pairs(text: &str) -> Option<Vec<Pair<'_>>> {
    let mut chars = text.char_indices().peekable();
    let mut pairs = Vec::new();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            return Some(pairs);
        };
        while chars
            .next_if(|(_, c)| !c.is_whitespace() && *c != '=')
            .is_some()
        {}
        let name_end = chars.peek().map_or(text.len(), |(i, _)| *i);
        let name = &text[start..name_end];
        skip_ws(&mut chars);
        chars.next_if(|(_, c)| *c == '=')?;
        skip_ws(&mut chars);
        let mut value = String::new();
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        loop {
            match chars.peek().copied() {
                None if quoted => return None,
                None => break,
                Some((_, '\'')) if quoted => {
                    chars.next();
                    break;
                }
                Some((_, c)) if c.is_whitespace() && !quoted => break,
                Some((_, '\\')) => {
                    chars.next();
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                Some((_, c)) => {
                    chars.next();
                    value.push(c);
                }
            }
        }
        if name.is_empty() || (value.is_empty() && !quoted) {
            return None;
        }
        let end = chars.peek().map_or(text.len(), |(i, _)| *i);
        pairs.push((name, value, (start, end)));
    }
}

/// The connector for `params`: rustls on ring with the verification `params` asks for.
/// Reads `sslrootcert` now, so a missing or unreadable file stops start-up.
pub(crate) fn connector(params: &TlsParams) -> Result<MakeRustlsConnect, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let invalid = |message: String| TlsConfigError {
        field: "sslrootcert",
        message,
    };
    let roots = match &params.root_cert {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(invalid(format!(
                    "{} holds no usable PEM certificate",
                    path.display()
                )));
            }
            roots
        }
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let verify_chain = match params.mode {
        SslMode::Disable | SslMode::Prefer => false,
        SslMode::Require => params.root_cert.is_some(),
        SslMode::VerifyCa | SslMode::VerifyFull => true,
    };
    let verifier: Arc<dyn ServerCertVerifier> = if params.mode == SslMode::VerifyFull {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| invalid(e.to_string()))?
    } else if verify_chain {
        Arc::new(ChainOnly {
            roots,
            provider: Arc::clone(&provider),
        })
    } else {
        Arc::new(Unverified(Arc::clone(&provider)))
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError {
            field: "sslmode",
            message: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
struct ChainOnly {
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for ChainOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainOnly")
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &certificate,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// `prefer` and `require` without a root: encrypted, whoever answers (libpq's semantics;
/// the handshake signatures are still checked against the presented certificate).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        let (rest, params) = split_params(url).unwrap();
        (rest.into_owned(), params)
    }

    #[test]
    fn verify_modes_and_the_root_are_taken_out_of_a_url() {
        let (rest, params) = split(
            "postgres://u:pw@db.example:5432/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(
            rest,
            "postgres://u:pw@db.example:5432/app?application_name=x"
        );
        assert_eq!(
            params,
            TlsParams {
                mode: SslMode::VerifyFull,
                root_cert: Some("/etc/ca.pem".into()),
            }
        );
        let (rest, params) = split("postgresql://db/app?sslmode=verify-ca");
        assert_eq!(rest, "postgresql://db/app");
        assert_eq!(params.mode, SslMode::VerifyCa);
    }

    #[test]
    fn verify_modes_and_the_root_are_taken_out_of_key_values() {
        let (rest, params) = split(
            "host=db user=u password='a b\\'c' sslmode = verify-ca sslrootcert='/my certs/ca.pem' dbname=app",
        );
        assert_eq!(rest, "host=db user=u password='a b\\'c' dbname=app");
        assert_eq!(
            params,
            TlsParams {
                mode: SslMode::VerifyCa,
                root_cert: Some("/my certs/ca.pem".into()),
            }
        );
    }

    #[test]
    fn without_tls_parameters_the_string_is_untouched_and_prefer_applies() {
        for url in ["postgres://u@h/db?application_name=x", "host=h user=u"] {
            let (rest, params) = split(url);
            assert_eq!(rest, url);
            assert_eq!(params, TlsParams::default());
            assert_eq!(params.mode, SslMode::Prefer);
        }
    }

    #[test]
    fn an_unknown_sslmode_is_refused_by_name_without_the_password() {
        for url in [
            "postgres://u:hunter2@h/db?sslmode=verify_full",
            "host=h password=hunter2 sslmode=allow",
        ] {
            let message = split_params(url).unwrap_err().to_string();
            assert!(message.starts_with("sslmode:"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn the_driver_is_asked_to_require_tls_for_every_verifying_mode() {
        use tokio_postgres::config::SslMode as Driver;
        assert_eq!(SslMode::Disable.driver_mode(), Driver::Disable);
        assert_eq!(SslMode::Prefer.driver_mode(), Driver::Prefer);
        for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            assert_eq!(mode.driver_mode(), Driver::Require);
        }
    }

    #[test]
    fn a_missing_root_certificate_file_is_refused_by_name() {
        let params = TlsParams {
            mode: SslMode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        let message = connector(&params).err().unwrap().to_string();
        assert!(message.starts_with("sslrootcert:"), "{message}");
    }
}
