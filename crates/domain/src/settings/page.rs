//! `Page`: one page of a keyset-paginated listing (ordered by key).

use super::SettingKey;

/// Which settings of a listing to return: at most `limit`, with keys strictly after `after`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Page {
    /// The last key of the previous page; `None` for the first page.
    pub after: Option<SettingKey>,
    /// Most settings to return.
    pub limit: u32,
}

impl Page {
    /// The largest page a client may ask for, and the size of a listing that asks for none.
    pub const MAX_LIMIT: u32 = 1000;

    /// The first `limit` settings.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }
}
