//! `cargo xtask bench abuse`: what one user flooding the service with maximum-size bulk writes
//! does to its memory and to everyone else's reads.
//!
//! One service serves both kinds of reads of the main benchmark: preferences from the cache
//! (like B) and one setting from the database (settings cache off, like C). The readers run
//! alone, then again while one user keeps `--abusers` bulk writes in flight, each as large as
//! the service accepts. The body is sized from the service's published limits and, since the
//! body limit itself is not published, by bisecting on 413; 429s of the abuser are refusals the
//! service may give on purpose and are counted apart from errors. The targets are reported,
//! never asserted. Writes `target/bench/abuse.{md,json}`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::{self, ScopedJoinHandle};

use clap::Args;
use serde_json::{Value, json};

use crate::load::{Measurement, WrkRun};
use crate::procstat::{self, Cores, Sample};
use crate::report::{self, opt};
use crate::service::{self, Service};
use crate::{Bench, count, seconds};

/// The service's peak RSS under abuse should stay below this (MiB).
const RSS_TARGET_MIB: f64 = 256.0;
/// The readers' p99 under abuse should stay within this multiple of their p99 alone.
const P99_TARGET_FACTOR: f64 = 2.0;
/// Keys of the abuser's items, in a category the service accepts by default.
const KEY_PREFIX: &str = "ui.bench.bulk.i";
/// A bulk write of several MiB may take long under load: an abuser's request is not abandoned
/// (and its connection re-opened) before the service answers.
const ABUSER_TIMEOUT_SECONDS: u64 = 60;
const READER_TIMEOUT_SECONDS: u64 = 5;

#[derive(Args)]
pub struct Options {
    /// Seeded users.
    #[arg(long, default_value = "10000", value_parser = count::<u64>)]
    users: u64,
    /// Measured time per phase.
    #[arg(long = "duration", default_value = "20", value_parser = seconds)]
    seconds: u64,
    /// Connections per kind of reader.
    #[arg(long, default_value = "16", value_parser = count::<usize>)]
    readers: usize,
    /// The abuser's concurrent bulk writes.
    #[arg(long, default_value = "64", value_parser = count::<usize>)]
    abusers: usize,
    /// Users the readers rotate over.
    #[arg(long, default_value = "10000", value_parser = count::<u64>)]
    tokens: u64,
}

pub fn run(options: &Options) -> Result<ExitCode, String> {
    let &Options {
        users,
        seconds,
        readers,
        abusers,
        tokens,
    } = options;
    let tokens = tokens.min(users);

    let bench = Bench::prepare(readers, seconds)?;
    let seed_seconds = bench.seed(1, users)?;
    bench.db().settle()?;
    let machine = report::machine();
    let reader_tokens = bench.mint_tokens(users, tokens, "tokens-readers.txt")?;
    let abuser_id = bench.db().query("SELECT md5('bench-abuser')::uuid")?;
    let abuser_tokens = bench.write_tokens(&abuser_id, "tokens-abuser.txt")?;

    let svc = bench.start_service_with("abuse", &[("USER_SETTINGS_CACHE_TTL", "0".to_owned())])?;
    bench.preflight(&svc, &reader_tokens)?;
    let body = BulkBody::size(&bench, &svc, &abuser_tokens)?;
    bench.warm_preferences(&svc, &reader_tokens, tokens)?;
    let alone = phase(&bench, &svc, &reader_tokens, None)?;
    let abuser = Abuser {
        tokens: &abuser_tokens,
        body: &body,
        connections: abusers,
    };
    let abused = phase(&bench, &svc, &reader_tokens, Some(&abuser))?;
    svc.stop();

    let mut params = vec![
        (
            "users",
            format!(
                "{users} (each: preferences + {} settings; seeded in {seed_seconds:.1} s)",
                crate::SETTINGS_PER_USER
            ),
        ),
        (
            "readers",
            format!(
                "2 wrk processes of {readers} connections each, over {tokens} users: \
                 GET preferences (cached) and GET one setting (settings cache off)"
            ),
        ),
        (
            "abuser",
            format!(
                "1 user, {abusers} connections, each PUT /api/v1/users/me/settings with {} items \
                 of {} bytes ({} bytes: the most the service accepts)",
                body.items, body.value_bytes, body.bytes
            ),
        ),
        ("duration per phase", format!("{seconds} s")),
    ];
    // The rest describes the main benchmark's per-scenario runs, not these phases.
    params.extend(
        bench
            .parameters()
            .into_iter()
            .filter(|(k, _)| matches!(*k, "PostgreSQL" | "wrk" | "service workers")),
    );
    let generated = report::now_utc();
    let md = markdown(&generated, &machine, &params, &alone, &abused);
    let results = json!({
        "alone": alone.json(),
        "under_abuse": abused.json(),
        "targets": {
            "peak_rss_under_abuse_mib_below": RSS_TARGET_MIB,
            "reader_errors": 0,
            "reader_p99_factor_at_most": P99_TARGET_FACTOR,
        },
    });
    let json = report::Json::new(&generated, &machine, &params, results);
    report::publish(bench.out_dir(), "abuse", &md, &json)
}

