//! The flexible key/value store: keys, categories, data types, values and limits.

mod category;
mod data_type;
mod key;
mod limits;
mod setting;
mod value;

pub use category::{AllowedCategories, Category};
pub use data_type::DataType;
pub use key::{MAX_KEY_LEN, SettingKey};
pub use limits::Limits;
pub use setting::{Description, Precondition, Setting, SettingView, SettingWrite, UpsertOutcome};
pub use value::{check_value_shape, json_depth};
