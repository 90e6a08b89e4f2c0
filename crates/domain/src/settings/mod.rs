//! The flexible key/value store: keys, categories, data types, values and limits.

mod category;
mod data_type;
mod key;
mod limits;
mod page;
mod setting;
mod stored_value;
mod value;

pub use category::{AllowedCategories, Category};
pub use data_type::DataType;
pub use key::{MAX_KEY_LEN, SettingKey};
pub use limits::{Limits, QuotaExceeded, UserQuota};
pub use page::Page;
pub use setting::{Description, Precondition, Setting, SettingView, SettingWrite, UpsertOutcome};
pub use stored_value::{StoredValue, seal};
pub use value::{TextShape, check_value_text, json_depth, text_shape};
