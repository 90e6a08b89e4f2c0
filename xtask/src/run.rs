//! `cargo xtask run`: serve the API on the project-local PostgreSQL (or `DATABASE_URL`), with
//! development secrets, and print a ready-to-paste example. `cargo xtask token` mints a token
//! for the running dev service.

use std::env;
use std::process::{Command, ExitCode};

use crate::{db, dev_secrets, process, workspace};

/// The user of the examples printed by `run` and the default of `token`.
pub const DEV_USER: &str = "7b3c1c0e-5a7e-4d2b-9f1a-2c6d8e4f0a11";

/// The service binary, built in debug mode.
pub fn binary() -> Result<Command, String> {
    let mut build = workspace::cargo()?;
    build.args([
        "build",
        "--quiet",
        "--package",
        "app",
        "--bin",
        "user-settings",
    ]);
    process::run(&mut build)?;
    let path = workspace::target_dir()?.join("debug").join("user-settings");
    let mut cmd = Command::new(path);
    cmd.current_dir(workspace::root()?);
    Ok(cmd)
}

/// Sets the service's environment: the database and the dev secrets, unless already given.
fn configure(cmd: &mut Command) -> Result<String, String> {
    let url = match env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => db::ensure_dev_running()?,
    };
    cmd.env("DATABASE_URL", &url);
    let secrets = dev_secrets::load_or_create()?;
    if env::var_os("USER_SETTINGS_ENCRYPTION_KEY").is_none() {
        cmd.env("USER_SETTINGS_ENCRYPTION_KEY", &secrets.encryption_key);
    }
    if env::var_os("USER_SETTINGS_JWT_SECRET").is_none() {
        cmd.env("USER_SETTINGS_JWT_SECRET", &secrets.jwt_secret);
    }
    Ok(url)
}

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut serve = binary()?;
    configure(&mut serve)?;
    serve.arg("serve").args(args);
    let bind = env::var("USER_SETTINGS_BIND").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());

    let mut mint = binary()?;
    configure(&mut mint)?;
    mint.args(["token", "--sub", DEV_USER]);
    let token = process::output(&mut mint)?;
    eprintln!(
        "\nServing on http://{bind} (docs: http://{bind}/docs; support console: \
         http://{bind}/admin/, sign in with the token of `cargo xtask token --role admin`). \
         In another terminal:\n\n  \
         TOKEN=$(cargo xtask token)\n  \
         curl -s -H \"Authorization: Bearer $TOKEN\" http://{bind}/api/v1/users/me/preferences\n\n\
         or, with a token valid for an hour:\n\n  \
         curl -s -H 'Authorization: Bearer {}' http://{bind}/api/v1/users/me/settings\n",
        token.trim()
    );
    let status = process::status(&mut serve)?;
    Ok(process::exit_code(status))
}

/// `cargo xtask token [--sub UUID | --subjects-file FILE] [--role admin|service] [--ttl 1h]`.
pub fn token(args: &[String]) -> Result<ExitCode, String> {
    let mut mint = binary()?;
    configure(&mut mint)?;
    mint.arg("token");
    // `--sub`, `--sub=…` and `--subjects-file` name whom the token is for.
    if !args.iter().any(|arg| arg.starts_with("--sub")) {
        mint.args(["--sub", DEV_USER]);
    }
    mint.args(args);
    let status = process::status(&mut mint)?;
    Ok(process::exit_code(status))
}
