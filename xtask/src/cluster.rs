//! A project-local PostgreSQL cluster: create, start, stop, inspect; where a checkout's clusters
//! live; throw-away clusters for test and benchmark runs.
//!
//! Layout: `<dir>/data` (the data directory), `<dir>/log` (server log), `<dir>/port` (the TCP
//! port chosen at creation, re-chosen at start if something else took it). The server listens
//! on 127.0.0.1 only, with no Unix socket (socket paths under deep checkouts exceed OS limits).

use std::env;
use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pg_install::PgInstall;
use crate::{process, workspace};

/// Whether a cluster must survive crashes (the dev cluster) or is thrown away (test runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    Ephemeral,
}

/// Where the clusters of one checkout live: `<checkout>/target/pg`, unless the server runs as
/// the `postgres` user (we are root) and that user cannot reach it, as in a checkout under
/// root's home (mode 0700). Then they live in `<temp>/user-settings-pg-<hash of the checkout
/// path>`, mode 0700 and owned by `postgres`: a stable name, so that the dev cluster is found
/// again, and one per checkout, so that checkouts do not share clusters.
pub struct ClusterRoots {
    local: PathBuf,
    temp: PathBuf,
}

impl ClusterRoots {
    /// The roots of this workspace.
    pub fn of_workspace() -> Result<Self, String> {
        Ok(Self::of(&workspace::root()?))
    }

    pub fn of(checkout: &Path) -> Self {
        let hash = fnv1a(checkout.to_string_lossy().as_bytes());
        Self {
            local: checkout.join("target").join("pg"),
            temp: env::temp_dir().join(format!("user-settings-pg-{hash:016x}")),
        }
    }

    /// Every directory that may hold this checkout's clusters.
    pub fn all(&self) -> [&Path; 2] {
        [&self.local, &self.temp]
    }

    /// The directory for a new cluster, created: `target/pg` (mode 0755, so that `postgres`
    /// can reach the cluster even under a restrictive umask) if the server's user can reach
    /// it, else the temporary one.
    pub fn for_new(&self, install: &PgInstall) -> Result<PathBuf, String> {
        create_dir_traversable(&self.local)?;
        if install.can_reach(&self.local) {
            return Ok(self.local.clone());
        }
        install.create_private_dir(&self.temp)?;
        eprintln!(
            "the `postgres` user cannot reach {}: keeping the cluster in {}",
            self.local.display(),
            self.temp.display()
        );
        Ok(self.temp.clone())
    }

    /// The cluster `name` where it was created, else wherever a remnant of a failed
    /// creation is, else (a directory that does not exist) in `target/pg`. Creates nothing.
    pub fn locate(&self, name: &str) -> PathBuf {
        let dirs = self.all().map(|root| root.join(name));
        dirs.iter()
            .find(|dir| is_initialised(dir))
            .or_else(|| dirs.iter().find(|dir| dir.exists()))
            .unwrap_or(&dirs[0])
            .clone()
    }

    /// The cluster `name` where it was created, else where a new one goes (created).
    pub fn place(&self, name: &str, install: &PgInstall) -> Result<PathBuf, String> {
        let existing = self.locate(name);
        if is_initialised(&existing) {
            Ok(existing)
        } else {
            Ok(self.for_new(install)?.join(name))
        }
    }

    /// Removes the temporary root once it holds no cluster any more.
    pub fn remove_temp_if_empty(&self) {
        // Fails, as it should, while the directory holds anything.
        let _ = fs::remove_dir(&self.temp);
    }
}