/// The abuser's request body, written to `target/bench/abuse-body.json` for wrk.
struct BulkBody {
    path: PathBuf,
    items: u64,
    value_bytes: u64,
    bytes: usize,
}

impl BulkBody {
    /// The largest bulk body of maximum-size values the service accepts: as many items as
    /// its published limits allow, fewer while it answers 413.
    fn size(bench: &Bench, svc: &Service, tokens: &Path) -> Result<Self, String> {
        let token = crate::first_token(tokens)?;
        let token = token.as_str();
        let (status, schema) = service::http(
            svc.addr(),
            "GET",
            "/api/v1/settings/schema",
            Some(token),
            None,
        )?;
        if status != 200 {
            return Err(format!(
                "GET /api/v1/settings/schema answered {status}: {schema:.400}"
            ));
        }
        let schema: Value = serde_json::from_str(&schema)
            .map_err(|e| format!("the settings schema is not JSON: {e}"))?;
        let limit = |name: &str| {
            schema["limits"][name]
                .as_u64()
                .filter(|n| *n > 2)
                .ok_or_else(|| format!("the settings schema publishes no limits.{name}"))
        };
        let value_bytes = limit("max_value_bytes")?;
        let max_items = limit("max_bulk_items")?;

        let accepts = |items: u64| -> Result<bool, String> {
            let body = bulk_json(items, value_bytes)?;
            let (status, answer) = service::http(
                svc.addr(),
                "PUT",
                "/api/v1/users/me/settings",
                Some(token),
                Some(&body),
            )?;
            eprintln!(
                "   bulk write of {items} items ({} bytes): {status}",
                body.len()
            );
            match status {
                200 => Ok(true),
                413 => Ok(false),
                _ => Err(format!(
                    "a bulk write of {items} items answered {status}, expected 200 or 413: \
                     {answer:.400}"
                )),
            }
        };
        eprintln!(
            "\n== sizing the abuser's bulk body ({max_items} items of {value_bytes} bytes at most)"
        );
        let mut accepted = 0;
        if accepts(max_items)? {
            accepted = max_items;
        } else {
            // Invariant: `accepted` items were accepted (or it is 0), `refused` were refused.
            let mut refused = max_items;
            while refused - accepted > 1 {
                let middle = accepted + (refused - accepted) / 2;
                if accepts(middle)? {
                    accepted = middle;
                } else {
                    refused = middle;
                }
            }
        }
        if accepted == 0 {
            return Err(
                "the service refuses a bulk write of a single maximum-size item".to_owned(),
            );
        }
        let body = bulk_json(accepted, value_bytes)?;
        let path = bench.out_dir().join("abuse-body.json");
        report::write(&path, &body)?;
        Ok(Self {
            path,
            items: accepted,
            value_bytes,
            bytes: body.len(),
        })
    }
}

/// A bulk body of `items` settings whose values serialize to exactly `value_bytes` bytes.
fn bulk_json(items: u64, value_bytes: u64) -> Result<String, String> {
    let filler = "x".repeat(usize::try_from(value_bytes - 2).unwrap_or(0));
    let settings: Vec<Value> = (0..items)
        .map(|i| {
            json!({
                "key": format!("{KEY_PREFIX}{i:04}"),
                "value": filler,
                "category": "ui",
                "data_type": "json",
            })
        })
        .collect();
    serde_json::to_string(&json!({ "settings": settings }))
        .map_err(|e| format!("rendering the bulk body: {e}"))
}

