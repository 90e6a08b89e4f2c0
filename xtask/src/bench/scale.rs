//! `cargo xtask bench scale`: does latency stay flat as the data grows? p99 of C (one setting)
//! and F (the list) with `--small` then `--large` seeded users (the same database, grown in
//! place), and F for single users with 10, 100 and 1000 settings. Cache off throughout.
//! Writes `target/bench/scale.{md,json}`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::report::{self, Row};
use super::{Bench, Flags, USAGE};

/// p99 at `--large` may be at most this multiple of p99 at `--small` to count as flat.
const FLAT: f64 = 1.5;

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut small: u64 = 10_000;
    let mut large: u64 = 1_000_000;
    let mut seconds = 10;
    let mut connections = 32;
    let mut tokens: u64 = 100_000;
    let mut flags = Flags::new(args);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--small" => small = flags.number(&flag)?,
            "--large" => large = flags.number(&flag)?,
            "--duration" => seconds = flags.seconds(&flag)?,
            "--connections" => connections = usize::try_from(flags.number(&flag)?).unwrap_or(1),
            "--tokens" => tokens = flags.number(&flag)?,
            _ => return Err(format!("unknown option `{flag}`\n{USAGE}")),
        }
    }
    if small == 0 || large <= small || seconds == 0 || connections == 0 || tokens == 0 {
        return Err(format!(
            "need 0 < --small < --large and positive --duration, --connections, --tokens\n{USAGE}"
        ));
    }

    let bench = Bench::prepare(connections, seconds)?;
    let small_seed = bench.seed(1, small)?;
    for count in [10, 100, 1000] {
        bench
            .db()
            .run_file("seed_many.sql", &[("count", count.to_string())])?;
    }
    bench.db().settle()?;
    let machine = report::machine();
    let svc = bench.start_service("scale", false)?;

    let mut rows = Vec::new();
    let sample = tokens.min(small);
    let small_tokens = bench.mint_tokens(small, sample, "tokens-small.txt")?;
    bench.preflight(&svc, &small_tokens)?;
    rows.push(scenario(&bench, &svc, "C", small, "get", &small_tokens)?);
    rows.push(scenario(&bench, &svc, "F", small, "list", &small_tokens)?);

    for count in [10u64, 100, 1000] {
        let id = bench
            .db()
            .query(&format!("SELECT md5('bench-many-{count}')::uuid"))?;
        let file = bench.write_tokens(
            std::iter::once(id.as_str()),
            &format!("tokens-many-{count}.txt"),
        )?;
        rows.push(bench.http_scenario(
            &svc,
            &format!("F{count}"),
            &format!("GET list of {count} settings (one user)"),
            "list",
            Some(&file),
        )?);
    }

    let large_seed = bench.seed(small + 1, large)?;
    bench.db().settle()?;
    let sample = tokens.min(large);
    let large_tokens = bench.mint_tokens(large, sample, "tokens-large.txt")?;
    rows.push(scenario(&bench, &svc, "C", large, "get", &large_tokens)?);
    rows.push(scenario(&bench, &svc, "F", large, "list", &large_tokens)?);
    svc.stop();

    let p99 = |id: &str| rows.iter().find(|r| r.id == id).map(|r| r.m.p99_ms);
    let mut checks = String::from(
        "| check | p99 small | p99 large | large/small | flat (≤ 1.5×) |\n|---|---:|---:|---:|---|\n",
    );
    let mut checks_json = Vec::new();
    for scenario in ["C", "F"] {
        let (a, b) = (
            p99(&format!("{scenario}@{}", short(small))),
            p99(&format!("{scenario}@{}", short(large))),
        );
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        };
        let flat = ratio.map(|r| r <= FLAT);
        let _ = writeln!(
            checks,
            "| {scenario} p99, {} vs {} users | {} | {} | {} | {} |",
            short(small),
            short(large),
            fmt(a),
            fmt(b),
            fmt(ratio),
            match flat {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            }
        );
        checks_json.push(format!(
            "{{\"scenario\": \"{scenario}\", \"p99_small_ms\": {}, \"p99_large_ms\": {}, \
             \"ratio\": {}, \"flat\": {}}}",
            json(a),
            json(b),
            json(ratio),
            flat.map_or("null".to_owned(), |f| f.to_string())
        ));
    }

    let mut params = vec![
        (
            "small",
            format!("{small} users (seeded in {small_seed:.1} s)"),
        ),
        (
            "large",
            format!(
                "{large} users (the {} more seeded in {large_seed:.1} s)",
                large - small
            ),
        ),
        (
            "token sample",
            format!("{tokens} users per size, spread evenly"),
        ),
        ("cache", "off (both TTLs 0)".to_owned()),
    ];
    params.extend(bench.parameters());
    let generated = super::now_utc();
    let mut md =
        format!("# Scale check\n\nGenerated by `cargo xtask bench scale` on {generated}.\n\n");
    for (k, v) in machine.iter().chain(params.iter()) {
        let _ = writeln!(md, "- {k}: {v}");
    }
    md.push('\n');
    md.push_str(&report::table(&rows));
    md.push('\n');
    md.push_str(&checks);
    let json_text = format!(
        "{{\n  \"generated_at\": {},\n  \"machine\": {{{}}},\n  \"parameters\": {{{}}},\n  \
         \"scenarios\": [\n    {}\n  ],\n  \"checks\": [\n    {}\n  ]\n}}\n",
        report::json_str(&generated),
        super::kv_json(&machine),
        super::kv_json(&params),
        rows.iter()
            .map(report::row_json)
            .collect::<Vec<_>>()
            .join(",\n    "),
        checks_json.join(",\n    "),
    );
    let md_path = bench.out_dir().join("scale.md");
    let json_path = bench.out_dir().join("scale.json");
    report::write(&md_path, &md)?;
    report::write(&json_path, &json_text)?;
    println!("\n{md}");
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(ExitCode::SUCCESS)
}

fn scenario(
    bench: &Bench,
    svc: &super::Service,
    id: &str,
    users: u64,
    mode: &str,
    tokens: &Path,
) -> Result<Row, String> {
    let name = match mode {
        "get" => format!("GET one setting, {} users", short(users)),
        _ => format!("GET list of 20 settings, {} users", short(users)),
    };
    bench.http_scenario(
        svc,
        &format!("{id}@{}", short(users)),
        &name,
        mode,
        Some(tokens),
    )
}

/// 10000 → "10k", 1000000 → "1M".
fn short(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

fn json(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| format!("{v:.4}"))
}
