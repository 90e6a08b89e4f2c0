//! `cargo xtask fuzz-api [--seconds N]`: schemathesis against the service's own OpenAPI
//! document, once with a user token, once with an admin token and once with a service token.
//!
//! The service runs from the debug build on its own database (an ephemeral cluster unless
//! `DATABASE_URL` is set), with quotas out of the way (the fuzzer sends thousands of requests;
//! 429 is documented, but a spent quota would hide every other answer). schemathesis comes from
//! PyPI into a virtual environment under `target/`, installed on first use.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::pg_install::PgInstall;
use crate::{cluster, dev_secrets, process, run, workspace};

/// The schemathesis release the checks were written against.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Checks switched off for one operation, each with the reason the API does not share the
/// check's premise. Anything else schemathesis reports is a defect of the API or its document.
const EXCLUSIONS: &[(&str, &str, &str)] = &[
    (
        "PUT /api/v1/users/me/settings",
        "positive_data_acceptance",
        // A bulk refuses a key that appears twice. JSON Schema cannot say "unique by one
        // member" (`uniqueItems` compares whole items), so a schema-valid bulk can repeat a
        // key; the refusal is deliberate: which of the two writes should win is not ours to
        // guess.
        "a bulk may not repeat a key, which JSON Schema cannot state",
    ),
    (
        "POST /api/v1/integrations/{provider}/connect",
        "positive_data_acceptance",
        // Which members of the body apply depends on the provider in the path (a code for
        // OAuth, a token for Last.fm, a password for Kitsu); OpenAPI has one request schema
        // per operation, not one per path-parameter value.
        "the body's members depend on the provider in the path",
    ),
    (
        "POST /api/v1/integrations/{provider}/connect",
        "not_a_server_error",
        // Connecting checks the credentials with the provider, which the fuzz run cannot
        // reach: the answer is the documented 502 `provider_unreachable` (or 504), which is
        // right, not a failure of this service.
        "connect asks the provider, which the fuzz run cannot reach (documented 502/504)",
    ),
    (
        "GET /api/v1/users/me/devices/{device_id}/preferences",
        "use_after_free",
        // What a device overrides of the preferences always has a representation: `{}` when
        // it overrides nothing, also after DELETE (of the overrides, or of the device), as a
        // client reads it before its first write.
        "a device's preference overrides read {} when there are none, also after a DELETE",
    ),
    (
        "PATCH /api/v1/users/me/devices/{device_id}/preferences",
        "use_after_free",
        // A merge patch creates the overrides it names: after a DELETE it starts from none.
        "a merge patch of a device's overrides after a DELETE starts from none",
    ),
    (
        "POST /api/v1/users/me/import",
        "positive_data_acceptance",
        // Each item of a document obeys what a write of its key obeys: the registry's schema
        // of that key, its type, the allowed categories, no repeated key. As for the bulk
        // write, JSON Schema cannot state rules that depend on another member's value.
        "an imported item obeys the rules of its key, which JSON Schema cannot state per item",
    ),
    (
        "POST /api/v1/users/me/import",
        "negative_data_rejection",
        // The document states the shape of an export, not the rules of every item in it: an
        // item is a setting of any key, checked by that key's rules when the import plans it
        // (and reported, with every other problem, in one 422). A dry run of an item that
        // breaks a rule the document does not state answers that 422; one the generator
        // believes broken but no rule refuses is planned like any other.
        "an import checks each item by its key's rules, not by the document's schema",
    ),
    (
        "GET /api/v1/users/me/devices/{device_id}/settings/{key}",
        "use_after_free",
        // A device exists while it overrides something: after DELETE of the device (or of the
        // override), a PUT or restore of the override names it again and the read answers 200.
        // The checker counts only a write to the deleted path itself as re-creating it. That a
        // read after the DELETE alone answers 404 is tested end to end
        // (tests/tests/api/devices.rs).
        "a write or restore of an override after DELETE of its device re-creates both",
    ),
    (
        "GET /api/v1/users/me/settings/{key}/history",
        "use_after_free",
        // The history of a key outlives the key: it is how a deleted key is found and restored.
        "a key's history outlives the key (that is what it is for)",
    ),
    (
        "GET /api/v1/users/me/devices/{device_id}/settings/{key}/history",
        "use_after_free",
        "a device override's history outlives the override (that is what it is for)",
    ),
    (
        "GET /api/v1/admin/users/{user_id}/settings/{key}/history",
        "use_after_free",
        "a key's history outlives the key (that is what it is for)",
    ),
    (
        "POST /api/v1/users/me/settings/{key}/restore",
        "ensure_resource_availability",
        // A restore names one version of the key's history; the fuzzer's version is rarely
        // one the key has had, and a version not kept is the documented 404.
        "a restore names a version of the history, not the key just created (404 when not kept)",
    ),
    (
        "POST /api/v1/users/me/devices/{device_id}/settings/{key}/restore",
        "ensure_resource_availability",
        "a restore names a version of the history, not the override just created (404 when not kept)",
    ),
];

