//! The service under test: the release binary started with production-like configuration on
//! a free loopback port, stopped (SIGTERM, then SIGKILL) when dropped; and a minimal HTTP/1.1
//! client for readiness checks and pre-flight requests.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use xtask::process;

/// A running instance of `user-settings serve`.
pub struct Service {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// From spawning the process to its first `/health/ready` 200.
    ready_after: Duration,
}

/// The service binary without the caller's `USER_SETTINGS_*`, `USER_PREFERENCES_*` and
/// `RUST_LOG` variables, so that a run is reproducible.
pub fn command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| {
            n.starts_with("USER_SETTINGS_") || n.starts_with("USER_PREFERENCES_") || n == "RUST_LOG"
        }) {
            cmd.env_remove(name);
        }
    }
    cmd
}

impl Service {
    /// Starts `cmd serve` (a [`command`] with its configuration) on a free port, logging to
    /// `log`, and waits until `/health/ready` answers 200.
    pub fn start(mut cmd: Command, log: &Path) -> Result<Self, String> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let out = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        cmd.arg("serve")
            .env("USER_SETTINGS_BIND", addr.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        eprintln!("$ {}  (log: {})", process::display(&cmd), log.display());
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", cmd.get_program().display()))?;
        let mut service = Self {
            child,
            addr,
            log: log.to_path_buf(),
            ready_after: Duration::ZERO,
        };
        service.wait_ready(Duration::from_secs(60))?;
        service.ready_after = spawned.elapsed();
        Ok(service)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long the service took from exec to its first `/health/ready` 200 (within the
    /// 2 ms the readiness is polled at).
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the service exited during start-up ({status})\n{}",
                    self.log_tail()
                ));
            }
            // Ready, not merely live: the database answered, so requests can be served.
            if matches!(
                http(self.addr, "GET", "/health/ready", None, None),
                Ok((200, _))
            ) {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "the service was not ready within {limit:?}\n{}",
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log.display())
    }

    /// Stops the service gracefully (SIGTERM), killing it if it has not exited in 15 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: the service ignored SIGTERM for 15 s; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free TCP port on 127.0.0.1: {e}"))
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`): status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> Result<(u16, String), String> {
    let io = |e: std::io::Error| format!("{method} {path}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = json_body.unwrap_or("");
    if json_body.is_some() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    // A server refusing a large body (413) may answer and close before reading all of it:
    // its answer counts, not the failed write.
    let written = stream.write_all(request.as_bytes());
    let mut response = String::new();
    if let Err(e) = stream.read_to_string(&mut response) {
        return Err(io(written.err().unwrap_or(e)));
    }
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: not an HTTP response: {response:.200}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
