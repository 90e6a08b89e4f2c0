//! Token verification: HS256 by default, RS256 and EdDSA with a PEM public key, required
//! claims, `nbf`, issuer and audience, the secret's minimum length, algorithm confusion, and
//! the memo of verified tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use adapter_http::{
    ApiError, AuthConfig, Authenticator, VerificationKey, VerifiedTokens, auth::Principal,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use secrecy::SecretString;
use serde_json::{Value, json};

const RSA_PRIVATE: &str = include_str!("fixtures/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("fixtures/rsa-public.pem");
const ED_PRIVATE: &str = include_str!("fixtures/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("fixtures/ed25519-public.pem");
const SUB: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
/// 32 bytes, the shortest secret accepted.
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn claims(extra: Value) -> Value {
    let mut claims = json!({"sub": SUB, "exp": 4_000_000_000u64});
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    claims
}

fn authenticator(
    key: VerificationKey,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Authenticator {
    Authenticator::new(&AuthConfig {
        key,
        issuer: issuer.map(str::to_owned),
        audience: audience.map(str::to_owned),
    })
    .unwrap()
}

fn hs256(secret: &str) -> Authenticator {
    authenticator(
        VerificationKey::Hs256(SecretString::from(secret)),
        None,
        None,
    )
}

fn sign_hs256(secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn rejected(result: Result<Principal, ApiError>) -> String {
    match result {
        Err(ApiError::Unauthorized(reason)) => reason,
        other => panic!("expected 401, got {other:?}"),
    }
}

#[test]
fn hs256_token_names_the_user_and_roles() {
    let token = sign_hs256(SECRET, &claims(json!({"roles": ["admin", "unknown"]})));
    let principal = hs256(SECRET).verify(&token).unwrap();
    assert_eq!(principal.user_id.to_string(), SUB);
    assert_eq!(principal.roles, vec![domain::audit::Role::Admin]);
}

#[test]
fn rs256_token_verifies_with_the_public_key() {
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let auth = authenticator(VerificationKey::PublicKeyPem(RSA_PUBLIC.into()), None, None);
    assert_eq!(auth.verify(&token).unwrap().user_id.to_string(), SUB);
}

#[test]
fn eddsa_token_verifies_with_the_public_key() {
    let token = encode(
        &Header::new(Algorithm::EdDSA),
        &claims(json!({})),
        &EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let auth = authenticator(VerificationKey::PublicKeyPem(ED_PUBLIC.into()), None, None);
    assert_eq!(auth.verify(&token).unwrap().user_id.to_string(), SUB);
}

#[test]
fn hs256_token_signed_with_the_public_key_is_rejected() {
    // Algorithm confusion: an attacker signs HS256 with the (public) RSA key as the secret.
    let token = sign_hs256(RSA_PUBLIC, &claims(json!({})));
    let auth = authenticator(VerificationKey::PublicKeyPem(RSA_PUBLIC.into()), None, None);
    rejected(auth.verify(&token));
}

#[test]
fn token_without_exp_is_rejected() {
    let token = sign_hs256(SECRET, &json!({"sub": SUB}));
    rejected(hs256(SECRET).verify(&token));
}

#[test]
fn expired_token_is_rejected() {
    let token = sign_hs256(SECRET, &claims(json!({"exp": 1_000_000_000u64})));
    assert!(rejected(hs256(SECRET).verify(&token)).contains("expired"));
}

#[test]
fn issuer_and_audience_are_enforced_when_configured() {
    let auth = authenticator(
        VerificationKey::Hs256(SecretString::from(SECRET)),
        Some("https://auth.example"),
        Some("user-settings"),
    );
    let good = sign_hs256(
        SECRET,
        &claims(json!({"iss": "https://auth.example", "aud": "user-settings"})),
    );
    assert!(auth.verify(&good).is_ok());
    let wrong_iss = sign_hs256(
        SECRET,
        &claims(json!({"iss": "https://evil.example", "aud": "user-settings"})),
    );
    assert!(rejected(auth.verify(&wrong_iss)).contains("issuer"));
    let no_aud = sign_hs256(SECRET, &claims(json!({"iss": "https://auth.example"})));
    rejected(auth.verify(&no_aud));
}

#[test]
fn audience_may_be_an_array() {
    let auth = authenticator(
        VerificationKey::Hs256(SecretString::from(SECRET)),
        None,
        Some("user-settings"),
    );
    let token = sign_hs256(
        SECRET,
        &claims(json!({"aud": ["other-api", "user-settings"]})),
    );
    assert!(auth.verify(&token).is_ok());
    let foreign = sign_hs256(SECRET, &claims(json!({"aud": ["other-api"]})));
    rejected(auth.verify(&foreign));
}

#[test]
fn audience_in_token_is_ignored_when_not_configured() {
    let token = sign_hs256(SECRET, &claims(json!({"aud": "anything"})));
    assert!(hs256(SECRET).verify(&token).is_ok());
}

#[test]
fn garbage_is_rejected_without_echoing_it() {
    let reason = rejected(hs256(SECRET).verify("not.a.jwt-secret-looking-thing"));
    assert!(!reason.contains("secret-looking"));
}

#[test]
fn a_pem_that_is_not_a_public_key_is_a_configuration_error() {
    let result = Authenticator::new(&AuthConfig {
        key: VerificationKey::PublicKeyPem("-----BEGIN NOTHING-----".into()),
        issuer: None,
        audience: None,
    });
    assert!(result.is_err());
}

fn now() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

#[test]
fn a_token_not_valid_yet_is_rejected() {
    let token = sign_hs256(SECRET, &claims(json!({"nbf": now() + 600})));
    assert!(rejected(hs256(SECRET).verify(&token)).contains("not valid yet"));
}

#[test]
fn nbf_has_the_same_leeway_as_exp() {
    let token = sign_hs256(SECRET, &claims(json!({"nbf": now() + 10})));
    assert!(hs256(SECRET).verify(&token).is_ok());
}

#[test]
fn an_hs256_secret_shorter_than_32_bytes_is_refused_without_echoing_it() {
    let short = "0123456789abcdef0123456789abcde";
    let result = Authenticator::new(&AuthConfig {
        key: VerificationKey::Hs256(SecretString::from(short)),
        issuer: None,
        audience: None,
    });
    let Err(error) = result else {
        panic!("a 31-byte secret was accepted");
    };
    let message = error.to_string();
    assert!(message.contains("at least 32 bytes"), "{message}");
    assert!(!message.contains(short), "{message}");
}

/// A memo of verified tokens that shows what it holds.
#[derive(Default)]
struct Memo(Mutex<HashMap<String, Principal>>);

impl VerifiedTokens for Memo {
    fn recall(&self, token: &str) -> Option<Principal> {
        self.0.lock().unwrap().get(token).cloned()
    }

    fn remember(&self, token: &str, principal: Principal) {
        self.0.lock().unwrap().insert(token.to_owned(), principal);
    }
}

fn remembering(memo: &Arc<Memo>) -> Authenticator {
    hs256(SECRET).remembering(Arc::clone(memo) as Arc<dyn VerifiedTokens>)
}

fn principal_until(expires_at: time::OffsetDateTime) -> Principal {
    Principal {
        user_id: domain::UserId::new(uuid::Uuid::parse_str(SUB).unwrap()),
        roles: Vec::new(),
        expires_at,
    }
}

#[test]
fn only_tokens_that_verified_are_remembered() {
    let memo = Arc::new(Memo::default());
    let auth = remembering(&memo);
    let token = sign_hs256(SECRET, &claims(json!({"roles": ["service"]})));
    assert!(
        auth.verify(&sign_hs256(
            "fedcba9876543210fedcba9876543210",
            &claims(json!({}))
        ))
        .is_err()
    );
    assert!(memo.0.lock().unwrap().is_empty());

    let first = auth.verify(&token).unwrap();
    assert_eq!(memo.0.lock().unwrap().get(&token), Some(&first));
    assert_eq!(auth.verify(&token).unwrap(), first);
}

#[test]
fn a_remembered_token_is_used_until_its_expiry_and_checked_in_full_from_then_on() {
    let memo = Arc::new(Memo::default());
    let auth = remembering(&memo);
    let now = time::OffsetDateTime::now_utc();
    // Seeded under a string no check would accept, to see which path answers.
    let remembered = principal_until(now + time::Duration::minutes(5));
    memo.remember("remembered", remembered.clone());
    assert_eq!(auth.verify("remembered").unwrap(), remembered);

    memo.remember("expired", principal_until(now - time::Duration::seconds(1)));
    assert_eq!(rejected(auth.verify("expired")), "the token is malformed");
}

#[test]
fn remembering_a_token_accepts_no_other_token() {
    let memo = Arc::new(Memo::default());
    let auth = remembering(&memo);
    let token = sign_hs256(SECRET, &claims(json!({})));
    auth.verify(&token).unwrap();

    // The same header and claims under another signature, and a token cut short.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{flipped}{}", &signature[1..]);
    assert_eq!(
        rejected(auth.verify(&forged)),
        "the token signature is invalid"
    );
    assert!(matches!(
        auth.verify(&token[..token.len() - 1]),
        Err(ApiError::Unauthorized(_))
    ));
    // The remembered token itself is still accepted.
    auth.verify(&token).unwrap();
}

#[test]
fn a_token_just_past_its_expiry_is_accepted_within_the_leeway_every_time_and_not_beyond() {
    let memo = Arc::new(Memo::default());
    let auth = remembering(&memo);
    let now = time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .unsigned_abs();
    // Expired a second ago, within the clock-skew leeway: accepted by the full check each
    // time (a remembered entry is not used from the token's `exp` on).
    let token = sign_hs256(SECRET, &json!({"sub": SUB, "exp": now - 1}));
    let principal = auth.verify(&token).unwrap();
    assert!(principal.expires_at < time::OffsetDateTime::now_utc());
    assert_eq!(auth.verify(&token).unwrap(), principal);
    // Past the leeway the full check refuses it.
    let stale = sign_hs256(SECRET, &json!({"sub": SUB, "exp": now - 120}));
    assert_eq!(rejected(auth.verify(&stale)), "the token has expired");
}
