//! Bearer-token authentication: JWT verification (HS256 secret, or RS256/EdDSA public key),
//! the `Principal` extractors, and minting tokens for development.

use std::{
    future::{Ready, ready},
    sync::Arc,
};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};
use domain::{
    UserId,
    audit::{Actor, Role},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::ApiError,
    request_id::{ClientRequestId, RequestId},
};

/// How tokens are verified.
#[derive(Clone)]
pub enum VerificationKey {
    /// HS256 with a shared secret.
    Hs256(SecretString),
    /// RS256 or EdDSA with a PEM public key (the algorithm follows the key type).
    PublicKeyPem(String),
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerificationKey::Hs256(_) => f.write_str("Hs256([REDACTED])"),
            VerificationKey::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
        }
    }
}

/// Token verification settings.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// The key.
    pub key: VerificationKey,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
}

/// The shortest HS256 secret accepted: RFC 7518 (3.2) requires a key of at least the hash
/// size (256 bits); a shorter one is open to offline guessing from any token.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Leeway for clock skew on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;

/// Why the verifier could not be built (bad PEM, short secret, ...). Never holds key
/// material.
#[derive(Debug, thiserror::Error)]
#[error("invalid JWT verification key: {0}")]
pub struct AuthConfigError(String);

/// The claims this service reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user's UUID.
    pub sub: String,
    /// Expiry (seconds since the epoch); required.
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Roles beyond "user": `admin`, `service`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// What verification reads beyond the registered claims, which `jsonwebtoken` checks itself
/// (`exp`, and `iss`/`aud` in any of their allowed shapes, e.g. an `aud` array).
#[derive(Deserialize)]
struct VerifiedClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    roles: Vec<String>,
}

/// Tokens that verified, and who they name: a memo the [`Authenticator`] consults before
/// checking a token in full. The application supplies it (bounded); the authenticator decides
/// what goes in and when an entry may be used.
pub trait VerifiedTokens: Send + Sync {
    /// The principal `token` named when it verified, if remembered.
    fn recall(&self, token: &str) -> Option<Principal>;

    /// Remembers that `token` verified and names `principal`.
    fn remember(&self, token: &str, principal: Principal);
}

/// Verifies bearer tokens.
///
/// With [`Authenticator::remembering`], a token that verified is remembered, keyed by the whole
/// token, until its `exp`: clients send the same token with every request, and checking it
/// again (base64, JSON, the signature) cost more than a quarter of an uncached read's
/// instructions. Only successes are remembered, and only used while they hold: nothing in a
/// token can make it fail later but its expiry (the key and the accepted issuer and audience
/// are fixed for the process), and an entry is not used from the token's `exp` on, when the
/// token is checked in full again (and then still accepted within the clock-skew leeway, or
/// refused).
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    verified: Option<Arc<dyn VerifiedTokens>>,
}

impl Authenticator {
    /// Builds a verifier.
    ///
    /// # Errors
    /// [`AuthConfigError`] when the public key is not a usable RSA or Ed25519 PEM, or the
    /// HS256 secret is shorter than [`MIN_HS256_SECRET_BYTES`].
    pub fn new(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        let (key, algorithms) = match &config.key {
            VerificationKey::Hs256(secret) => {
                let secret = secret.expose_secret().as_bytes();
                if secret.len() < MIN_HS256_SECRET_BYTES {
                    return Err(AuthConfigError(format!(
                        "the HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes \
                         (it has {})",
                        secret.len()
                    )));
                }
                (DecodingKey::from_secret(secret), vec![Algorithm::HS256])
            }
            VerificationKey::PublicKeyPem(pem) => {
                if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    (key, vec![Algorithm::RS256])
                } else if let Ok(key) = DecodingKey::from_ed_pem(pem.as_bytes()) {
                    (key, vec![Algorithm::EdDSA])
                } else {
                    return Err(AuthConfigError(
                        "the public key is neither an RSA nor an Ed25519 PEM".into(),
                    ));
                }
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        // Checked when present (issuers that pre-date tokens rely on it); same leeway.
        validation.validate_nbf = true;
        match &config.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        Ok(Self {
            key,
            validation,
            verified: None,
        })
    }

    /// This authenticator, remembering the tokens that verified in `tokens`.
    #[must_use]
    pub fn remembering(mut self, tokens: Arc<dyn VerifiedTokens>) -> Self {
        self.verified = Some(tokens);
        self
    }

    /// Verifies a token and returns who it names.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] with a reason safe to show (never the token).
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let Some(verified) = &self.verified else {
            return self.verify_in_full(token);
        };
        if let Some(principal) = verified.recall(token)
            && time::OffsetDateTime::now_utc() < principal.expires_at
        {
            return Ok(principal);
        }
        let principal = self.verify_in_full(token)?;
        verified.remember(token, principal.clone());
        Ok(principal)
    }

