//! The deployment layer of settings: values an operator sets for every user, each optionally
//! enforced, and the effective value of one key across the layers.
//!
//! The layer is small (one row per key an operator chose) and read on every effective read
//! and every user write of a key (the enforcement check), so adapters load it whole and
//! instances cache it whole, invalidated through the change feed.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    layers::{DeploymentEntry, Layer, Layers},
    preferences::DeploymentPreferences,
    registry::KeyRegistry,
    settings::{Category, DataType, Setting, SettingKey, StoredValue},
};

/// One value of the deployment layer. Never a secret.
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentSetting {
    /// Name.
    pub key: SettingKey,
    /// The value every user inherits.
    pub value: Value,
    /// Declared type.
    pub data_type: DataType,
    /// Category, when it has one.
    pub category: Option<Category>,
    /// Whether it wins over the user and device layers.
    pub enforced: bool,
    /// Version (from the settings' version sequence, so it never repeats).
    pub version: i64,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// The whole deployment layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentDefaults {
    /// The settings the deployment sets, by key.
    pub settings: BTreeMap<String, DeploymentSetting>,
    /// The preference fields the deployment sets and enforces.
    pub preferences: DeploymentPreferences,
    /// The version of the preferences part (0: never written); changes with every write.
    pub preferences_version: i64,
}

impl DeploymentDefaults {
    /// The deployment's value of `key`, if it sets one.
    pub fn setting(&self, key: &str) -> Option<&DeploymentSetting> {
        self.settings.get(key)
    }

    /// Whether the deployment enforces `key` (user and device writes are refused).
    pub fn enforces(&self, key: &str) -> bool {
        self.setting(key).is_some_and(|s| s.enforced)
    }
}

/// The value of one key in effect for a user, and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveSetting {
    /// Name.
    pub key: SettingKey,
    /// The value; `null` when it is a secret (withheld).
    pub value: Value,
    /// True when the value is a secret and was withheld.
    pub redacted: bool,
    /// The layer the value comes from.
    pub source: Layer,
    /// Declared type.
    pub data_type: DataType,
    /// Category, when it has one.
    pub category: Option<Category>,
    /// The version of the value in its layer (0 for a builtin default).
    pub version: i64,
    /// Whether the deployment enforces this key.
    pub enforced: bool,
}

/// What one layer says of a key: everything the effective view shows but the source.
#[derive(Clone, Debug)]
struct LayerValue {
    value: Value,
    redacted: bool,
    data_type: DataType,
    category: Option<Category>,
    version: i64,
}

impl LayerValue {
    /// A stored setting of the user or device layer; a secret is withheld.
    fn of(setting: Setting) -> Self {
        let (value, redacted) = match setting.value {
            StoredValue::Plain(value) => (value, false),
            StoredValue::Sealed(_) => (Value::Null, true),
        };
        Self {
            value,
            redacted,
            data_type: setting.data_type,
            category: setting.category,
            version: setting.version,
        }
    }
}

/// Every key some layer has a value of, resolved: the registry's exact keys with a default,
/// the deployment's keys, the user's and the device's settings.
pub fn effective_settings(
    registry: &KeyRegistry,
    defaults: &DeploymentDefaults,
    user: Vec<Setting>,
    device: Vec<Setting>,
) -> BTreeMap<String, EffectiveSetting> {
    let mut layers: BTreeMap<String, (SettingKey, Option<Setting>, Option<Setting>)> =
        BTreeMap::new();
    let builtin_keys = registry
        .entries()
        .filter(|e| e.spec().default.is_some())
        .filter_map(|e| SettingKey::parse(&e.spec().pattern).ok());
    let deployment_keys = defaults.settings.values().map(|d| d.key.clone());
    for key in builtin_keys.chain(deployment_keys) {
        layers
            .entry(key.as_str().to_owned())
            .or_insert((key, None, None));
    }
    for setting in user {
        let slot = layers
            .entry(setting.key.as_str().to_owned())
            .or_insert_with(|| (setting.key.clone(), None, None));
        slot.1 = Some(setting);
    }
    for setting in device {
        let slot = layers
            .entry(setting.key.as_str().to_owned())
            .or_insert_with(|| (setting.key.clone(), None, None));
        slot.2 = Some(setting);
    }
    layers
        .into_iter()
        .filter_map(|(name, (key, user, device))| {
            effective_setting(&key, registry, defaults, user, device).map(|e| (name, e))
        })
        .collect()
}

