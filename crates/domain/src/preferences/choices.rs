//! The closed sets of preference values: theme, profile visibility, notification frequency.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every allowed value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the value of `field`.
            ///
            /// # Errors
            /// A [`FieldError`] with code `invalid_value` listing the allowed values.
            pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == raw)
                    .ok_or_else(|| {
                        let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        FieldError::new(
                            field,
                            "invalid_value",
                            format!("must be one of: {}", allowed.join(", ")),
                        )
                    })
            }
        }
    };
}

choice!(
    /// Colour scheme of the UI.
    Theme {
        /// Light colours.
        Light => "light",
        /// Dark colours.
        Dark => "dark",
        /// Follow the operating system.
        System => "system",
    }
);

choice!(
    /// Who may see the user's profile.
    ProfileVisibility {
        /// Anyone.
        Public => "public",
        /// Only friends.
        Friends => "friends",
        /// Only the user.
        Private => "private",
    }
);

choice!(
    /// How often notifications of a channel are sent.
    Frequency {
        /// As they happen.
        Instant => "instant",
        /// Once a day.
        Daily => "daily",
        /// Once a week.
        Weekly => "weekly",
    }
);
