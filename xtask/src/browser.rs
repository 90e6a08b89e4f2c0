//! Headless Chromium for the support console's browser tests: its WebDriver server
//! (`chromedriver`) on a free loopback port, stopped when dropped. When the browser or the
//! driver is missing it is installed from Debian's packages if this process may (root, with
//! apt-get); otherwise the error names the exact command.

use std::env;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{pg_install, process};

/// Tells the tests where the WebDriver server is.
pub const WEBDRIVER_VAR: &str = "USER_SETTINGS_TEST_WEBDRIVER_URL";
/// Tells the tests which browser binary the driver should start.
pub const CHROMIUM_VAR: &str = "USER_SETTINGS_TEST_CHROMIUM";

/// The Debian packages of the browser and its driver.
const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];
const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];
const INSTALL_HINT: &str = "the support console's browser tests need Chromium and ChromeDriver: \
     install them (Debian/Ubuntu: `sudo apt-get install -y chromium chromium-driver`; \
     elsewhere a Chrome or Chromium with the chromedriver of the same version on PATH), or set \
     USER_SETTINGS_TEST_WEBDRIVER_URL to a running WebDriver server that drives Chromium";

/// A running `chromedriver`; dropping it stops it.
pub struct WebDriver {
    child: Child,
    url: String,
    browser: PathBuf,
}

impl WebDriver {
    /// Finds (or installs) Chromium and ChromeDriver, then starts the driver on a free
    /// loopback port and waits until it accepts connections.
    pub fn start() -> Result<Self, String> {
        let (browser, driver) = match (find(&BROWSERS), find(&["chromedriver"])) {
            (Some(browser), Some(driver)) => (browser, driver),
            _ => {
                install()?;
                find(&BROWSERS)
                    .zip(find(&["chromedriver"]))
                    .ok_or_else(|| format!("still not found after installing: {INSTALL_HINT}"))?
            }
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free port for chromedriver: {e}"))?
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start {} ({e}): {INSTALL_HINT}", driver.display()))?;
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            browser,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not accept connections within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("started chromedriver on 127.0.0.1:{port}");
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The browser the tests should ask the driver for.
    pub fn browser(&self) -> &Path {
        &self.browser
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first of `names` on `PATH`.
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    names.iter().find_map(|name| {
        env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// `apt-get install -y chromium chromium-driver`, as root only (refreshing the package lists
/// once when the first try cannot find the packages).
fn install() -> Result<(), String> {
    let apt = find(&["apt-get"]);
    let (Some(apt), true) = (apt, pg_install::is_root().unwrap_or(false)) else {
        return Err(INSTALL_HINT.to_owned());
    };
    eprintln!("installing {} with apt-get", PACKAGES.join(" "));
    let install = || {
        Command::new(&apt)
            .args(["install", "-y", "--no-install-recommends"])
            .args(PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    if install() {
        return Ok(());
    }
    process::run(Command::new(&apt).arg("update"))?;
    if install() {
        Ok(())
    } else {
        Err(format!("apt-get could not install them: {INSTALL_HINT}"))
    }
}
