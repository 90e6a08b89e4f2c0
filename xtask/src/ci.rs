//! `cargo xtask ci`: formatting, clippy, every test, then schemathesis against the OpenAPI
//! document — what `.ci/run` and CI execute.

use std::process::ExitCode;

use crate::{fuzz_api, process, test, workspace};

/// schemathesis's budget per token in CI (three tokens: about three minutes in all).
const FUZZ_SECONDS: u64 = 60;

pub fn run() -> Result<ExitCode, String> {
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
    let tests = test::run(&[])?;
    if tests != ExitCode::SUCCESS {
        return Ok(tests);
    }
    // A client generated from the document must work unchanged: any failure fails CI.
    fuzz_api::run(FUZZ_SECONDS)
}
