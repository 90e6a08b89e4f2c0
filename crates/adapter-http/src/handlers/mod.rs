//! Route handlers, one module per resource.

pub mod admin;
pub mod defaults;
pub mod devices;
pub mod effective;
pub mod events;
pub mod health;
pub mod history;
pub mod integrations;
pub mod internal;
pub mod paging;
pub mod portability;
pub mod preferences;
pub mod schema;
pub mod settings;
pub mod support;