struct Abuser<'a> {
    tokens: &'a Path,
    body: &'a BulkBody,
    connections: usize,
}

/// One phase: the readers (and the abuser, if any) at the same time.
struct Phase {
    cached: Measurement,
    uncached: Measurement,
    abuser: Option<Measurement>,
    peak_rss_mib: Option<f64>,
    cores: Cores,
}

fn phase(
    bench: &Bench,
    svc: &Service,
    readers: &Path,
    abuser: Option<&Abuser>,
) -> Result<Phase, String> {
    eprintln!(
        "\n== {}",
        if abuser.is_some() {
            "readers while one user floods the service with bulk writes"
        } else {
            "readers alone"
        }
    );
    crate::wait_for_quiet_machine();
    procstat::reset_peak_rss(svc.pid());
    let postmaster = bench.db().postmaster_pid();
    let before = Sample::take(Some(svc.pid()), postmaster);
    let url = svc.url();
    let reader = |mode| WrkRun {
        wrk: &bench.wrk,
        script: "load.lua",
        url: &url,
        mode,
        tokens: Some(readers),
        body: None,
        threads: 1,
        connections: bench.connections,
        seconds: bench.seconds,
        timeout_seconds: READER_TIMEOUT_SECONDS,
    };
    let (cached, uncached, abuse) = thread::scope(|s| {
        let cached = s.spawn(|| reader("prefs").run());
        let uncached = s.spawn(|| reader("get").run());
        let abuse = abuser.map(|a| {
            let run = WrkRun {
                wrk: &bench.wrk,
                script: "abuse.lua",
                url: &url,
                mode: "bulk",
                tokens: Some(a.tokens),
                body: Some(&a.body.path),
                threads: 1,
                connections: a.connections,
                seconds: bench.seconds,
                timeout_seconds: ABUSER_TIMEOUT_SECONDS,
            };
            s.spawn(move || run.run())
        });
        (join(cached), join(uncached), abuse.map(join))
    });
    let after = Sample::take(Some(svc.pid()), postmaster);
    let (cached, uncached, abuser) = (cached?, uncached?, abuse.transpose()?);
    let generator_cpu = [Some(&cached), Some(&uncached), abuser.as_ref()]
        .into_iter()
        .flatten()
        .map(|m| m.generator_cpu)
        .sum::<Option<f64>>();
    let phase = Phase {
        cached,
        uncached,
        abuser,
        peak_rss_mib: procstat::peak_rss_mib(svc.pid()),
        cores: before.cores_until(&after, generator_cpu, None),
    };
    phase.print();
    Ok(phase)
}

fn join(handle: ScopedJoinHandle<'_, Result<Measurement, String>>) -> Result<Measurement, String> {
    handle
        .join()
        .map_err(|_| "a load generator's thread panicked".to_owned())?
}

fn errors(m: &Measurement) -> u64 {
    m.http_errors + m.other_errors
}

impl Phase {
    fn print(&self) {
        for (name, m) in [("cached", &self.cached), ("uncached", &self.uncached)] {
            eprintln!(
                "   {name} reads: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                m.per_second,
                m.p50_ms,
                m.p99_ms,
                errors(m)
            );
        }
        if let Some(m) = &self.abuser {
            eprintln!(
                "   abuser: {} answers, {} refused (429), {} other errors, {} socket errors; \
                 answers ≥ 400 by status: {}",
                m.requests,
                m.refused,
                m.http_errors,
                m.other_errors,
                by_status(m)
            );
        }
        eprintln!("   service peak RSS {} MiB", opt(self.peak_rss_mib, 1));
    }

    fn json(&self) -> Value {
        let reads = |m: &Measurement| {
            json!({
                "requests": m.requests,
                "requests_per_second": m.per_second,
                "p50_ms": m.p50_ms,
                "p99_ms": m.p99_ms,
                "max_ms": m.max_ms,
                "errors": errors(m),
            })
        };
        json!({
            "cached_reads": reads(&self.cached),
            "uncached_reads": reads(&self.uncached),
            "abuser": self.abuser.as_ref().map(|m| json!({
                "answers": m.requests,
                "accepted": accepted(m),
                "refused_429": m.refused,
                "other_http_errors": m.http_errors,
                "socket_errors": m.other_errors,
                "errors_by_status": m.statuses.iter()
                    .map(|(status, count)| (status.to_string(), json!(count)))
                    .collect::<serde_json::Map<_, _>>(),
                "p50_ms": m.p50_ms,
                "p99_ms": m.p99_ms,
            })),
            "service_peak_rss_mib": self.peak_rss_mib,
            "service_cpu_cores": self.cores.service,
            "postgres_cpu_cores": self.cores.db,
            "load_generator_cpu_cores": self.cores.generator,
            "other_cpu_cores": self.cores.other,
            "machine_cpu_cores": self.cores.machine,
        })
    }
}

