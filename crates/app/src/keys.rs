//! The `keys` commands (generate, status, rewrap), the start-up check that every stored
//! envelope names a configured key, and how `rewrap` shows how far it is.

use std::io::{self, IsTerminal as _, Write};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use adapter_crypto::AesGcmKeyring;
use adapter_postgres::{PgEnvelopeStore, Pool};
use anyhow::bail;
use domain::{
    ports::EnvelopeStore,
    services::{KeyRotation, RewrapOptions, RewrapProgress, RewrapReport},
};
use indicatif::{ProgressBar, ProgressStyle};

/// Refuses to start when encrypted rows name a key id that is not configured: they could
/// never be read, and the operator most likely forgot a previous key.
///
/// # Errors
/// Names the missing kids and how many rows each holds (never key material).
pub async fn check_stored_kids(pool: &Pool, keyring: &AesGcmKeyring) -> anyhow::Result<()> {
    let counts = PgEnvelopeStore::new(pool.clone()).count_by_kid().await?;
    let missing: Vec<String> = counts
        .iter()
        .filter_map(|(kid, rows)| match kid {
            Some(kid) if !keyring.knows_kid(kid) => Some(format!("{kid} ({rows} rows)")),
            None => Some(format!("<no kid> ({rows} rows)")),
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "encrypted settings are sealed with key ids that no configured key has: {}. \
             Add those keys to USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS (or fix the rows).",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Rows per key id, current key marked.
///
/// # Errors
/// When the database fails.
pub async fn status(pool: &Pool, keyring: Arc<AesGcmKeyring>) -> anyhow::Result<String> {
    let current = domain::ports::SecretCipher::current_kid(keyring.as_ref());
    let rotation = KeyRotation::new(PgEnvelopeStore::new(pool.clone()), keyring.clone());
    let counts = rotation.status().await?;
    let total: u64 = counts.iter().map(|(_, rows)| rows).sum();
    let stale: u64 = counts
        .iter()
        .filter(|(kid, _)| kid.as_deref() != Some(current.as_str()))
        .map(|(_, rows)| rows)
        .sum();
    let mut out = format!(
        "{total} encrypted setting(s), {stale} not on the current key\n\
         current key: {current}\nconfigured keys: {}\n",
        keyring.kids().join(", ")
    );
    if counts.is_empty() {
        out.push_str("no encrypted settings\n");
    }
    for (kid, rows) in counts {
        let kid = kid.unwrap_or_else(|| "<none>".into());
        let note = if kid == current {
            "current"
        } else if keyring.knows_kid(&kid) {
            "previous: run `keys rewrap`"
        } else {
            "NOT CONFIGURED: unreadable"
        };
        out.push_str(&format!("{kid}\t{rows}\t{note}\n"));
    }
    Ok(out)
}

/// Re-encrypts every row not on the current key, showing its progress on `progress`; once
/// `stop` is set (Ctrl-C), ends after the current batch with `interrupted` in the report.
///
/// # Errors
/// When the database fails mid-run (a new run resumes).
pub async fn rewrap(
    pool: &Pool,
    keyring: Arc<AesGcmKeyring>,
    options: RewrapOptions,
    progress: &mut Progress,
    stop: &AtomicBool,
) -> anyhow::Result<RewrapReport> {
    let rotation = KeyRotation::new(PgEnvelopeStore::new(pool.clone()), keyring);
    let report = rotation
        .rewrap_with_progress(options, |p| {
            progress.show(p, options.dry_run);
            if stop.load(Ordering::Relaxed) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await;
    progress.finish();
    Ok(report?)
}

/// How `keys rewrap` says how far it is: a bar (done/total, rate, time left) on a terminal,
/// otherwise (logs, CI) a line with the same figures at most every `interval`, and one at
/// the end. The totals come first, in either case.
pub struct Progress {
    view: View,
    interval: Duration,
    started: Instant,
    last_line: Instant,
    latest: Option<RewrapProgress>,
}

enum View {
    Bar(Option<ProgressBar>),
    Lines(Box<dyn Write + Send>),
    Silent,
}

impl Progress {
    /// A bar when stderr is a terminal, else lines on stderr every `interval`.
    pub fn on_stderr(interval: Duration) -> Self {
        if io::stderr().is_terminal() {
            Self::new(View::Bar(None), interval)
        } else {
            Self::lines(Box::new(io::stderr()), interval)
        }
    }

    /// Lines on `out`: the totals, then one per `interval`, and one at the end.
    pub fn lines(out: Box<dyn Write + Send>, interval: Duration) -> Self {
        Self::new(View::Lines(out), interval)
    }

    /// Shows nothing.
    pub fn silent() -> Self {
        Self::new(View::Silent, Duration::MAX)
    }

    fn new(view: View, interval: Duration) -> Self {
        Self {
            view,
            interval,
            started: Instant::now(),
            last_line: Instant::now(),
            latest: None,
        }
    }

    fn show(&mut self, p: RewrapProgress, dry_run: bool) {
        let first = self.latest.is_none();
        self.latest = Some(p);
        if first {
            self.started = Instant::now();
            self.last_line = self.started;
            let totals = if dry_run {
                format!(
                    "rewrap (dry run): {} setting(s) not on the current key to check",
                    p.total
                )
            } else {
                format!(
                    "rewrap: {} setting(s) not on the current key to re-encrypt",
                    p.total
                )
            };
            match &mut self.view {
                View::Bar(bar) => {
                    eprintln!("{totals} (Ctrl-C stops after the current batch)");
                    *bar = Some(new_bar(p.total));
                }
                View::Lines(out) => {
                    let _ = writeln!(out, "{totals}");
                }
                View::Silent => {}
            }
            return;
        }
        match &mut self.view {
            View::Bar(Some(bar)) => {
                bar.set_length(p.total.max(p.done));
                bar.set_position(p.done);
            }
            View::Lines(out) if self.last_line.elapsed() >= self.interval => {
                let _ = writeln!(out, "{}", progress_line(p, self.started.elapsed()));
                self.last_line = Instant::now();
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        let Some(p) = self.latest else {
            return;
        };
        match &mut self.view {
            View::Bar(Some(bar)) => bar.finish_and_clear(),
            View::Lines(out) => {
                let _ = writeln!(
                    out,
                    "rewrap: {} of {} in {}",
                    p.done,
                    p.total,
                    seconds(self.started.elapsed())
                );
                let _ = out.flush();
            }
            _ => {}
        }
    }
}

/// The bar; `rate` is ours, indicatif's `per_sec` shows four decimals.
const BAR_TEMPLATE: &str = "[{bar:40}] {pos}/{len} settings, {rate}, {eta} left";

fn new_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE).map(|style| {
        style
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> ")
    }) {
        bar.set_style(style);
    }
    bar
}

/// `rewrap: 1000/25000 (4%), 812/s, about 30s left`.
fn progress_line(p: RewrapProgress, elapsed: Duration) -> String {
    let percent = (p.done.min(p.total) * 100)
        .checked_div(p.total)
        .unwrap_or(100);
    let rate = p.done as f64 / elapsed.as_secs_f64().max(1e-3);
    let left = if rate > 0.0 {
        let remaining = p.total.saturating_sub(p.done) as f64 / rate;
        format!("about {} left", seconds(Duration::from_secs_f64(remaining)))
    } else {
        "time left unknown".to_owned()
    };
    format!(
        "rewrap: {}/{} ({percent}%), {rate:.0}/s, {left}",
        p.done, p.total
    )
}

/// Whole seconds, as `1m 5s`.
fn seconds(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs_f64().round() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_template_is_valid() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
    }

    #[test]
    fn a_progress_line_has_done_total_rate_and_time_left() {
        let line = progress_line(
            RewrapProgress {
                total: 1000,
                done: 250,
            },
            Duration::from_secs(5),
        );
        assert_eq!(line, "rewrap: 250/1000 (25%), 50/s, about 15s left");
    }
}
