//! A project-local PostgreSQL cluster under `target/pg/<name>`: create, start, stop, inspect.
//!
//! Layout: `<dir>/data` (the data directory), `<dir>/log` (server log), `<dir>/port` (the TCP
//! port chosen at creation, re-chosen at start if something else took it). The server listens
//! on 127.0.0.1 only, with no Unix socket (socket paths under deep checkouts exceed OS limits).

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::pg_install::PgInstall;
use crate::process;

/// Whether a cluster must survive crashes (the dev cluster) or is thrown away (test runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    Ephemeral,
}

/// Where the project's clusters live: `target/pg` in the workspace.
pub fn clusters_root() -> Result<PathBuf, String> {
    Ok(crate::workspace::root()?.join("target").join("pg"))
}

pub struct Cluster {
    install: PgInstall,
    dir: PathBuf,
}

impl Cluster {
    pub fn new(install: PgInstall, dir: PathBuf) -> Self {
        Self { install, dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn port_file(&self) -> PathBuf {
        self.dir.join("port")
    }

    /// Whether `init` completed here (the port file is written last).
    pub fn is_initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file() && self.port_file().is_file()
    }

    /// Creates the cluster with initdb, replacing whatever a failed earlier attempt left behind.
    pub fn init(&self, durability: Durability) -> Result<(), String> {
        if self.dir.exists() {
            self.remove()?;
        }
        create_dir_traversable(&self.dir)?;
        self.install.hand_over(&self.dir)?;
        eprintln!("creating PostgreSQL cluster in {}", self.dir.display());
        let mut initdb = self.install.command("initdb");
        initdb.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        if durability == Durability::Ephemeral {
            initdb.arg("--no-sync");
        }
        process::output(&mut initdb)?;
        append(
            &self.data_dir().join("postgresql.conf"),
            &server_settings(durability),
        )?;
        self.write_port(free_port()?)
    }

    pub fn port(&self) -> Result<u16, String> {
        let file = self.port_file();
        let text = fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        text.trim()
            .parse()
            .map_err(|e| format!("{} does not hold a port number: {e}", file.display()))
    }

    fn write_port(&self, port: u16) -> Result<(), String> {
        let file = self.port_file();
        fs::write(&file, format!("{port}\n"))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))
    }

    pub fn url(&self) -> Result<String, String> {
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.port()?
        ))
    }

    pub fn is_running(&self) -> bool {
        self.data_dir().is_dir()
            && process::succeeds(
                self.install
                    .command("pg_ctl")
                    .arg("status")
                    .arg("-D")
                    .arg(self.data_dir()),
            )
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let mut port = self.port()?;
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            port = free_port()?;
            self.write_port(port)?;
        }
        let mut pg_ctl = self.install.command("pg_ctl");
        pg_ctl
            .args(["start", "-w", "-D"])
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-o", &format!("-p {port}")]);
        process::output(&mut pg_ctl)
            .map(drop)
            .map_err(|e| format!("{e}\n{}", self.log_tail()))
    }

    /// Stops the server (fast shutdown: open sessions are disconnected) and waits for it.
    pub fn stop(&self) -> Result<(), String> {
        let mut pg_ctl = self.install.command("pg_ctl");
        pg_ctl
            .args(["stop", "-w", "-m", "fast", "-D"])
            .arg(self.data_dir());
        process::output(&mut pg_ctl).map(drop)
    }

    /// Deletes the cluster's directory; the server must be stopped.
    pub fn remove(&self) -> Result<(), String> {
        fs::remove_dir_all(&self.dir)
            .map_err(|e| format!("cannot delete {}: {e}", self.dir.display()))
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log_file().display())
    }
}

fn server_settings(durability: Durability) -> String {
    let mut settings = String::from(
        "\n# Added by `cargo xtask`: TCP on loopback only, no Unix socket.\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = ''\n\
         max_connections = 200\n",
    );
    if durability == Durability::Ephemeral {
        // Throw-away test data: trade crash safety for speed.
        settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
    }
    settings
}

fn append(file: &Path, text: &str) -> Result<(), String> {
    fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot append to {}: {e}", file.display()))
}

/// A port that was free a moment ago: the OS picks it for a throw-away listener.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free TCP port on 127.0.0.1: {e}"))
}

/// Creates `dir` and its parents; its parent (`target/pg`) gets mode 0755 so that the
/// `postgres` user can reach the cluster even under a restrictive umask.
fn create_dir_traversable(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Some(pg_root) = dir.parent() {
            fs::set_permissions(pg_root, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot chmod {}: {e}", pg_root.display()))?;
        }
    }
    Ok(())
}
