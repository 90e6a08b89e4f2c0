//! `cargo xtask bench rewrap`: key rotation at scale while the service serves. Seeds
//! `--secrets` encrypted settings sealed by the service's own sealing code under the old key
//! (so every one really decrypts), starts the service with a new current key, measures C (one
//! uncached setting) alone, then runs `keys rewrap` and measures C again while it runs.
//! Reports rows/s and C's p99 during the rewrap against C's p99 without it.
//! Writes `target/bench/rewrap.{md,json}`.

use std::io::{BufWriter, Write as _};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use adapter_crypto::AesGcmKeyring;
use clap::Args;
use domain::{
    UserId,
    secrets::SecretValue,
    settings::{SettingKey, seal},
};
use serde::Serialize;
use xtask::process;

use crate::report::{self, Json};
use crate::{Bench, count, seconds};

/// A rewrap of a million secrets should take less than this many seconds.
const TARGET_SECONDS_PER_MILLION: f64 = 120.0;
/// C's p99 during the rewrap may be at most this multiple of its p99 without it.
const TARGET_P99_RATIO: f64 = 2.0;

/// Options of `bench rewrap`.
#[derive(Args, Clone, Copy, Debug)]
pub struct Options {
    /// Seeded users (the readers of C, and the owners of the secrets).
    #[arg(long, default_value = "10000", value_parser = count::<u64>)]
    users: u64,
    /// Encrypted settings to rewrap, spread evenly over the users.
    #[arg(long, default_value = "1000000", value_parser = count::<u64>)]
    secrets: u64,
    /// Measured time of C, alone and during the rewrap.
    #[arg(long = "duration", default_value = "10", value_parser = seconds)]
    seconds: u64,
    /// wrk connections.
    #[arg(long, default_value = "32", value_parser = count::<usize>)]
    connections: usize,
    /// Rows per rewrap batch (`keys rewrap --batch`).
    #[arg(long, default_value = "500", value_parser = count::<u32>)]
    batch: u32,
}

#[derive(Serialize)]
struct Results<'a> {
    secrets: u64,
    seeded_seconds: f64,
    rewrapped: u64,
    failed: u64,
    rewrap_seconds: f64,
    rows_per_second: f64,
    c_alone: report::RowJson<'a>,
    c_during_rewrap: report::RowJson<'a>,
    p99_ratio: Option<f64>,
    measurement_within_rewrap: bool,
}

