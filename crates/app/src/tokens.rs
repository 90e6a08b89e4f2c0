//! The `token` command: HS256 tokens for one subject, or one per line for a file of subjects
//! (the benchmark mints thousands in one process).

use std::io::{BufRead, Write};

use anyhow::Context as _;
use secrecy::SecretString;
use uuid::Uuid;

use crate::config::JwtConfig;

/// Signs tokens with the configured HS256 secret, issuer and audience.
pub struct Minter {
    secret: SecretString,
    roles: Vec<&'static str>,
    ttl_seconds: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Minter {
    /// # Errors
    /// When no HS256 secret is configured.
    pub fn new(
        jwt: &JwtConfig,
        roles: Vec<&'static str>,
        ttl_seconds: u64,
    ) -> anyhow::Result<Self> {
        let secret = jwt.secret.clone().ok_or_else(|| {
            anyhow::anyhow!("USER_SETTINGS_JWT_SECRET is required to mint a token")
        })?;
        Ok(Self {
            secret,
            roles,
            ttl_seconds,
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
        })
    }

    /// # Errors
    /// When signing fails.
    pub fn mint(&self, sub: Uuid) -> anyhow::Result<String> {
        adapter_http::auth::mint_hs256(
            &self.secret,
            sub,
            &self.roles,
            self.ttl_seconds,
            self.issuer.as_deref(),
            self.audience.as_deref(),
        )
    }

    /// Writes a token per subject of `subjects` (one UUID a line; blank lines skipped) to
    /// `out`, one a line in the same order; returns how many.
    ///
    /// # Errors
    /// Names the first line that is not a UUID; or reading, signing or writing failed.
    pub fn mint_lines(&self, subjects: impl BufRead, out: &mut impl Write) -> anyhow::Result<u64> {
        let mut count = 0;
        for (number, line) in subjects.lines().enumerate() {
            let line = line.context("reading the subjects")?;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let sub = Uuid::parse_str(line).with_context(|| {
                format!("subjects line {}: {line:.64} is not a UUID", number + 1)
            })?;
            writeln!(out, "{}", self.mint(sub)?).context("writing a token")?;
            count += 1;
        }
        out.flush().context("writing the tokens")?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use adapter_http::{AuthConfig, Authenticator, VerificationKey};
    use domain::audit::Role;

    use super::*;

    const SECRET: &str = "tokens-test-secret-of-at-least-32-bytes";

    fn minter() -> Minter {
        let jwt = JwtConfig {
            secret: Some(SecretString::from(SECRET)),
            public_key: None,
            issuer: None,
            audience: None,
        };
        Minter::new(&jwt, vec!["service"], 300).unwrap()
    }

    #[test]
    fn a_subjects_file_gives_one_accepted_token_per_subject_in_order() {
        let subjects = [
            "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b",
            "7b3c1c0e-5a7e-4d2b-9f1a-2c6d8e4f0a11",
        ];
        let input = format!("{}\n\n  {}  \n", subjects[0], subjects[1]);
        let mut out = Vec::new();
        let count = minter().mint_lines(input.as_bytes(), &mut out).unwrap();

        assert_eq!(count, 2);
        let authenticator = Authenticator::new(&AuthConfig {
            key: VerificationKey::Hs256(SecretString::from(SECRET)),
            issuer: None,
            audience: None,
        })
        .unwrap();
        let tokens: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(tokens.len(), 2);
        for (token, sub) in tokens.iter().zip(subjects) {
            let principal = authenticator.verify(token).unwrap();
            assert_eq!(principal.user_id.to_string(), sub);
            assert_eq!(principal.roles, vec![Role::Service]);
        }
    }

    #[test]
    fn a_line_that_is_no_uuid_is_named() {
        let input = "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b\nnot-a-uuid\n";
        let error = minter()
            .mint_lines(input.as_bytes(), &mut Vec::new())
            .unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
    }
}