/// The abuser's answers that were neither refusals nor errors.
fn accepted(m: &Measurement) -> u64 {
    m.requests.saturating_sub(m.refused + m.http_errors)
}

/// One figure of a phase, for the service's table.
type Figure = fn(&Phase) -> Option<f64>;

fn markdown(
    generated: &str,
    machine: &[(&str, String)],
    params: &[(&str, String)],
    alone: &Phase,
    abused: &Phase,
) -> String {
    let command = "cargo xtask bench abuse";
    let mut md = report::header("Abuse check", command, generated, machine, params);
    md.push_str(
        "\n| readers | p50 ms alone | p99 ms alone | errors alone | p50 ms under abuse | \
         p99 ms under abuse | errors under abuse | p99 under abuse / alone |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut p99_met = true;
    for (name, a, b) in [
        ("GET preferences (cached)", &alone.cached, &abused.cached),
        (
            "GET one setting (cache off)",
            &alone.uncached,
            &abused.uncached,
        ),
    ] {
        let factor = (a.p99_ms > 0.0).then(|| b.p99_ms / a.p99_ms);
        p99_met &= factor.is_some_and(|f| f <= P99_TARGET_FACTOR);
        let _ = writeln!(
            md,
            "| {name} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {} | {} |",
            a.p50_ms,
            a.p99_ms,
            errors(a),
            b.p50_ms,
            b.p99_ms,
            errors(b),
            opt(factor, 2),
        );
    }
    if let Some(m) = &abused.abuser {
        let _ = write!(
            md,
            "\n| abuser | answers | accepted | refused (429) | other errors | socket errors | \
             answers ≥ 400 by status | p50 ms | p99 ms |\n\
             |---|---:|---:|---:|---:|---:|---|---:|---:|\n\
             | bulk writes | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} |\n",
            m.requests,
            accepted(m),
            m.refused,
            m.http_errors,
            m.other_errors,
            by_status(m),
            m.p50_ms,
            m.p99_ms,
        );
    }
    md.push_str("\n| service | alone | under abuse |\n|---|---:|---:|\n");
    let figures: [(&str, Figure, usize); 6] = [
        ("peak RSS MiB (VmHWM)", |p| p.peak_rss_mib, 1),
        ("CPU service (cores)", |p| p.cores.service, 2),
        ("CPU PostgreSQL (cores)", |p| p.cores.db, 2),
        ("CPU wrk (cores)", |p| p.cores.generator, 2),
        ("CPU other processes (cores)", |p| p.cores.other, 2),
        ("CPU machine (cores)", |p| p.cores.machine, 2),
    ];
    for (name, figure, decimals) in figures {
        let (a, b) = (figure(alone), figure(abused));
        let _ = writeln!(
            md,
            "| {name} | {} | {} |",
            opt(a, decimals),
            opt(b, decimals)
        );
    }
    let reader_errors = errors(&abused.cached) + errors(&abused.uncached);
    let rss_met = abused.peak_rss_mib.map(|r| r < RSS_TARGET_MIB);
    let _ = write!(
        md,
        "\nTargets (reported, not asserted):\n\n\
         - service peak RSS under abuse < {RSS_TARGET_MIB:.0} MiB: {}\n\
         - readers' p99 under abuse within {P99_TARGET_FACTOR:.0}× of alone: {}\n\
         - reader errors under abuse = 0: {} ({reader_errors})\n",
        met(rss_met),
        met(Some(p99_met)),
        met(Some(reader_errors == 0)),
    );
    md
}

/// `503 ×12, 429 ×3`, or `none`.
fn by_status(m: &Measurement) -> String {
    if m.statuses.is_empty() {
        return "none".to_owned();
    }
    m.statuses
        .iter()
        .map(|(status, count)| format!("{status} ×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn met(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}
