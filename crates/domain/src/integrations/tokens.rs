//! `TokenService`: a valid access token for integration services, refreshed when near
//! expiry, so no integration service ever handles a refresh token.
//!
//! - Valid means: valid for at least `skew` more (tokens without an expiry always are).
//! - Single-flight: concurrent callers for the same (user, provider) wait for one refresh
//!   and then read its result; if it failed, the callers that queued behind it get the same
//!   failure instead of calling the provider again each in turn. The wait is bounded (see
//!   [`TokenService::with_lock_wait`]).
//! - Everything read to decide a refresh (the credentials under the lock, the
//!   `needs_reauth` flag, a rotation by another instance) is read from the store itself,
//!   never a cache: a stale refresh token must not be taken for a revoked one.
//! - The refreshed pair replaces the stored one only if the row's version is unchanged; if
//!   another instance refreshed first, its token is used. A refresh refused with
//!   `invalid_grant` after another instance rotated the refresh token is recognised the same
//!   way, so only a real refusal marks the connection `needs_reauth`. Once the provider has
//!   rotated the pair, storing it is retried on store failures: the old refresh token is
//!   spent.
//! - Metadata (`needs_reauth`, expiry) is written only while the credentials it describes
//!   are still stored, so a late writer never marks a new connection or revives a removed
//!   one.
//! - Every disclosure is audited (`token_read`) first; no audit record, no token.

use std::sync::Arc;

use futures_util::future::{Either, select};
use secrecy::SecretString;
use time::OffsetDateTime;

use super::{
    catalogue::{AuthMethod, ProviderId},
    connection::ConnectionMetadata,
    credentials::{Credentials, Grant, TokenSet},
    errors::TokenError,
    ports::{Clock, ProviderError, ProviderGateway},
    single_flight::{Flight, KeyedLocks},
    vault::{CredentialVault, StoredGrant, VaultWriteError},
};
use crate::{
    audit::{Actor, AuditAction, AuditEntry},
    ids::UserId,
    ports::{AuditLog, SecretCipher, SettingsRepository},
    settings::SettingKey,
};

/// How often a rotated pair is offered to the store before it is given up. Each attempt is
/// bounded by the store's own timeouts.
const STORE_ATTEMPTS: usize = 3;

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

/// A failed refresh as the callers queued behind it receive it.
#[derive(Clone)]
pub(super) struct SharedFailure(Arc<TokenError>);

