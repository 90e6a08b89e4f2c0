//! The `user-settings` binary: `serve`, `migrate`, `token`, and `keys generate|status|rewrap`.

use std::{
    fs::File,
    io::{self, BufReader, BufWriter},
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use app::{Application, Config, startup, telemetry, tokens::Minter};
use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::services::RewrapOptions;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "user-settings",
    version,
    about = "Per-user settings and preferences service"
)]
struct Cli {
    /// YAML configuration file (keys under `user_settings:`).
    #[arg(long, global = true, env = "USER_SETTINGS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (migrates first unless disabled).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a signed HS256 token (development and tests).
    Token {
        #[command(flatten)]
        subjects: Subjects,
        /// Extra role; repeatable.
        #[arg(long, value_enum)]
        role: Vec<TokenRole>,
        /// Lifetime, e.g. 1h, 30m.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Encryption key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// Whom `token` signs for: one user, or every user of a file.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct Subjects {
    /// The user's UUID.
    #[arg(long)]
    sub: Option<Uuid>,
    /// A file of user UUIDs, one per line: prints one token per line, in the same order.
    #[arg(long, value_name = "FILE")]
    subjects_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenRole {
    Admin,
    Service,
    Operator,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh random key (64 hex chars).
    Generate,
    /// Count encrypted settings per key id.
    Status,
    /// Re-encrypt every setting not sealed with the current key.
    Rewrap {
        /// Report what would be re-encrypted without writing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per batch.
        #[arg(long, default_value_t = 500)]
        batch: u32,
        /// Time between progress lines when stderr is not a terminal (logs, CI), e.g. 5s.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        progress_interval: Duration,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Keys {
        command: KeysCommand::Generate,
    } = cli.command
    {
        println!("{}", adapter_crypto::generate_key_hex()?);
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            telemetry::init(config.log.format);
            Application::build(config)
                .await?
                .run_until_stopped()
                .await?;
        }
        Command::Migrate => {
            telemetry::init(config.log.format);
            let pool = startup::database_pool(&config)?;
            let report = adapter_postgres::migrate_pool(&pool).await?;
            eprintln!("{report}");
        }
        Command::Token {
            subjects,
            role,
            ttl,
        } => {
            let roles = role
                .iter()
                .map(|r| match r {
                    TokenRole::Admin => "admin",
                    TokenRole::Service => "service",
                    TokenRole::Operator => "operator",
                })
                .collect();
            let minter = Minter::new(&config.jwt, roles, ttl.as_secs())?;
            if let Some(file) = subjects.subjects_file {
                let subjects =
                    File::open(&file).with_context(|| format!("cannot read {}", file.display()))?;
                minter.mint_lines(BufReader::new(subjects), &mut BufWriter::new(io::stdout()))?;
            } else if let Some(sub) = subjects.sub {
                println!("{}", minter.mint(sub)?);
            }
        }
        Command::Keys { command } => {
            let pool = startup::database_pool(&config)?;
            let keyring = Arc::new(startup::keyring(&config)?);
            match command {
                KeysCommand::Generate => {}
                KeysCommand::Status => print!("{}", app::keys::status(&pool, keyring).await?),
                KeysCommand::Rewrap {
                    dry_run,
                    batch,
                    progress_interval,
                } => {
                    let stop = stop_on_ctrl_c();
                    let report = app::keys::rewrap(
                        &pool,
                        keyring,
                        RewrapOptions {
                            batch_size: batch,
                            dry_run,
                        },
                        &mut app::keys::Progress::on_stderr(progress_interval),
                        &stop,
                    )
                    .await?;
                    let verb = if dry_run { "would rewrap" } else { "rewrapped" };
                    println!(
                        "{verb} {} setting(s); {} changed concurrently (already fresh); {} failed",
                        report.rewrapped,
                        report.changed_concurrently,
                        report.failures.len()
                    );
                    for f in &report.failures {
                        println!("failed\t{}\t{}\t{}", f.user_id, f.key, f.reason);
                    }
                    if report.interrupted {
                        anyhow::bail!(
                            "interrupted; what is rewrapped stays so: run the same command \
                             again to resume"
                        );
                    }
                    if !report.failures.is_empty() {
                        anyhow::bail!(
                            "{} setting(s) could not be rewrapped",
                            report.failures.len()
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// A flag set by the first Ctrl-C, so that a long command stops after its current batch; a
/// second Ctrl-C quits at once.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
            eprintln!("\nstopping after the current batch (Ctrl-C again quits at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    stop
}
