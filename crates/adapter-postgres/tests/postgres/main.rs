//! Tests of the PostgreSQL adapter against a real server. Each test creates its own database
//! (`TestDatabase`), dropped when the test ends. Needs `DATABASE_URL` (`cargo xtask test`).
//!
//! One test binary with modules: each extra binary would link the whole driver stack again.

// The workspace denies these outside tests; helper functions here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod availability;
mod byte_quota;
mod change_feed;
mod defaults;
mod devices;
mod envelope_store;
mod must_exist;
mod oauth_states;
mod pages;
mod pools;
mod preferences;
mod schema;
mod settings;
mod support;
