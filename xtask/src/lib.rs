//! The workspace's development tasks as a library: the `cargo xtask` commands, and what the
//! `bench` package shares with them (clusters, processes, secrets, the workspace's paths).

pub mod browser;
pub mod ci;
pub mod cluster;
pub mod db;
pub mod dev_secrets;
pub mod fuzz_api;
pub mod pg_install;
pub mod process;
pub mod redis_server;
pub mod run;
pub mod test;
#[cfg(test)]
mod tidy;
pub mod workspace;
