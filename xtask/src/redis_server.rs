//! A throw-away `redis-server` for the tests of the shared rate limiter: on a free loopback
//! port, persisting nothing, stopped when dropped (also when the tests fail).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Tells the tests where the Redis-protocol server is.
pub const URL_VAR: &str = "USER_SETTINGS_TEST_REDIS_URL";

/// How to get the server when it is missing.
const INSTALL_HINT: &str = "install it (Debian/Ubuntu: `apt-get install redis-server`, \
     macOS: `brew install redis`), or set USER_SETTINGS_TEST_REDIS_URL to a Redis, Valkey or \
     Dragonfly server";

/// A running server; dropping it stops it.
pub struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    /// Starts `redis-server` from `PATH` and waits until it accepts connections.
    pub fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free port for redis-server: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start redis-server ({e}): {INSTALL_HINT}"))?;
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not accept connections within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("started redis-server on 127.0.0.1:{port}");
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
