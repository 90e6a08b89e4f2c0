//! `TokenService`: a valid access token for integration services, refreshed when near
//! expiry, so no integration service ever handles a refresh token.
//!
//! - Valid means: valid for at least `skew` more (tokens without an expiry always are).
//! - Single-flight: concurrent callers for the same (user, provider) wait for one refresh
//!   and then read its result.
//! - The refreshed pair replaces the stored one only if the row's version is unchanged; if
//!   another instance refreshed first, its token is used. A refresh refused with
//!   `invalid_grant` after another instance rotated the refresh token is recognised the same
//!   way, so only a real refusal marks the connection `needs_reauth`.
//! - Every disclosure is audited (`token_read`) first; no audit record, no token.

use std::sync::Arc;

use secrecy::SecretString;
use time::OffsetDateTime;

use super::{
    catalogue::{AuthMethod, ProviderId},
    connection::ConnectionMetadata,
    credentials::{Credentials, Grant, TokenSet},
    errors::TokenError,
    ports::{Clock, ProviderError, ProviderGateway},
    single_flight::KeyedLocks,
    vault::{CredentialVault, StoredGrant, VaultWriteError},
};
use crate::{
    audit::{Actor, AuditAction, AuditEntry},
    ids::UserId,
    ports::{AuditLog, SecretCipher, SettingsRepository},
    settings::SettingKey,
};

/// An access token as handed to an integration service. `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct ProviderToken {
    /// The provider.
    pub provider: ProviderId,
    /// The token (a bearer token, a Last.fm session key, a ListenBrainz user token).
    pub access_token: SecretString,
    /// How to present it: `Bearer`, `lastfm_session` (the `sk` parameter) or `Token`
    /// (ListenBrainz' `Authorization: Token ...`).
    pub token_type: &'static str,
    /// When it expires (`None`: it does not).
    pub expires_at: Option<OffsetDateTime>,
    /// The remote account's name.
    pub username: Option<String>,
}

/// The token use case.
pub struct TokenService<R, C, A, G, K> {
    vault: Arc<CredentialVault<R, C>>,
    audit: A,
    gateway: G,
    clock: K,
    skew: time::Duration,
    pub(super) flights: KeyedLocks<(UserId, ProviderId)>,
}

