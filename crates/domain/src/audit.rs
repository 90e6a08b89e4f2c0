//! Audit records for privileged reads: who read what of whom, and in which request.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ids::UserId, settings::SettingKey};

/// The role a caller acts in, from its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An end user acting on their own data.
    User,
    /// Support staff: read-only access to any user.
    Admin,
    /// An internal integration service: may read plaintext secrets.
    Service,
}

impl Role {
    /// The name stored in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

/// Who performs an operation, and in which request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The caller's own id (token `sub`).
    pub id: UserId,
    /// The role the caller acts in.
    pub role: Role,
    /// The request id, when the call came over HTTP.
    pub request_id: Option<String>,
}

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// An admin read another user's settings or preferences.
    AdminRead,
    /// Plaintext of a secret left the service.
    SecretRead,
    /// An integration access token left the service.
    TokenRead,
}

impl AuditAction {
    /// The name stored in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AdminRead => "admin_read",
            AuditAction::SecretRead => "secret_read",
            AuditAction::TokenRead => "token_read",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One append-only audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who acted.
    pub actor: Actor,
    /// Whose data was touched.
    pub subject: UserId,
    /// What was done.
    pub action: AuditAction,
    /// Which setting, when one.
    pub key: Option<SettingKey>,
}