/// Runs the measurement and writes `target/bench/rewrap.{md,json}`.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let bench = Bench::prepare(options.connections, options.seconds)?;
    bench.seed(1, options.users)?;
    let old_keys = bench.encryption_key.clone();
    let seeded_seconds = seed_secrets(&bench, options, &old_keys)?;
    bench.db().settle()?;

    // The new key is current; the one that sealed the secrets stays readable as a previous key.
    let new_key = format!(
        "rewrap:{}",
        adapter_crypto::generate_key_hex().map_err(|e| e.to_string())?
    );
    let keys = [
        ("USER_SETTINGS_ENCRYPTION_KEY", new_key.clone()),
        ("USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS", old_keys.clone()),
    ];
    let mut extra = vec![
        ("USER_SETTINGS_CACHE_TTL", "0".to_owned()),
        ("USER_PREFERENCES_CACHE_TTL", "0".to_owned()),
    ];
    extra.extend(keys.iter().cloned());
    let machine = report::machine();
    let svc = bench.start_service_with("rewrap", &extra)?;
    let tokens = bench.mint_tokens(
        options.users,
        options.users.min(10_000),
        "tokens-rewrap.txt",
    )?;
    bench.preflight(&svc, &tokens)?;

    let alone = bench.http_scenario(
        &svc,
        None,
        ("C", "GET one setting, uncached (no rewrap)"),
        "get",
        Some(&tokens),
    )?;

    let mut rewrap = bench.command();
    rewrap
        .env("DATABASE_URL", bench.db().url())
        .envs(keys.iter().map(|(k, v)| (k, v)))
        .args(["keys", "rewrap", "--batch", &options.batch.to_string()])
        .args(["--progress-interval", "10s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!(
        "\n== rewrap of {} secrets, C measured meanwhile",
        options.secrets
    );
    eprintln!("$ {}", process::display(&rewrap));
    let started = Instant::now();
    let child = rewrap
        .spawn()
        .map_err(|e| format!("could not start `keys rewrap`: {e}"))?;
    let during = bench.measure(
        Some(&svc),
        None,
        "C+rewrap",
        "GET one setting, uncached, during the rewrap",
        || {
            bench
                .wrk(&svc.url(), "get", Some(&tokens), options.seconds)
                .run()
        },
    )?;
    let measured_until = started.elapsed().as_secs_f64();
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `keys rewrap`: {e}"))?;
    let rewrap_seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("`keys rewrap` failed: {stdout}"));
    }
    let (rewrapped, failed) = parse_report(&stdout)?;
    let stale = bench.db().query(
        "SELECT count(*) FROM user_settings \
         WHERE data_type = 'encrypted' AND value ->> 'kid' <> 'rewrap'",
    )?;
    svc.stop();
    if stale.trim() != "0" || failed != 0 {
        return Err(format!(
            "the rewrap left {} row(s) on the old key and reported {failed} failure(s)",
            stale.trim()
        ));
    }
    crate::print_row(&during);

    let rows_per_second = rewrapped as f64 / rewrap_seconds.max(1e-9);
    let p99_ratio = (alone.m.p99_ms > 0.0).then(|| during.m.p99_ms / alone.m.p99_ms);
    let within = measured_until <= rewrap_seconds;
    let rows = [alone, during];
    let results = Results {
        secrets: options.secrets,
        seeded_seconds: report::round(Some(seeded_seconds), 1).unwrap_or_default(),
        rewrapped,
        failed,
        rewrap_seconds: report::round(Some(rewrap_seconds), 2).unwrap_or_default(),
        rows_per_second: rows_per_second.round(),
        c_alone: rows[0].json(),
        c_during_rewrap: rows[1].json(),
        p99_ratio: report::round(p99_ratio, 2),
        measurement_within_rewrap: within,
    };
    let per_million = rewrap_seconds * 1e6 / rewrapped.max(1) as f64;
    let mut params = vec![
        ("users", options.users.to_string()),
        (
            "secrets",
            format!(
                "{} encrypted settings, sealed with the service's code (seeded in {seeded_seconds:.1} s)",
                options.secrets
            ),
        ),
        ("batch", format!("{} rows", options.batch)),
        ("cache", "off (both TTLs 0)".to_owned()),
    ];
    params.extend(bench.parameters());
    let generated = report::now_utc();
    let mut md = report::header(
        "Key rotation while serving",
        "cargo xtask bench rewrap",
        &generated,
        &machine,
        &params,
    );
    md.push('\n');
    md.push_str(&report::table(&rows));
    md.push_str(&format!(
        "\n| rewrapped | failed | wall time s | rows/s | time per million s (target < {TARGET_SECONDS_PER_MILLION:.0}) | C p99 during / alone (target ≤ {TARGET_P99_RATIO}) |\n\
         |---:|---:|---:|---:|---:|---:|\n\
         | {rewrapped} | {failed} | {rewrap_seconds:.1} | {rows_per_second:.0} | {per_million:.0} | {} |\n",
        report::opt(p99_ratio, 2),
    ));
    if !within {
        md.push_str(&format!(
            "\nThe rewrap ended after {rewrap_seconds:.1} s, before the {measured_until:.1} s \
             measurement of C did: part of \"during\" ran without it.\n"
        ));
    }
    let json = Json::new(&generated, &machine, &params, results);
    report::publish(bench.out_dir(), "rewrap", &md, &json)
}