/// Operations not fuzzed at all, each with the reason.
const SKIPPED: &[(&str, &str)] = &[(
    "GET /api/v1/users/me/events",
    // A stream stays open until its token expires: every valid request would hang the
    // fuzzer until its timeout. Its contract is tested end to end (tests/tests/api/events.rs).
    "a change stream stays open: a fuzzer would wait on every valid request",
)];

/// The schemathesis configuration holding [`EXCLUSIONS`] and [`SKIPPED`].
fn config_file(out: &Path) -> Result<PathBuf, String> {
    // Every check, set here rather than with `--checks all`: the command line would override
    // the per-operation exclusions.
    let mut toml = String::from(
        "# Written by `cargo xtask fuzz-api`; see EXCLUSIONS in xtask/src/fuzz_api.rs.\n\
         checks.enabled = true\n",
    );
    // One table per operation: schemathesis applies the first table that matches.
    let mut operations: Vec<&str> = EXCLUSIONS.iter().map(|(op, _, _)| *op).collect();
    operations.dedup();
    for operation in operations {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-name = \"{operation}\"\n"
        ));
        for (_, check, reason) in EXCLUSIONS.iter().filter(|(op, _, _)| *op == operation) {
            toml.push_str(&format!("# {reason}\nchecks.{check}.enabled = false\n"));
        }
    }
    for (operation, reason) in SKIPPED {
        toml.push_str(&format!(
            "\n# {reason}\n[[operations]]\ninclude-name = \"{operation}\"\nenabled = false\n"
        ));
    }
    let path = out.join("schemathesis.toml");
    fs::write(&path, toml).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// The roles the fuzzer acts as: a plain user, support staff, an integration service, an
/// operator (the deployment layer's writes).
const ROLES: &[(&str, &[&str])] = &[
    ("user", &[]),
    ("admin", &["--role", "admin"]),
    ("service", &["--role", "service"]),
    ("operator", &["--role", "operator"]),
];

/// Runs schemathesis for `seconds` per token.
pub fn run(seconds: u64) -> Result<ExitCode, String> {
    let schemathesis = ensure_schemathesis()?;
    let out = workspace::target_dir()?.join("fuzz-api");
    fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;

    let config = config_file(&out)?;
    let (_cluster, database_url) = cluster::database(&PgInstall::find(), "test", "")?;
    let service = Service::start(&database_url, &out)?;
    let mut failed = Vec::new();
    for (role, flags) in ROLES {
        let token = service.token(flags)?;
        eprintln!("\n== schemathesis as {role} ({seconds} s)");
        let report = out.join(format!("{role}.txt"));
        let status = schemathesis_run(
            &schemathesis,
            &config,
            &service.base,
            &token,
            seconds,
            &report,
        )?;
        print_summary(&report, &token);
        if !status {
            failed.push(*role);
        }
    }
    if failed.is_empty() {
        eprintln!("\nschemathesis: no failures for any token");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "\nschemathesis found failures as {}; the full output is in {}",
            failed.join(", "),
            out.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// `target/schemathesis/bin/schemathesis`, installed from PyPI when missing.
fn ensure_schemathesis() -> Result<PathBuf, String> {
    let venv = workspace::target_dir()?.join("schemathesis");
    let bin = venv.join("bin").join("schemathesis");
    if bin.exists() {
        return Ok(bin);
    }
    if !process::succeeds(Command::new("python3").arg("--version")) {
        return Err(
            "schemathesis needs Python 3 with venv: install it (Debian/Ubuntu: \
                    `apt-get install python3 python3-venv`, macOS: `brew install python`)"
                .to_owned(),
        );
    }
    eprintln!(
        "installing {SCHEMATHESIS} from PyPI into {}",
        venv.display()
    );
    process::run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).map_err(|e| {
        format!("{e}\n(Debian/Ubuntu: `apt-get install python3-venv` provides the venv module)")
    })?;
    process::run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        SCHEMATHESIS,
    ]))?;
    Ok(bin)
}

