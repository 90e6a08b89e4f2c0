//! Composition root: configuration, wiring and the `user-settings` binary.
//!
//! `app` is the only crate that knows every adapter: it reads [`config::Config`], builds the
//! PostgreSQL pool, the keyring and the authenticator, wires the domain services, and hands
//! them to the HTTP adapter ([`startup::Application`]).

pub mod config;
pub mod keys;
pub mod readiness;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