/// Resolves `key` across the builtin default (the registry's), the deployment's entry, the
/// user's stored setting and the device's. `None` when no layer has a value.
pub fn effective_setting(
    key: &SettingKey,
    registry: &KeyRegistry,
    defaults: &DeploymentDefaults,
    user: Option<Setting>,
    device: Option<Setting>,
) -> Option<EffectiveSetting> {
    let builtin = registry.lookup(key).and_then(|entry| {
        entry.spec().default.clone().map(|value| LayerValue {
            value,
            redacted: false,
            data_type: entry.data_type(),
            category: entry.category(),
            version: 0,
        })
    });
    let deployment = defaults.setting(key.as_str()).map(|d| DeploymentEntry {
        value: Some(LayerValue {
            value: d.value.clone(),
            redacted: false,
            data_type: d.data_type,
            category: d.category.clone(),
            version: d.version,
        }),
        enforced: d.enforced,
    });
    let resolved = Layers {
        builtin,
        deployment,
        user: user.map(LayerValue::of),
        device: device.map(LayerValue::of),
    }
    .resolve()?;
    let LayerValue {
        value,
        redacted,
        data_type,
        category,
        version,
    } = resolved.value;
    Some(EffectiveSetting {
        key: key.clone(),
        value,
        redacted,
        source: resolved.source,
        data_type,
        category,
        version,
        enforced: resolved.enforced,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{UserId, secrets::Envelope};

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn key(raw: &str) -> SettingKey {
        SettingKey::parse(raw).unwrap()
    }

    fn deployment(raw: &str, value: Value, enforced: bool) -> DeploymentDefaults {
        let setting = DeploymentSetting {
            key: key(raw),
            value,
            data_type: DataType::Json,
            category: None,
            enforced,
            version: 7,
            updated_at: NOW,
        };
        DeploymentDefaults {
            settings: BTreeMap::from([(raw.to_owned(), setting)]),
            ..DeploymentDefaults::default()
        }
    }

    fn users(raw: &str, value: StoredValue) -> Setting {
        Setting {
            user_id: UserId::new(uuid::Uuid::nil()),
            key: key(raw),
            value,
            description: None,
            category: None,
            data_type: DataType::Json,
            version: 3,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn resolve(defaults: &DeploymentDefaults, user: Option<Setting>) -> Option<EffectiveSetting> {
        effective_setting(&key("ui.a.b"), &KeyRegistry::empty(), defaults, user, None)
    }

    #[test]
    fn a_key_no_layer_has_has_no_effective_value() {
        assert_eq!(resolve(&DeploymentDefaults::default(), None), None);
    }

    #[test]
    fn the_deployment_value_reaches_a_user_who_never_chose() {
        let effective = resolve(&deployment("ui.a.b", json!(1), false), None).unwrap();
        assert_eq!(
            (effective.value, effective.source, effective.version),
            (json!(1), Layer::Deployment, 7)
        );
    }

    #[test]
    fn a_user_who_chose_keeps_their_value_unless_it_is_enforced() {
        let mine = || Some(users("ui.a.b", json!(2).into()));
        let chosen = resolve(&deployment("ui.a.b", json!(1), false), mine()).unwrap();
        assert_eq!((chosen.value, chosen.source), (json!(2), Layer::User));
        let enforced = resolve(&deployment("ui.a.b", json!(1), true), mine()).unwrap();
        assert_eq!(
            (enforced.value, enforced.source, enforced.enforced),
            (json!(1), Layer::Deployment, true)
        );
    }

    #[test]
    fn a_secret_of_the_user_layer_is_withheld() {
        let envelope = Envelope {
            v: 1,
            alg: "A256GCM-HKDF-SHA256".into(),
            kid: "k".into(),
            salt: "s".into(),
            nonce: "n".into(),
            ciphertext: "c".into(),
        };
        let effective = resolve(
            &DeploymentDefaults::default(),
            Some(users("ui.a.b", envelope.into())),
        )
        .unwrap();
        assert_eq!(
            (effective.value, effective.redacted, effective.source),
            (Value::Null, true, Layer::User)
        );
    }

    #[test]
    fn a_device_value_shadows_the_users_on_that_device_only() {
        let user = || Some(users("ui.a.b", json!("mine").into()));
        let device = Some(users("ui.a.b", json!("tv").into()));
        let defaults = DeploymentDefaults::default();
        let on_tv = effective_setting(
            &key("ui.a.b"),
            &KeyRegistry::empty(),
            &defaults,
            user(),
            device,
        )
        .unwrap();
        assert_eq!((on_tv.value, on_tv.source), (json!("tv"), Layer::Device));
        let elsewhere = resolve(&defaults, user()).unwrap();
        assert_eq!(
            (elsewhere.value, elsewhere.source),
            (json!("mine"), Layer::User)
        );
    }

    #[test]
    fn the_whole_view_holds_every_key_some_layer_has() {
        let registry = KeyRegistry::builtin().unwrap();
        let all = effective_settings(
            &registry,
            &deployment("ui.deployed.key", json!(1), false),
            vec![users("ui.a.b", json!(2).into())],
            vec![users("ui.c.d", json!(3).into())],
        );
        assert_eq!(all["ui.deployed.key"].source, Layer::Deployment);
        assert_eq!(all["ui.a.b"].source, Layer::User);
        assert_eq!(all["ui.c.d"].source, Layer::Device);
        let builtin = all.values().filter(|e| e.source == Layer::Builtin).count();
        let exact_defaults = registry
            .entries()
            .filter(|e| e.spec().default.is_some() && !e.spec().pattern.contains('{'))
            .count();
        assert_eq!(builtin, exact_defaults);
    }

    #[test]
    fn the_registry_default_is_the_builtin_layer() {
        let registry = KeyRegistry::builtin().unwrap();
        let with_default = registry
            .entries()
            .find(|e| e.spec().default.is_some() && !e.spec().pattern.contains('{'))
            .unwrap();
        let key = key(&with_default.spec().pattern);
        let effective =
            effective_setting(&key, &registry, &DeploymentDefaults::default(), None, None).unwrap();
        assert_eq!(effective.source, Layer::Builtin);
        assert_eq!(Some(effective.value), with_default.spec().default.clone());
        assert_eq!(effective.version, 0);
    }
}
