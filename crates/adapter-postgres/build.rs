//! Rebuilds the crate when a migration is added: `embed_migrations!` only tracks the files that
//! existed at the last build.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
