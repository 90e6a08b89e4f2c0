//! `cargo xtask ci`: formatting, clippy, then every test — what `.ci/run` and CI execute.

use std::process::ExitCode;

use crate::{process, test, workspace};

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    if !args.is_empty() {
        return Err("`cargo xtask ci` takes no arguments".to_owned());
    }
    process::run(workspace::cargo()?.args(["fmt", "--all", "--", "--check"]))
        .map_err(|e| format!("{e}\nrun `cargo fmt --all` to fix the formatting"))?;
    process::run(workspace::cargo()?.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    test::run(&[])
}
