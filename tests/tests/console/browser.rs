//! Headless Chromium through the WebDriver server `cargo xtask test` starts
//! (`USER_SETTINGS_TEST_WEBDRIVER_URL`), with the few helpers the console's tests share.

use std::{panic::AssertUnwindSafe, path::PathBuf, time::Duration};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, key::Key};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long a test waits for the page to show something.
const PATIENCE: Duration = Duration::from_secs(30);

/// One browser window.
pub struct Browser {
    pub client: Client,
}

/// Runs `test` in a new window of `width`×`height`, closing the window also when it fails (a
/// window left open would outlive the test).
pub async fn with_browser(width: u32, height: u32, test: impl AsyncFnOnce(&Browser)) {
    let browser = Browser::open(width, height).await;
    let outcome = AssertUnwindSafe(test(&browser)).catch_unwind().await;
    browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

impl Browser {
    /// A new headless window of `width`×`height` CSS pixels.
    ///
    /// # Panics
    /// When no WebDriver server is configured or it cannot start the browser.
    pub async fn open(width: u32, height: u32) -> Self {
        let webdriver = std::env::var("USER_SETTINGS_TEST_WEBDRIVER_URL").unwrap_or_else(|_| {
            panic!(
                "USER_SETTINGS_TEST_WEBDRIVER_URL is not set. Run the tests with `cargo xtask \
                 test`, which starts chromedriver (installing Chromium when it may), or start \
                 `chromedriver --port=9515` and set it to http://127.0.0.1:9515"
            )
        });
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--disable-extensions",
                "--no-first-run",
                "--lang=en-US",
                "--force-device-scale-factor=1",
                format!("--window-size={width},{height}"),
            ],
        });
        if let Ok(binary) = std::env::var("USER_SETTINGS_TEST_CHROMIUM") {
            options["binary"] = json!(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("the WebDriver server starts a browser");
        let browser = Self { client };
        // The window's inner size is what the page lays out in.
        browser.fit_viewport(width, height).await;
        browser
    }

    /// Resizes the window so that the page's viewport is `width`×`height`.
    pub async fn fit_viewport(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let dx = i64::from(width) - inner[0].as_i64().unwrap();
        let dy = i64::from(height) - inner[1].as_i64().unwrap();
        if dx != 0 || dy != 0 {
            let outer = |size: u32, d: i64| u32::try_from(i64::from(size) + d).unwrap();
            self.client
                .set_window_size(outer(width, dx), outer(height, dy))
                .await
                .unwrap();
        }
    }

    /// Runs `body` as a function in the page and returns its result.
    pub async fn script(&self, body: &str) -> Value {
        self.client.execute(body, Vec::new()).await.unwrap()
    }

    /// Waits until the element `css` matches is shown.
    pub async fn element(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                return element;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} was never shown"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element `css` matches is shown and its text contains `text`; returns
    /// its text.
    pub async fn text_of(&self, css: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                let shown = element.text().await.unwrap_or_default();
                if shown.contains(text) {
                    return shown;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{css} shows {shown:?}, not {text:?}"
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} never showed {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the element `css` matches, in place of what it held.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    /// Clicks the element `css` matches.
    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    /// Sends keys to whatever has focus.
    pub async fn keys(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(keys)
            .await
            .unwrap();
    }

    /// Presses Tab.
    pub async fn tab(&self) {
        self.keys(&char::from(Key::Tab).to_string()).await;
    }

    /// Presses Enter.
    pub async fn enter(&self) {
        self.keys(&char::from(Key::Enter).to_string()).await;
    }

    /// The focused element's id, or its text when it has none.
    pub async fn focused(&self) -> String {
        self.script(
            "const e = document.activeElement; \
             return e.id || (e.textContent || '').trim();",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Saves a screenshot as `target/ui/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Closes the window and ends the session.
    async fn close(self) {
        let _ = self.client.close().await;
    }
}
