//! Composition root: configuration, wiring and the `user-settings` binary.
//!
//! `app` is the only crate that knows every adapter: it reads [`config::Config`], builds the
//! PostgreSQL pool, the keyring and the authenticator, wires the domain services (behind the
//! cache and metrics decorators of their ports), and hands them, with the rate limiter, to
//! the HTTP adapter ([`startup::Application`]).

pub mod bounded_readiness;
pub mod cache;
pub mod config;
pub mod counting_cipher;
pub mod event_hub;
pub mod history_pruner;
pub mod integrations;
pub mod keys;
pub mod metrics;
pub mod rate_limiter;
pub mod readiness;
pub mod shared_rate_limiter;
pub mod startup;
pub mod telemetry;
pub mod tokens;

pub use config::Config;
pub use startup::Application;