/// The token use case.
pub struct TokenService<R, C, A, G, K> {
    vault: Arc<CredentialVault<R, C>>,
    audit: A,
    gateway: G,
    clock: K,
    skew: time::Duration,
    lock_wait: Option<std::time::Duration>,
    pub(super) flights: KeyedLocks<(UserId, ProviderId), SharedFailure>,
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
            lock_wait: None,
            flights: KeyedLocks::new(),
        }
    }

    /// Bounds how long a caller waits for another caller's refresh of the same connection
    /// (with the clock's timer; see [`Clock::sleep`]); past it the caller gets a provider
    /// timeout. Without a bound the wait is still limited by the refresh it waits for, whose
    /// provider call and store operations are each bounded.
    #[must_use]
    pub fn with_lock_wait(mut self, bound: std::time::Duration) -> Self {
        self.lock_wait = Some(bound);
        self
    }

    /// A token for `user`'s connection to `provider`, valid for at least the skew, refreshed
    /// (and the new pair stored) when needed. `actor` is recorded in the audit log.
    ///
    /// # Errors
    /// [`TokenError::NotConnected`], [`TokenError::NoAccessToken`],
    /// [`TokenError::NeedsReauth`] (refresh refused: the connection is marked), a provider
    /// failure while refreshing (also when another caller's refresh, waited for, failed so),
    /// or a store/audit failure.
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

    /// Refreshes under the connection's single-flight lock, or takes the failure of the
    /// refresh this caller waited for.
    async fn refresh(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<ProviderToken, TokenError> {
        let flight = self.wait_for_flight(user, provider).await?;
        if let Some(SharedFailure(failure)) = flight.failed_while_waiting() {
            return Err(failure.duplicate());
        }
        let result = self.refresh_locked(user, provider).await;
        flight.finish(
            result
                .as_ref()
                .err()
                .map(|e| SharedFailure(Arc::new(e.duplicate()))),
        );
        result
    }

    /// The connection's lock, within the configured wait.
    async fn wait_for_flight(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Flight<SharedFailure>, TokenError> {
        let key = (user, provider);
        let Some(bound) = self.lock_wait else {
            return Ok(self.flights.lock(&key).await);
        };
        let waiting = Box::pin(self.flights.lock(&key));
        match select(waiting, self.clock.sleep(bound)).await {
            Either::Left((flight, _)) => Ok(flight),
            Either::Right(_) => Err(TokenError::Provider {
                provider,
                source: ProviderError::Timeout,
            }),
        }
    }

    /// The refresh proper; the caller holds the connection's lock.
    async fn refresh_locked(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<ProviderToken, TokenError> {
        // Whoever held the lock before (here or on another instance) may have refreshed.
        let current = self.read_current(user, provider).await?;
        if self.is_fresh(&current.grant) {
            return token(provider, &current.grant);
        }
        let Credentials::OAuth(tokens) = &current.grant.credentials else {
            return token(provider, &current.grant);
        };
        let metadata = self.vault.current_metadata(user, provider).await?;
        if metadata.is_some_and(|m| m.needs_reauth) {
            return Err(TokenError::NeedsReauth(provider));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            // Not refreshable (AniList): usable until it actually expires.
            if tokens.expires_at.is_some_and(|t| t > self.clock.now()) {
                return token(provider, &current.grant);
            }
            self.mark_needs_reauth(user, provider, &current).await?;
            return Err(TokenError::NeedsReauth(provider));
        };
        match self.gateway.refresh(provider, refresh_token).await {
            Ok(fresh) => self.store_refreshed(user, provider, current, fresh).await,
            Err(ProviderError::InvalidGrant) => {
                if let Some(rotated) = self.refreshed_elsewhere(user, provider, &current).await? {
                    return token(provider, &rotated.grant);
                }
                self.mark_needs_reauth(user, provider, &current).await?;
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
        let version = match self
            .replace_grant(user, provider, &grant, current.version)
            .await
        {
            Ok(version) => version,
            Err(VaultWriteError::VersionConflict) => {
                // Another writer won (or an earlier attempt of ours landed unacknowledged).
                let winner = self.read_current(user, provider).await?;
                return token(provider, &winner.grant);
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        self.vault
            .update_metadata(user, provider, version, |stored| {
                let mut metadata =
                    stored.unwrap_or_else(|| ConnectionMetadata::connected(provider, &grant, now));
                metadata.expires_at = grant.credentials.expires_at();
                metadata.refreshed_at = Some(now);
                metadata.needs_reauth = false;
                metadata
            })
            .await?;
        token(provider, &grant)
    }

    /// Replaces the stored pair, retrying store failures a few times: the provider has
    /// rotated the refresh token, so losing the new pair would cost the connection.
    async fn replace_grant(
        &self,
        user: UserId,
        provider: ProviderId,
        grant: &Grant,
        version: i64,
    ) -> Result<i64, VaultWriteError> {
        let mut attempt = 1;
        loop {
            match self
                .vault
                .replace_grant(user, provider, grant, version)
                .await
            {
                Err(VaultWriteError::Repository(_)) if attempt < STORE_ATTEMPTS => attempt += 1,
                result => return result,
            }
        }
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
            .read_current(user, provider)
            .await?
            .filter(|now| now.version != seen.version && self.is_fresh(&now.grant)))
    }

    /// Marks the connection whose credentials are `current` as needing re-authorization;
    /// nothing is written if they were replaced or removed meanwhile.
    async fn mark_needs_reauth(
        &self,
        user: UserId,
        provider: ProviderId,
        current: &StoredGrant,
    ) -> Result<(), TokenError> {
        let now = self.clock.now();
        self.vault
            .update_metadata(user, provider, current.version, |stored| {
                let mut metadata = stored.unwrap_or_else(|| {
                    ConnectionMetadata::connected(provider, &current.grant, now)
                });
                metadata.needs_reauth = true;
                metadata
            })
            .await?;
        Ok(())
    }

    async fn read_current(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<StoredGrant, TokenError> {
        self.vault
            .read_current(user, provider)
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