/// 64-bit FNV-1a: a hash that, unlike std's `DefaultHasher`, is the same in every Rust release.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
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

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn port_file(&self) -> PathBuf {
        self.dir.join("port")
    }

    /// Whether `init` completed here.
    pub fn is_initialised(&self) -> bool {
        is_initialised(&self.dir)
    }

    /// Creates the cluster with initdb, replacing whatever a failed earlier attempt left behind.
    pub fn init(&self, durability: Durability) -> Result<(), String> {
        if self.dir.exists() {
            self.remove()?;
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
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

/// Whether `init` completed in the cluster directory `dir` (the port file is written last).
fn is_initialised(dir: &Path) -> bool {
    dir.join("data").join("PG_VERSION").is_file() && dir.join("port").is_file()
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

/// Creates `dir` and its parents, with `dir` itself mode 0755.
fn create_dir_traversable(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The database of a run: `DATABASE_URL` when set, else a throw-away cluster `<prefix>-<pid>`
/// with `settings` added to its configuration (returned: dropping it deletes the cluster).
pub fn database(
    install: &Result<PgInstall, String>,
    prefix: &str,
    settings: &str,
) -> Result<(Option<EphemeralCluster>, String), String> {
    match env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            eprintln!("using DATABASE_URL from the environment");
            Ok((None, url))
        }
        _ => {
            let roots = ClusterRoots::of_workspace()?;
            let cluster = EphemeralCluster::start(install.clone()?, roots, prefix, settings)?;
            let url = cluster.cluster().url()?;
            Ok((Some(cluster), url))
        }
    }
}

/// A throw-away cluster `<root>/<prefix>-<pid>`, stopped and deleted on drop, also when the
/// run fails or xtask returns early with an error.
pub struct EphemeralCluster {
    cluster: Cluster,
    roots: ClusterRoots,
}

impl EphemeralCluster {
    /// Creates and starts the cluster, with `settings` appended to its `postgresql.conf`;
    /// first discards the clusters of this prefix that killed runs left behind.
    pub fn start(
        install: PgInstall,
        roots: ClusterRoots,
        prefix: &str,
        settings: &str,
    ) -> Result<Self, String> {
        remove_orphans(&roots, &install, prefix);
        let dir = roots
            .for_new(&install)?
            .join(format!("{prefix}-{}", std::process::id()));
        let ephemeral = Self {
            cluster: Cluster::new(install, dir),
            roots,
        };
        ephemeral.cluster.init(Durability::Ephemeral)?;
        if !settings.is_empty() {
            append(
                &ephemeral.cluster.data_dir().join("postgresql.conf"),
                settings,
            )?;
        }
        ephemeral.cluster.start()?;
        Ok(ephemeral)
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for EphemeralCluster {
    fn drop(&mut self) {
        discard(&self.cluster);
        self.roots.remove_temp_if_empty();
    }
}

fn discard(cluster: &Cluster) {
    // Cleanup problems are reported, not raised: they must not hide the run's own outcome.
    if cluster.is_running()
        && let Err(e) = cluster.stop()
    {
        eprintln!(
            "warning: could not stop the cluster in {}: {e}",
            cluster.dir().display()
        );
    }
    if cluster.dir().exists()
        && let Err(e) = cluster.remove()
    {
        eprintln!("warning: {e}");
    }
}

/// Discards clusters `<prefix>-<pid>` of xtask runs that were killed (e.g. by Ctrl-C) before
/// cleaning up, in every root of the checkout.
fn remove_orphans(roots: &ClusterRoots, install: &PgInstall, prefix: &str) {
    for root in roots.all() {
        let Ok(entries) = fs::read_dir(root) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|name| name.strip_prefix(prefix)?.strip_prefix('-'))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !process_exists(pid) {
                eprintln!("removing orphaned cluster {}", entry.path().display());
                discard(&Cluster::new(install.clone(), entry.path()));
            }
        }
    }
}

fn process_exists(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        proc.join(pid.to_string()).exists()
    } else {
        process::succeeds(Command::new("ps").arg("-p").arg(pid.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// The machine's PostgreSQL; `None` (the test is skipped) only where xtask's test runner
    /// found none either, as when the tests run against a DATABASE_URL server alone.
    fn install() -> Result<Option<PgInstall>, String> {
        match PgInstall::find() {
            Ok(install) => Ok(Some(install)),
            Err(_) if env::var_os("USER_SETTINGS_TEST_PG_BINDIR").is_none() => {
                eprintln!("no PostgreSQL server binaries: skipped");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A checkout path inside a fresh directory of mode 0700, as a clone in root's home;
    /// the directory is deleted on drop.
    struct PrivateHome(PathBuf);

    impl PrivateHome {
        fn new() -> Self {
            use std::os::unix::fs::DirBuilderExt as _;
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let home =
                env::temp_dir().join(format!("xtask-private-home-{}-{nanos}", std::process::id()));
            fs::DirBuilder::new().mode(0o700).create(&home).unwrap();
            fs::create_dir_all(home.join("clone").join("target")).unwrap();
            Self(home)
        }

        fn checkout(&self) -> PathBuf {
            self.0.join("clone")
        }
    }

    impl Drop for PrivateHome {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn ephemeral_cluster_of_a_checkout_in_a_private_directory_serves_and_is_removed()
    -> Result<(), String> {
        let Some(install) = install()? else {
            return Ok(());
        };
        let home = PrivateHome::new();
        let roots = ClusterRoots::of(&home.checkout());
        let ephemeral =
            EphemeralCluster::start(install, ClusterRoots::of(&home.checkout()), "test", "")?;
        let dir = ephemeral.cluster().dir().to_path_buf();
        let port = ephemeral.cluster().port()?;
        TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("the cluster in {} does not accept: {e}", dir.display()))?;
        drop(ephemeral);

        assert!(!dir.exists(), "{} is left behind", dir.display());
        assert!(
            !roots.temp.exists(),
            "{} is left behind",
            roots.temp.display()
        );
        Ok(())
    }

    #[test]
    fn orphaned_cluster_in_the_temporary_root_is_removed() -> Result<(), String> {
        let Some(install) = install()? else {
            return Ok(());
        };
        let home = PrivateHome::new();
        let roots = ClusterRoots::of(&home.checkout());
        install.create_private_dir(&roots.temp)?;
        // Above Linux's largest pid: no process has it.
        let orphan = roots.temp.join("test-4000000000");
        fs::create_dir_all(orphan.join("data")).unwrap();

        remove_orphans(&roots, &install, "test");

        let left = orphan.exists();
        let _ = fs::remove_dir_all(&roots.temp);
        assert!(!left, "{} is left behind", orphan.display());
        Ok(())
    }

    #[test]
    fn checkouts_get_distinct_stable_temporary_roots() {
        let a = ClusterRoots::of(Path::new("/root/a/user-settings"));
        assert_eq!(
            a.temp,
            ClusterRoots::of(Path::new("/root/a/user-settings")).temp
        );
        assert_ne!(
            a.temp,
            ClusterRoots::of(Path::new("/root/b/user-settings")).temp
        );
    }
}