impl<R, C, A, G, K> TokenService<R, C, A, G, K>
where
    R: SettingsRepository,
    C: SecretCipher,
    A: AuditLog,
    G: ProviderGateway,
    K: Clock,
{
    /// Builds the service; a token is refreshed when it expires within `skew`.
    pub fn new(
        vault: Arc<CredentialVault<R, C>>,
        audit: A,
        gateway: G,
        clock: K,
        skew: std::time::Duration,
    ) -> Self {
        Self {
            vault,
            audit,
            gateway,
            clock,
            skew: time::Duration::try_from(skew).unwrap_or(time::Duration::MINUTE * 5),
            flights: KeyedLocks::new(),
        }
    }

    /// A token for `user`'s connection to `provider`, valid for at least the skew, refreshed
    /// (and the new pair stored) when needed. `actor` is recorded in the audit log.
    ///
    /// # Errors
    /// [`TokenError::NotConnected`], [`TokenError::NoAccessToken`],
    /// [`TokenError::NeedsReauth`] (refresh refused: the connection is marked), a provider
    /// failure while refreshing, or a store/audit failure.
    pub async fn valid_access_token(
        &self,
        actor: &Actor,
        user: UserId,
        provider: ProviderId,
    ) -> Result<ProviderToken, TokenError> {
        let spec = provider.spec();
        if spec.auth == AuthMethod::StoredPassword {
            return Err(TokenError::NoAccessToken(provider));
        }
        let stored = self
            .vault
            .read(user, provider)
            .await?
            .ok_or(TokenError::NotConnected(provider))?;
        self.audit
            .record(AuditEntry {
                actor: actor.clone(),
                subject: user,
                action: AuditAction::TokenRead,
                key: SettingKey::parse(spec.storage_key).ok(),
            })
            .await?;
        if self.is_fresh(&stored.grant) {
            return token(provider, &stored.grant);
        }
        self.refresh(user, provider).await
    }

    /// Refreshes under the connection's single-flight lock.
    async fn refresh(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<ProviderToken, TokenError> {
        let _flight = self.flights.lock(&(user, provider)).await;
        // Whoever held the lock before may have refreshed already.
        let current = self.read(user, provider).await?;
        if self.is_fresh(&current.grant) {
            return token(provider, &current.grant);
        }
        let Credentials::OAuth(tokens) = &current.grant.credentials else {
            return token(provider, &current.grant);
        };
        let metadata = self.vault.read_metadata(user, provider).await?;
        if metadata.as_ref().is_some_and(|m| m.needs_reauth) {
            return Err(TokenError::NeedsReauth(provider));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            // Not refreshable (AniList): usable until it actually expires.
            if tokens.expires_at.is_some_and(|t| t > self.clock.now()) {
                return token(provider, &current.grant);
            }
            self.mark_needs_reauth(user, provider, metadata).await?;
            return Err(TokenError::NeedsReauth(provider));
        };
        match self.gateway.refresh(provider, refresh_token).await {
            Ok(fresh) => self.store_refreshed(user, provider, current, fresh).await,
            Err(ProviderError::InvalidGrant) => {
                if let Some(rotated) = self.refreshed_elsewhere(user, provider, &current).await? {
                    return token(provider, &rotated.grant);
                }
                self.mark_needs_reauth(user, provider, metadata).await?;
                Err(TokenError::NeedsReauth(provider))
            }
            Err(ProviderError::NotConfigured) => Err(TokenError::NotConfigured(provider)),
            Err(source) => Err(TokenError::Provider { provider, source }),
        }
    }

    /// Stores the refreshed pair if the row is unchanged; otherwise uses the winner's token.
    async fn store_refreshed(
        &self,
        user: UserId,
        provider: ProviderId,
        current: StoredGrant,
        fresh: TokenSet,
    ) -> Result<ProviderToken, TokenError> {
        let Credentials::OAuth(old) = current.grant.credentials else {
            return Err(TokenError::NotConnected(provider));
        };
        let grant = Grant {
            credentials: Credentials::OAuth(TokenSet {
                access_token: fresh.access_token,
                // A provider that does not rotate omits the refresh token: keep the old one.
                refresh_token: fresh.refresh_token.or(old.refresh_token),
                expires_at: fresh.expires_at,
                scope: fresh.scope.or(old.scope),
            }),
            account: current.grant.account,
        };
        match self
            .vault
            .replace_grant(user, provider, &grant, current.version)
            .await
        {
            Ok(_) => {}
            Err(VaultWriteError::VersionConflict) => {
                let winner = self.read(user, provider).await?;
                return token(provider, &winner.grant);
            }
            Err(e) => return Err(e.into()),
        }
        let now = self.clock.now();
        let mut metadata = self
            .vault
            .read_metadata(user, provider)
            .await?
            .unwrap_or_else(|| ConnectionMetadata::connected(provider, &grant, now));
        metadata.expires_at = grant.credentials.expires_at();
        metadata.refreshed_at = Some(now);
        metadata.needs_reauth = false;
        self.vault.write_metadata(user, provider, &metadata).await?;
        token(provider, &grant)
    }

    /// The stored credentials, if another writer replaced them since `seen` with a token that
    /// is fresh.
    async fn refreshed_elsewhere(
        &self,
        user: UserId,
        provider: ProviderId,
        seen: &StoredGrant,
    ) -> Result<Option<StoredGrant>, TokenError> {
        Ok(self
            .vault
            .read(user, provider)
            .await?
            .filter(|now| now.version != seen.version && self.is_fresh(&now.grant)))
    }

    async fn mark_needs_reauth(
        &self,
        user: UserId,
        provider: ProviderId,
        metadata: Option<ConnectionMetadata>,
    ) -> Result<(), TokenError> {
        let mut metadata = match metadata {
            Some(m) => m,
            None => {
                let current = self.read(user, provider).await?;
                ConnectionMetadata::connected(provider, &current.grant, self.clock.now())
            }
        };
        metadata.needs_reauth = true;
        self.vault.write_metadata(user, provider, &metadata).await?;
        Ok(())
    }

    async fn read(&self, user: UserId, provider: ProviderId) -> Result<StoredGrant, TokenError> {
        self.vault
            .read(user, provider)
            .await?
            .ok_or(TokenError::NotConnected(provider))
    }

    fn is_fresh(&self, grant: &Grant) -> bool {
        match grant.credentials.expires_at() {
            None => true,
            Some(expires_at) => expires_at - self.clock.now() > self.skew,
        }
    }
}

fn token(provider: ProviderId, grant: &Grant) -> Result<ProviderToken, TokenError> {
    let (access_token, token_type) = grant
        .credentials
        .access_token()
        .ok_or(TokenError::NoAccessToken(provider))?;
    Ok(ProviderToken {
        provider,
        access_token: access_token.clone(),
        token_type,
        expires_at: grant.credentials.expires_at(),
        username: grant
            .account
            .username
            .clone()
            .or_else(|| grant.account.slug.clone()),
    })
}
