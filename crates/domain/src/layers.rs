//! Layered values: which of the four layers a setting or preference field takes its value from.
//!
//! Lowest precedence first: `builtin` (the registry's defaults for known keys, the documented
//! defaults of preferences), `deployment` (set by an operator for everybody), `user`, and
//! `device` (one of the user's clients). The effective value is the highest layer that has
//! one, except that a deployment value marked *enforced* wins over the user and the device.
//!
//! Each layer stores only what it sets: "inherit" is the absence of a value, never a copy of
//! the layer below, so a changed default reaches everyone who never chose. A value stored in a
//! layer that enforcement shadows stays stored and comes back when the enforcement is lifted.

/// One of the four layers, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The registry's or the preferences' documented default.
    Builtin,
    /// Set by an operator for every user.
    Deployment,
    /// The user's own value.
    User,
    /// One of the user's devices.
    Device,
}

impl Layer {
    /// The wire name: `builtin`, `deployment`, `user`, `device`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Builtin => "builtin",
            Layer::Deployment => "deployment",
            Layer::User => "user",
            Layer::Device => "device",
        }
    }
}

/// A deployment layer's entry: its value (absent when the operator enforces the builtin
/// default without setting one) and whether it is enforced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentEntry<T> {
    /// The operator's value; `None` enforces the builtin default.
    pub value: Option<T>,
    /// Whether it wins over the user and device layers.
    pub enforced: bool,
}

/// What each layer holds for one key or field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layers<T> {
    /// The builtin default, if there is one.
    pub builtin: Option<T>,
    /// The deployment's entry, if the operator set or enforced one.
    pub deployment: Option<DeploymentEntry<T>>,
    /// The user's own value.
    pub user: Option<T>,
    /// The device's value (only when a device is asked for).
    pub device: Option<T>,
}

impl<T> Default for Layers<T> {
    fn default() -> Self {
        Self {
            builtin: None,
            deployment: None,
            user: None,
            device: None,
        }
    }
}

/// The value in effect, where it comes from, and whether the deployment enforces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective<T> {
    /// The value.
    pub value: T,
    /// The layer it comes from.
    pub source: Layer,
    /// Whether the deployment enforces this key or field (a user or device write is refused).
    pub enforced: bool,
}

impl<T> Layers<T> {
    /// Whether the deployment enforces this key or field.
    pub fn is_enforced(&self) -> bool {
        self.deployment.as_ref().is_some_and(|d| d.enforced)
    }

    /// The effective value: the highest layer that has one, except that an enforced deployment
    /// entry wins over the user and the device (with its own value, or else the builtin one).
    /// `None` when no layer has a value.
    pub fn resolve(self) -> Option<Effective<T>> {
        let enforced = self.is_enforced();
        let Layers {
            builtin,
            deployment,
            user,
            device,
        } = self;
        let deployment = deployment.and_then(|d| d.value);
        // Enforcement hides what the user and the device set (it stays stored).
        let (device, user) = if enforced {
            (None, None)
        } else {
            (device, user)
        };
        [
            (device, Layer::Device),
            (user, Layer::User),
            (deployment, Layer::Deployment),
            (builtin, Layer::Builtin),
        ]
        .into_iter()
        .find_map(|(value, source)| value.map(|value| (value, source)))
        .map(|(value, source)| Effective {
            value,
            source,
            enforced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of the layers: each present or absent, the deployment's value present
    /// or absent and enforced or not. The values name their layer, so the answer shows where it
    /// came from.
    fn every_combination() -> Vec<Layers<&'static str>> {
        let mut all = Vec::new();
        for mask in 0u8..16 {
            let has = |bit: u8| mask & (1 << bit) != 0;
            for enforced in [false, true] {
                for deployment_value in [false, true] {
                    let deployment = (has(1) || enforced).then(|| DeploymentEntry {
                        value: (has(1) && deployment_value).then_some("deployment"),
                        enforced,
                    });
                    all.push(Layers {
                        builtin: has(0).then_some("builtin"),
                        deployment,
                        user: has(2).then_some("user"),
                        device: has(3).then_some("device"),
                    });
                }
            }
        }
        all
    }

    /// The rule stated independently: the layers in precedence order, enforcement first.
    fn expected(layers: &Layers<&'static str>) -> Option<(&'static str, Layer)> {
        let deployment = layers.deployment.as_ref().and_then(|d| d.value);
        if layers.is_enforced() {
            return deployment
                .map(|v| (v, Layer::Deployment))
                .or(layers.builtin.map(|v| (v, Layer::Builtin)));
        }
        layers
            .device
            .map(|v| (v, Layer::Device))
            .or(layers.user.map(|v| (v, Layer::User)))
            .or(deployment.map(|v| (v, Layer::Deployment)))
            .or(layers.builtin.map(|v| (v, Layer::Builtin)))
    }

    #[test]
    fn every_combination_of_layers_resolves_by_precedence_and_enforcement() {
        let combinations = every_combination();
        assert_eq!(combinations.len(), 64);
        for layers in combinations {
            let enforced = layers.is_enforced();
            let resolved = layers.clone().resolve();
            assert_eq!(
                resolved.as_ref().map(|e| (e.value, e.source)),
                expected(&layers),
                "{layers:?}"
            );
            if let Some(effective) = resolved {
                assert_eq!(effective.value, effective.source.as_str(), "{layers:?}");
                assert_eq!(effective.enforced, enforced, "{layers:?}");
            }
        }
    }

    #[test]
    fn a_device_value_shadows_the_user_value() {
        let layers = Layers {
            builtin: Some(1),
            user: Some(2),
            device: Some(3),
            ..Layers::default()
        };
        assert_eq!(layers.resolve().map(|e| e.source), Some(Layer::Device));
    }

    #[test]
    fn a_user_who_never_chose_reads_the_deployment_default() {
        let layers = Layers {
            builtin: Some("light"),
            deployment: Some(DeploymentEntry {
                value: Some("dark"),
                enforced: false,
            }),
            ..Layers::default()
        };
        let effective = layers.resolve().unwrap();
        assert_eq!(
            (effective.value, effective.source),
            ("dark", Layer::Deployment)
        );
        assert!(!effective.enforced);
    }

    #[test]
    fn an_enforced_value_wins_over_user_and_device() {
        let layers = Layers {
            builtin: Some("light"),
            deployment: Some(DeploymentEntry {
                value: Some("dark"),
                enforced: true,
            }),
            user: Some("system"),
            device: Some("light"),
        };
        let effective = layers.resolve().unwrap();
        assert_eq!(
            (effective.value, effective.source),
            ("dark", Layer::Deployment)
        );
        assert!(effective.enforced);
    }

    #[test]
    fn enforcing_without_a_deployment_value_enforces_the_builtin_default() {
        let layers = Layers {
            builtin: Some("light"),
            deployment: Some(DeploymentEntry {
                value: None,
                enforced: true,
            }),
            user: Some("dark"),
            device: None,
        };
        let effective = layers.resolve().unwrap();
        assert_eq!(
            (effective.value, effective.source),
            ("light", Layer::Builtin)
        );
        assert!(effective.enforced);
    }

    #[test]
    fn no_layer_no_value() {
        assert_eq!(Layers::<u8>::default().resolve(), None);
    }
}
