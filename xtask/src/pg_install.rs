//! Finds the machine's PostgreSQL server binaries and runs them as a user PostgreSQL accepts.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process;

const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, \
via `pg_config --bindir`, or under /usr/lib/postgresql/*/bin.\n\
Install them: Debian/Ubuntu `apt-get install postgresql`, Fedora `dnf install postgresql-server`, \
macOS `brew install postgresql@15`; or set DATABASE_URL to an existing server.";

/// A PostgreSQL installation: where its binaries are and who must run them.
#[derive(Debug, Clone)]
pub struct PgInstall {
    bindir: PathBuf,
    /// PostgreSQL refuses to run as root, so then the server runs as the `postgres` user.
    as_postgres_user: bool,
}

impl PgInstall {
    /// Locates the binaries: `initdb` on PATH, else `pg_config --bindir`, else the newest
    /// `/usr/lib/postgresql/<version>/bin`.
    pub fn find() -> Result<Self, String> {
        let bindir = bindir_from_path()
            .or_else(bindir_from_pg_config)
            .or_else(bindir_from_debian_layout)
            .ok_or_else(|| INSTALL_HINT.to_owned())?;
        let as_postgres_user = is_root()?;
        if as_postgres_user && !process::succeeds(Command::new("id").args(["-u", "postgres"])) {
            return Err("running as root, but PostgreSQL refuses to run as root and there is \
                        no `postgres` user to run it as; create one (e.g. `useradd --system postgres`)"
                .to_owned());
        }
        Ok(Self {
            bindir,
            as_postgres_user,
        })
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// A command for one of the server binaries (`initdb`, `pg_ctl`), run as the right user.
    pub fn command(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        if self.as_postgres_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(exe);
            cmd
        } else {
            Command::new(exe)
        }
    }

    /// Makes `dir` owned by the user that runs the server (a no-op unless running as root).
    pub fn hand_over(&self, dir: &Path) -> Result<(), String> {
        if !self.as_postgres_user {
            return Ok(());
        }
        process::output(Command::new("chown").args(["-R", "postgres:"]).arg(dir))?;
        // Every parent directory must be traversable by `postgres`, or initdb fails obscurely.
        if !process::succeeds(
            Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(dir),
        ) {
            return Err(format!(
                "the `postgres` user cannot write {}: make its parent directories \
                 traversable (e.g. `chmod o+x` on each); tests can use DATABASE_URL instead",
                dir.display()
            ));
        }
        Ok(())
    }

    /// Whether the server's user can traverse `dir` (always, unless that is `postgres`).
    pub fn can_reach(&self, dir: &Path) -> bool {
        !self.as_postgres_user
            || process::succeeds(
                Command::new("runuser")
                    .args(["-u", "postgres", "--", "test", "-x"])
                    .arg(dir),
            )
    }

    /// Creates `dir` (if needed) as a private directory of the server's user: mode 0700, owned
    /// by `postgres` when that is who runs the server. An existing `dir` must be a directory
    /// of ours or of `postgres` (not, say, a symlink someone planted in a shared /tmp).
    pub fn create_private_dir(&self, dir: &Path) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("cannot create {}: {e}", dir.display());
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(fail(e)),
            }
            let meta = std::fs::symlink_metadata(dir).map_err(fail)?;
            let me: u32 = process::output(Command::new("id").arg("-u"))?
                .parse()
                .map_err(|e| format!("`id -u` printed no number: {e}"))?;
            let mut owners = vec![me];
            if self.as_postgres_user {
                owners.push(
                    process::output(Command::new("id").args(["-u", "postgres"]))?
                        .parse()
                        .map_err(|e| format!("`id -u postgres` printed no number: {e}"))?,
                );
            }
            if !meta.is_dir() || !owners.contains(&meta.uid()) {
                return Err(format!(
                    "{} exists but is not a directory owned by us or by `postgres`; remove it",
                    dir.display()
                ));
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir).map_err(fail)?;
        if self.as_postgres_user {
            process::output(Command::new("chown").arg("postgres:").arg(dir))?;
        }
        if !self.can_reach(dir) {
            return Err(format!(
                "the `postgres` user cannot reach {} either; set DATABASE_URL to an existing server",
                dir.display()
            ));
        }
        Ok(())
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// The directory of `initdb` on PATH, symlinks resolved so that it holds `pg_ctl` and `postgres` too.
fn bindir_from_path() -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .filter(|exe| exe.is_file())
        .filter_map(|exe| exe.canonicalize().ok())
        .filter_map(|exe| exe.parent().map(Path::to_path_buf))
        .find(|dir| has_server_binaries(dir))
}

fn bindir_from_pg_config() -> Option<PathBuf> {
    let dir = PathBuf::from(process::output(Command::new("pg_config").arg("--bindir")).ok()?);
    has_server_binaries(&dir).then_some(dir)
}

fn bindir_from_debian_layout() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let dir = entry.path().join("bin");
            has_server_binaries(&dir).then_some((version, dir))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, dir)| dir)
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> Result<bool, String> {
    Ok(process::output(Command::new("id").arg("-u"))? == "0")
}