/// Seals `--secrets` settings (`integrations.bench.r00000`…, spread over the users) with the
/// benchmark's key and copies them in, replacing the placeholder secrets that `seed.sql`
/// writes for every user (those were not sealed by the service and would not decrypt). Returns the seconds taken.
fn seed_secrets(bench: &Bench, options: &Options, keys: &str) -> Result<f64, String> {
    let started = Instant::now();
    let keyring = AesGcmKeyring::from_config(keys, "").map_err(|e| e.to_string())?;
    let ids = bench.db().query(&format!(
        "SELECT md5('bench-user-' || n)::uuid FROM generate_series(1, {}) AS n",
        options.users
    ))?;
    let users = ids
        .lines()
        .map(|id| id.trim().parse().map(UserId::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a seeded user id: {e}"))?;
    let per_user = options.secrets.div_ceil(users.len() as u64);
    eprintln!(
        "sealing {} secrets ({per_user} per user) and copying them in",
        options.secrets
    );
    let mut psql = bench.db().psql();
    psql.args([
        "-c",
        "DELETE FROM user_settings WHERE key = 'integrations.bench.secret'",
        "-c",
        "COPY user_settings (user_id, key, value, category, data_type) \
         FROM STDIN (FORMAT csv)",
    ])
    .stdin(Stdio::piped());
    let mut child = psql
        .spawn()
        .map_err(|e| format!("could not start psql: {e}"))?;
    let stdin = child.stdin.take().ok_or("psql has no stdin")?;
    let mut out = BufWriter::new(stdin);
    'users: for (u, user) in users.iter().enumerate() {
        for i in 0..per_user {
            let n = u as u64 * per_user + i;
            if n >= options.secrets {
                break 'users;
            }
            let key = SettingKey::parse(&format!("integrations.bench.r{i:05}"))
                .map_err(|e| format!("a benchmark key: {}", e.code))?;
            let plaintext = SecretValue::from_json(&serde_json::json!(format!("secret {n}")));
            let envelope = seal(&keyring, *user, &key, &plaintext).map_err(|e| e.to_string())?;
            // CSV: the JSON's quotes doubled inside a quoted field.
            let value = envelope.to_value().to_string().replace('"', "\"\"");
            writeln!(
                out,
                "{user},{key},\"{value}\",integrations,encrypted",
                user = user.as_uuid(),
                key = key.as_str()
            )
            .map_err(|e| format!("writing to psql: {e}"))?;
        }
    }
    drop(out.into_inner().map_err(|e| e.to_string())?);
    let status = child.wait().map_err(|e| format!("waiting for psql: {e}"))?;
    if !status.success() {
        return Err(format!("copying the secrets in failed ({status})"));
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "sealed and copied {} secrets in {seconds:.1} s",
        options.secrets
    );
    Ok(seconds)
}

/// `rewrapped N setting(s); M changed concurrently (already fresh); F failed` → (N, F).
fn parse_report(stdout: &str) -> Result<(u64, u64), String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rewrapped "))
        .ok_or_else(|| format!("`keys rewrap` printed no report: {stdout}"))?;
    let number = |prefix_words: usize| {
        line.split_whitespace()
            .nth(prefix_words)
            .and_then(|n| n.trim_end_matches(';').parse::<u64>().ok())
    };
    let failed = line
        .rsplit_once("; ")
        .and_then(|(_, tail)| tail.split_whitespace().next()?.parse().ok());
    match (number(1), failed) {
        (Some(rewrapped), Some(failed)) => Ok((rewrapped, failed)),
        _ => Err(format!("unreadable `keys rewrap` report: {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rewrap_report_is_read() {
        let stdout =
            "rewrapped 1000000 setting(s); 3 changed concurrently (already fresh); 2 failed\n";
        assert_eq!(parse_report(stdout).unwrap(), (1_000_000, 2));
        assert!(parse_report("nothing").is_err());
    }
}