/// Runs schemathesis with every check, its output to the terminal and to `report`.
fn schemathesis_run(
    bin: &Path,
    config: &Path,
    base: &str,
    token: &str,
    seconds: u64,
    report: &Path,
) -> Result<bool, String> {
    let mut cmd = Command::new(bin);
    // schemathesis keeps a cache (and replays its stored failures) in its working directory:
    // keep it under target/, out of the repository.
    if let Some(dir) = report.parent() {
        cmd.current_dir(dir);
    }
    cmd.arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--max-time", &seconds.to_string()])
        // One worker: several threads have crashed schemathesis's own schema walker here.
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .env("NO_COLOR", "1");
    // The token is not echoed: print the command without it.
    eprintln!(
        "$ {} --config-file {} run {base}/openapi.json --max-time {seconds} --header 'Authorization: Bearer …'",
        bin.display(),
        config.display()
    );
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run schemathesis: {e}"))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    fs::write(report, &text).map_err(|e| format!("writing {}: {e}", report.display()))?;
    Ok(output.status.success())
}

/// Prints the closing lines of a schemathesis run from its saved output (see [`closing_lines`]).
fn print_summary(report: &Path, token: &str) {
    let text = fs::read_to_string(report).unwrap_or_default();
    eprintln!("{}", closing_lines(&text, token));
}

/// The closing lines of a schemathesis run: each failure with the requests that reproduce it
/// (so a CI log names what failed), then the summary. The token the reproductions carry is
/// masked.
fn closing_lines(output: &str, token: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("= FAILURES ="))
        .or_else(|| lines.iter().rposition(|l| l.contains("SUMMARY")))
        .unwrap_or(lines.len().saturating_sub(20));
    lines[start..].join("\n").replace(token, "…")
}

/// The service under test, stopped when dropped.
struct Service {
    child: Child,
    base: String,
    database_url: String,
}

impl Service {
    fn start(database_url: &str, out: &Path) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let log = fs::File::create(out.join("service.log"))
            .map_err(|e| format!("creating the service log: {e}"))?;
        let mut cmd = run::binary()?;
        configure(&mut cmd, database_url)?;
        cmd.arg("serve")
            .env("USER_SETTINGS_BIND", format!("127.0.0.1:{port}"))
            .env("USER_SETTINGS_RATE_LIMIT_READS", "1000000000")
            .env("USER_SETTINGS_RATE_LIMIT_WRITES", "1000000000")
            // The fuzzer names a new device in almost every request: the devices quota is a
            // documented refusal, not what the run is about.
            .env("USER_SETTINGS_MAX_DEVICES_PER_USER", "1000000")
            .env("USER_SETTINGS_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("could not start the service: {e}"))?;
        let service = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            database_url: database_url.to_owned(),
        };
        service.wait_until_ready(port)?;
        Ok(service)
    }

    fn wait_until_ready(&self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_status(port, "/health/ready") == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the service did not become ready within 60 s \
                            (see target/fuzz-api/service.log)"
                    .to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A token for a fresh user with `flags` (e.g. `--role admin`).
    fn token(&self, flags: &[&str]) -> Result<String, String> {
        let mut mint = run::binary()?;
        configure(&mut mint, &self.database_url)?;
        let sub = fresh_uuid()?;
        mint.args(["token", "--sub", &sub, "--ttl", "2h"])
            .args(flags);
        process::output(&mut mint)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn configure(cmd: &mut Command, database_url: &str) -> Result<(), String> {
    let secrets = dev_secrets::load_or_create()?;
    cmd.env("DATABASE_URL", database_url)
        .env("USER_SETTINGS_ENCRYPTION_KEY", &secrets.encryption_key)
        .env("USER_SETTINGS_JWT_SECRET", &secrets.jwt_secret);
    for var in ["USER_SETTINGS_JWT_PUBLIC_KEY", "USER_SETTINGS_CONFIG"] {
        cmd.env_remove(var);
    }
    Ok(())
}

/// A random version-4 UUID from the kernel's generator (no UUID crate: xtask builds fast).
fn fresh_uuid() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The status of `GET path` on the local port, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_uuids_are_version_4() {
        let id = fresh_uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, fresh_uuid().unwrap());
    }

    #[test]
    fn the_closing_lines_show_each_failure_without_the_token() {
        let output = "Schemathesis v4\n(progress)\n\
            ============ FAILURES ============\n\
            ___ GET /api/v1/x ___\n\
            curl -X GET -H 'Authorization: Bearer tok.en.sig' http://127.0.0.1/api/v1/x\n\
            ============ SUMMARY ============\n\
            1 failure";
        let shown = closing_lines(output, "tok.en.sig");
        assert!(shown.starts_with("============ FAILURES"), "{shown}");
        assert!(
            shown.contains("GET /api/v1/x") && shown.ends_with("1 failure"),
            "{shown}"
        );
        assert!(!shown.contains("tok.en.sig"), "{shown}");
        assert!(shown.contains("Bearer …"), "{shown}");

        let passing = "(progress)\n===== SUMMARY =====\nno issues";
        assert_eq!(
            closing_lines(passing, "t"),
            "===== SUMMARY =====\nno issues"
        );
    }
}
