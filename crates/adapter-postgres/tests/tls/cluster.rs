//! A private PostgreSQL cluster with TLS, for one test: created in a temporary directory,
//! stopped and removed when dropped (also when the test fails).
//!
//! PostgreSQL refuses to run as root, so as root the server runs as `postgres`.

use std::{
    fs,
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub struct TlsCluster {
    dir: PathBuf,
    bindir: PathBuf,
    as_postgres: bool,
    port: u16,
}

impl TlsCluster {
    /// Creates and starts the cluster; panics (the test's report) when it cannot.
    pub fn start() -> Self {
        let bindir = bindir();
        let as_postgres = output(Command::new("id").arg("-u")) == "0";
        let dir = std::env::temp_dir().join(format!(
            "user-settings-tls-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let cluster = Self {
            dir,
            bindir,
            as_postgres,
            port,
        };
        cluster.write_certificates();
        if as_postgres {
            output(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(&cluster.dir),
            );
        }
        output(
            cluster
                .server_command("initdb")
                .arg("-D")
                .arg(cluster.data())
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]),
        );
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             fsync = off\nssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n",
            cert = cluster.dir.join("server.crt").display(),
            key = cluster.dir.join("server.key").display(),
        );
        append(&cluster.data().join("postgresql.conf"), &conf);
        // Only TLS connections are accepted.
        fs::write(
            cluster.data().join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .unwrap();
        output(
            cluster
                .server_command("pg_ctl")
                .arg("-D")
                .arg(cluster.data())
                .arg("-l")
                .arg(cluster.dir.join("log"))
                .args(["-w", "-t", "30", "start"]),
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing here (PEM).
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// A URL to this cluster through `host` with `sslmode` and, when given, `sslrootcert`.
    pub fn url(&self, host: &str, sslmode: &str, root: Option<PathBuf>) -> String {
        let mut url = format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={sslmode}",
            self.port
        );
        if let Some(root) = root {
            url.push_str(&format!("&sslrootcert={}", root.display()));
        }
        url
    }

    fn write_certificates(&self) {
        let ca = certificate_authority("user-settings test CA");
        let other = certificate_authority("another CA");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = params.signed_by(&key, &ca).unwrap();
        fs::write(self.ca(), ca.pem()).unwrap();
        fs::write(self.other_ca(), other.pem()).unwrap();
        fs::write(self.dir.join("server.crt"), server.pem()).unwrap();
        let key_file = self.dir.join("server.key");
        fs::write(&key_file, key.serialize_pem()).unwrap();
        // The server refuses a key file others can read.
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn server_command(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(exe);
            command
        } else {
            Command::new(exe)
        }
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("USER_SETTINGS_TEST_PG_BINDIR") {
        return dir.into();
    }
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|dir| has_initdb(dir));
    from_pg_config
        .or_else(|| {
            let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(Result::ok)
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
                .filter(|(_, dir)| has_initdb(dir))
                .collect();
            versions.sort();
            versions.pop().map(|(_, dir)| dir)
        })
        .expect(
            "PostgreSQL server binaries not found: set USER_SETTINGS_TEST_PG_BINDIR (cargo xtask \
             test does) or install the server package",
        )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn output(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}
