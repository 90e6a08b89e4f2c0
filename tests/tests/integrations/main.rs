//! End-to-end tests of the external service integrations: the real app and database, every
//! provider faked on loopback by wiremock.
//!
//! Every secret the fakes hand out or the tests send contains the marker `SECRET`; the
//! public API's responses and the captured log lines must never contain it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod connect;
mod disconnect;
mod failures;
mod logs;
mod state;
mod support;
mod tokens;
