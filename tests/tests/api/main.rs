//! End-to-end tests of the HTTP API: the real app, a real database, a real client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_internal;
mod allow;
mod auth;
mod defaults;
mod device_preferences;
mod devices;
mod docs_health;
mod effective;
mod erasure;
mod events;
mod history;
mod if_match_lists;
mod if_match_star;
mod layered_preferences;
mod portability;
mod post_setting;
mod preferences;
mod settings;
mod support;
mod write_bounds;