    /// Checks the token's signature and claims.
    fn verify_in_full(&self, token: &str) -> Result<Principal, ApiError> {
        let data = decode::<VerifiedClaims>(token, &self.key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let reason = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidSignature => "the token signature is invalid",
                ErrorKind::InvalidAlgorithm => "the token algorithm is not accepted",
                ErrorKind::InvalidIssuer => "the token issuer is not accepted",
                ErrorKind::InvalidAudience => "the token audience is not accepted",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                _ => "the token is malformed",
            };
            ApiError::Unauthorized(reason.into())
        })?;
        let user_id = Uuid::parse_str(&data.claims.sub)
            .map_err(|_| ApiError::Unauthorized("the token subject is not a UUID".into()))?;
        let roles = data
            .claims
            .roles
            .iter()
            .filter_map(|r| match r.as_str() {
                "admin" => Some(Role::Admin),
                "service" => Some(Role::Service),
                "operator" => Some(Role::Operator),
                _ => None,
            })
            .collect();
        let expires_at = i64::try_from(data.claims.exp)
            .ok()
            .and_then(|exp| time::OffsetDateTime::from_unix_timestamp(exp).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Ok(Principal {
            user_id: UserId::new(user_id),
            roles,
            expires_at,
        })
    }
}

/// Signs an HS256 token (the `user-settings token` command and tests).
///
/// # Errors
/// When signing fails.
pub fn mint_hs256(
    secret: &SecretString,
    sub: Uuid,
    roles: &[&str],
    ttl_seconds: u64,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> anyhow::Result<String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let claims = Claims {
        sub: sub.to_string(),
        exp: now + ttl_seconds,
        iat: Some(now),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        iss: issuer.map(str::to_owned),
        aud: audience.map(str::to_owned),
    };
    Ok(encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )?)
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub user_id: UserId,
    /// Extra roles the token grants.
    pub roles: Vec<Role>,
    /// When the token expires (its `exp`): what outlives a request, such as a change stream,
    /// ends then.
    pub expires_at: time::OffsetDateTime,
}

impl Principal {
    fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    fn actor(&self, role: Role, req: &HttpRequest) -> Actor {
        Actor {
            id: self.user_id,
            role,
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
            client_request_id: req
                .extensions()
                .get::<ClientRequestId>()
                .map(|r| r.0.clone()),
        }
    }
}

/// The token of an `Authorization` header value of the Bearer scheme.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    header_value
        .strip_prefix("Bearer ")
        .or_else(|| header_value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    // Already verified by the rate-limit middleware for this very request.
    if let Some(principal) = req.extensions().get::<Principal>() {
        tracing::Span::current().record("user_id", tracing::field::display(principal.user_id));
        return Ok(principal.clone());
    }
    let Some(auth) = req.app_data::<web::Data<Authenticator>>() else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "no authenticator configured"
        )));
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized(String::new()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or_else(|| ApiError::Unauthorized("use the Bearer scheme".into()))?;
    let principal = auth.verify(token)?;
    tracing::Span::current().record("user_id", tracing::field::display(principal.user_id));
    Ok(principal)
}

/// Any authenticated user, acting on their own data.
#[derive(Debug)]
pub struct User(pub Principal);

impl FromRequest for User {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = authenticate(req).map(User);
        ready(result)
    }
}

/// A caller with the `admin` role; carries the audit actor.
#[derive(Debug)]
pub struct Admin(pub Actor);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = authenticate(req).and_then(|p| {
            if p.has(Role::Admin) {
                Ok(Admin(p.actor(Role::Admin, req)))
            } else {
                Err(ApiError::Forbidden("admin"))
            }
        });
        ready(result)
    }
}

/// A caller with the `operator` role (sets the deployment's defaults); carries the audit
/// actor.
#[derive(Debug)]
pub struct Operator(pub Actor);

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = authenticate(req).and_then(|p| {
            if p.has(Role::Operator) {
                Ok(Operator(p.actor(Role::Operator, req)))
            } else {
                Err(ApiError::Forbidden("operator"))
            }
        });
        ready(result)
    }
}

/// A caller with the `service` role; carries the audit actor.
#[derive(Debug)]
pub struct Service(pub Actor);

impl FromRequest for Service {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = authenticate(req).and_then(|p| {
            if p.has(Role::Service) {
                Ok(Service(p.actor(Role::Service, req)))
            } else {
                Err(ApiError::Forbidden("service"))
            }
        });
        ready(result)
    }
}
