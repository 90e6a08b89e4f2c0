//! Notification preferences of one channel: `{enabled, frequency, types, device_tokens}`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::Frequency;
use crate::error::{FieldError, ValidationErrors};

/// Most notification types one channel may list.
pub const MAX_TYPES: usize = 64;
/// Most push device tokens one user may register.
pub const MAX_DEVICE_TOKENS: usize = 20;
/// Longest push device token, in bytes.
pub const MAX_DEVICE_TOKEN_LEN: usize = 4096;

/// The notification channels of the preferences row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// E-mail (`email_notifications`).
    Email,
    /// Mobile push (`push_notifications`); the only channel with device tokens.
    Push,
    /// Periodic digest (`digest_notifications`).
    Digest,
}

impl Channel {
    /// The field name in the preferences document.
    pub fn field(self) -> &'static str {
        match self {
            Channel::Email => "email_notifications",
            Channel::Push => "push_notifications",
            Channel::Digest => "digest_notifications",
        }
    }
}

/// One channel's notification settings. Fields are private: construct with [`Self::parse`]
/// or [`Self::default_for`], so device tokens can only exist on the push channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotificationPrefs {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency: Option<Frequency>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    types: BTreeMap<String, bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    device_tokens: Vec<String>,
}

impl NotificationPrefs {
    /// The default of a channel: e-mail on and instant, push off, digest on and weekly.
    pub fn default_for(channel: Channel) -> Self {
        let (enabled, frequency) = match channel {
            Channel::Email => (true, Some(Frequency::Instant)),
            Channel::Push => (false, None),
            Channel::Digest => (true, Some(Frequency::Weekly)),
        };
        Self {
            enabled,
            frequency,
            types: BTreeMap::new(),
            device_tokens: Vec::new(),
        }
    }

    /// Validates a channel object. Omitted or `null` members take the channel's default.
    ///
    /// # Errors
    /// Every problem found, with fields under the channel's name.
    pub fn parse(value: &Value, channel: Channel) -> Result<Self, ValidationErrors> {
        let field = channel.field();
        let Value::Object(map) = value else {
            return Err(ValidationErrors::single(FieldError::new(
                field,
                "invalid_type",
                "must be an object with enabled, frequency and types",
            )));
        };
        let mut errors = ValidationErrors::new();
        let mut prefs = Self::default_for(channel);
        for (name, member) in map {
            let path = format!("{field}.{name}");
            match (name.as_str(), member) {
                (_, Value::Null) => {}
                ("enabled", Value::Bool(b)) => prefs.enabled = *b,
                ("frequency", Value::String(s)) => {
                    prefs.frequency = errors.collect(Frequency::parse(s, &path));
                }
                ("types", Value::Object(types)) => {
                    prefs.types = errors
                        .collect(parse_types(types, &path))
                        .unwrap_or_default();
                }
                ("device_tokens", Value::Array(tokens)) if channel == Channel::Push => {
                    prefs.device_tokens = errors
                        .collect(parse_tokens(tokens, &path))
                        .unwrap_or_default();
                }
                ("device_tokens", _) if channel != Channel::Push => errors.push(FieldError::new(
                    path,
                    "not_allowed",
                    "only push notifications carry device tokens",
                )),
                ("enabled" | "frequency" | "types" | "device_tokens", _) => {
                    errors.push(FieldError::new(path, "invalid_type", expected_type(name)));
                }
                _ => errors.push(FieldError::new(path, "unknown_field", "unknown field")),
            }
        }
        errors.into_result(prefs)
    }

    /// Whether the channel is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// How often to send, when set.
    pub fn frequency(&self) -> Option<Frequency> {
        self.frequency
    }

    /// Per-type switches (`new_episodes: true`, ...).
    pub fn types(&self) -> &BTreeMap<String, bool> {
        &self.types
    }

    /// Push device tokens (empty on other channels).
    pub fn device_tokens(&self) -> &[String] {
        &self.device_tokens
    }

    /// The channel object as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

fn expected_type(name: &str) -> &'static str {
    match name {
        "enabled" => "must be true or false",
        "frequency" => "must be a string: instant, daily or weekly",
        "types" => "must be an object of type names to true/false",
        _ => "must be an array of strings",
    }
}

fn parse_types(
    types: &Map<String, Value>,
    path: &str,
) -> Result<BTreeMap<String, bool>, FieldError> {
    if types.len() > MAX_TYPES {
        return Err(FieldError::new(
            path,
            "too_many",
            format!("at most {MAX_TYPES} notification types are allowed"),
        ));
    }
    let mut parsed = BTreeMap::new();
    for (name, on) in types {
        let name_ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
        if !name_ok {
            return Err(FieldError::new(
                format!("{path}.{name}"),
                "invalid_name",
                "type names are 1-64 characters of a-z, 0-9 and '_'",
            ));
        }
        let Value::Bool(on) = on else {
            return Err(FieldError::new(
                format!("{path}.{name}"),
                "invalid_type",
                "must be true or false",
            ));
        };
        parsed.insert(name.clone(), *on);
    }
    Ok(parsed)
}

fn parse_tokens(tokens: &[Value], path: &str) -> Result<Vec<String>, FieldError> {
    if tokens.len() > MAX_DEVICE_TOKENS {
        return Err(FieldError::new(
            path,
            "too_many",
            format!("at most {MAX_DEVICE_TOKENS} device tokens are allowed"),
        ));
    }
    let mut parsed: Vec<String> = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Value::String(s)
                if !s.is_empty() && s.len() <= MAX_DEVICE_TOKEN_LEN && !s.contains('\0') =>
            {
                if !parsed.contains(s) {
                    parsed.push(s.clone());
                }
            }
            _ => {
                return Err(FieldError::new(
                    format!("{path}[{i}]"),
                    "invalid_device_token",
                    format!("must be a non-empty string of at most {MAX_DEVICE_TOKEN_LEN} bytes"),
                ));
            }
        }
    }
    Ok(parsed)
}
