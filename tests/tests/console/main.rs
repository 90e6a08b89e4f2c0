//! The support console in a real browser: headless Chromium, through WebDriver, against the
//! real service on port 0 and its own database. Screenshots go to `target/ui/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod relay;

use std::time::Duration;

use adapter_http::auth::mint_hs256;
use browser::{Browser, with_browser};
use e2e::{JWT_SECRET, TestApp, json_with_status, new_user};
use fantoccini::key::Key;
use relay::RecordingRelay;
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);
/// The plaintext of the user's secret: it must appear nowhere the console can reach.
const SECRET: &str = "sk-live-console-plaintext-0f9e8d7c";

/// A user with a preference, a plain setting, a secret, a device override and some history.
async fn seed(app: &TestApp, user: Uuid) {
    let token = app.token(user, &[]);
    let patch = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/users/me/preferences",
            Some(&token),
        )
        .json(&json!({"theme": "dark"}))
        .send()
        .await
        .unwrap();
    json_with_status(patch, 200).await;
    for value in ["light", "dark"] {
        let put = app
            .put(
                "/api/v1/users/me/settings/ui.theme",
                &token,
                &json!({"value": value}),
            )
            .await;
        assert!(put.status().is_success(), "{}", put.status());
    }
    let secret = app
        .put(
            "/api/v1/users/me/settings/custom.api_key",
            &token,
            &json!({"value": SECRET, "data_type": "encrypted", "category": "ui"}),
        )
        .await;
    assert!(secret.status().is_success(), "{}", secret.status());
    let device = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/users/me/devices/living-room-tv/preferences",
            Some(&token),
        )
        .json(&json!({"theme": "light"}))
        .send()
        .await
        .unwrap();
    json_with_status(device, 200).await;
}

/// Signs in with `token` and opens `user` (the preferences view).
async fn sign_in_and_open(browser: &Browser, base: &str, token: &str, user: Uuid) {
    browser
        .client
        .goto(&format!("{base}/admin/"))
        .await
        .unwrap();
    browser.type_into("#token", token).await;
    browser.click("#sign-in-form button[type=submit]").await;
    browser.type_into("#user-id", &user.to_string()).await;
    browser.click("#lookup button[type=submit]").await;
    browser.text_of("#view table", "theme").await;
}

#[tokio::test]
async fn support_sees_a_users_values_with_their_sources_and_secrets_only_as_encrypted() {
    let app = TestApp::spawn().await;
    let relay = RecordingRelay::start(&app.address).await;
    let (user, admin) = (new_user(), new_user());
    seed(&app, user).await;
    let admin_token = app.token(admin, &["admin"]);

    with_browser(DESKTOP.0, DESKTOP.1, async |browser| {
        sign_in_and_open(browser, &relay.url(), &admin_token, user).await;
        // Preferences: the user's own theme, the rest builtin.
        let theme = browser.text_of("#view tr[data-field=theme]", "theme").await;
        assert!(theme.contains("\"dark\"") && theme.contains("user"), "{theme}");
        browser.text_of("#view", "builtin").await;
        browser.screenshot("desktop-preferences").await;

        browser.click("button[data-view=settings]").await;
        let plain = browser.text_of("tr[data-key='ui.theme']", "dark").await;
        assert!(plain.contains("ui.theme"), "{plain}");
        let secret = browser
            .text_of("tr[data-key='custom.api_key']", "Encrypted, last changed")
            .await;
        assert!(!secret.contains(SECRET));
        // Times are the viewer's, with the UTC value on hover.
        let hover = browser
            .script("return document.querySelector(\"tr[data-key='ui.theme'] time\").title;")
            .await;
        assert!(hover.as_str().unwrap().ends_with("Z (UTC)"), "{hover}");
        browser.screenshot("desktop-settings").await;

        // Search by key narrows the list.
        browser.type_into("#settings-search", "api_key").await;
        browser.text_of("#settings-count", "1 of 2").await;

        // A device and its overrides.
        browser.click("button[data-view=devices]").await;
        browser.text_of("#view table", "living-room-tv").await;
        browser
            .click("button[aria-label='Show the overrides of living-room-tv']")
            .await;
        browser.text_of("#device-overrides", "\"light\"").await;

        // The history of the plain setting: both writes.
        browser.click("button[data-view=history]").await;
        browser.type_into("#history-key", "ui.theme").await;
        browser.click("#view form button[type=submit]").await;
        let history = browser.text_of("#history-results", "\"light\"").await;
        assert!(history.contains("\"dark\""), "{history}");

        // Nothing the page holds or received has the plaintext; the token is in session
        // storage only.
        let source = browser.client.source().await.unwrap();
        assert!(!source.contains(SECRET), "the plaintext is in the DOM");
        assert!(!relay.received().contains(SECRET), "the plaintext crossed the network");
        let stored = browser
            .script("return [sessionStorage.length, localStorage.length, document.cookie, location.href];")
            .await;
        assert_eq!(stored[0], 1);
        assert_eq!(stored[1], 0);
        assert_eq!(stored[2], "");
        assert!(!stored[3].as_str().unwrap().contains(&admin_token));
    })
    .await;
}

#[tokio::test]
async fn the_audit_trail_shows_the_reads_the_visit_itself_made() {
    let app = TestApp::spawn().await;
    let (user, admin, other_admin) = (new_user(), new_user(), new_user());
    seed(&app, user).await;
    // Someone else looked first.
    let earlier = app
        .get(
            &format!("/api/v1/admin/users/{user}/preferences"),
            &app.token(other_admin, &["admin"]),
        )
        .await;
    assert_eq!(earlier.status(), 200);
    let admin_token = app.token(admin, &["admin"]);

    with_browser(DESKTOP.0, DESKTOP.1, async |browser| {
        sign_in_and_open(browser, &app.address, &admin_token, user).await;
        browser.click("button[data-view=settings]").await;
        browser.text_of("tr[data-key='ui.theme']", "dark").await;
        browser.click("button[data-view=audit]").await;
        browser.text_of("#view table", "you").await;

        let shown = browser
            .script(
                "return [...document.querySelectorAll('#view tbody tr')].map(r => \
                 [r.dataset.actor, r.querySelector('.request-id')?.textContent ?? null]);",
            )
            .await;
        let recorded = app
            .query_json(&format!(
                "SELECT jsonb_build_array(actor_id, request_id) FROM shared.user_settings_audit \
                 WHERE subject_user_id = '{user}' AND action = 'admin_read' ORDER BY id DESC"
            ))
            .await;
        // Every record, newest first: this visit's three reads (the preferences, the
        // settings, this trail), then the other admin's.
        assert_eq!(shown.as_array().unwrap(), &recorded);
        let actors: Vec<&str> = recorded.iter().map(|r| r[0].as_str().unwrap()).collect();
        let me = admin.to_string();
        let other = other_admin.to_string();
        assert_eq!(actors, [&me, &me, &me, &other]);
        let mine = browser
            .script("return document.querySelectorAll('#view tr.mine').length;")
            .await;
        assert_eq!(mine, 3);
        browser.screenshot("desktop-audit").await;
    })
    .await;
}

#[tokio::test]
async fn the_main_view_is_usable_with_the_keyboard_alone_with_visible_focus() {
    let app = TestApp::spawn().await;
    let (user, admin) = (new_user(), new_user());
    seed(&app, user).await;
    let admin_token = app.token(admin, &["admin"]);

    with_browser(DESKTOP.0, DESKTOP.1, async |browser| {
        browser
            .client
            .goto(&format!("{}/admin/", app.address))
            .await
            .unwrap();
        browser.element("#token").await;
        // The page starts in the token field.
        assert_eq!(browser.focused().await, "token");
        browser.keys(&admin_token).await;
        browser.tab().await;
        assert_eq!(browser.focused().await, "Sign in");
        browser.enter().await;
        browser.element("#user-id").await;
        assert_eq!(browser.focused().await, "user-id");
        browser.keys(&user.to_string()).await;
        browser.enter().await;
        browser.text_of("#view table", "theme").await;

        // From the user id: the button, the chosen view's tab (one tab stop for the list),
        // then the arrow key to the next view.
        let mut path = Vec::new();
        for step in 0..3 {
            if step < 2 {
                browser.tab().await;
            } else {
                browser.keys(&char::from(Key::Right).to_string()).await;
            }
            path.push(browser.focused().await);
            let outline = browser
                .script(
                    "const s = getComputedStyle(document.activeElement); \
                     return [s.outlineStyle, parseFloat(s.outlineWidth)];",
                )
                .await;
            assert_ne!(outline[0], "none", "no visible focus on {path:?}");
            assert!(outline[1].as_f64().unwrap() >= 2.0, "{outline}");
        }
        assert_eq!(path, ["Open user", "tab-preferences", "tab-settings"]);
        browser.enter().await;
        browser.text_of("tr[data-key='ui.theme']", "dark").await;
        // Into the view: the category filter, the search, then the first row's history.
        browser.tab().await;
        assert_eq!(browser.focused().await, "settings-category");
        browser.tab().await;
        assert_eq!(browser.focused().await, "settings-search");
        browser.keys("ui.theme").await;
        browser.text_of("#settings-count", "1 of 2").await;
        browser.tab().await;
        assert_eq!(browser.focused().await, "History");
        browser.enter().await;
        browser.text_of("#history-results", "\"light\"").await;
        browser.screenshot("desktop-keyboard-history").await;
    })
    .await;
}

#[tokio::test]
async fn on_a_phone_the_console_fits_the_screen() {
    let app = TestApp::spawn().await;
    let (user, admin) = (new_user(), new_user());
    seed(&app, user).await;
    let admin_token = app.token(admin, &["admin"]);

    with_browser(PHONE.0, PHONE.1, async |browser| {
        sign_in_and_open(browser, &app.address, &admin_token, user).await;
        browser.click("button[data-view=settings]").await;
        browser
            .text_of("tr[data-key='custom.api_key']", "Encrypted")
            .await;
        let fits = browser
            .script(
                "return [innerWidth, document.documentElement.scrollWidth, \
                 getComputedStyle(document.querySelector('#view thead')).position];",
            )
            .await;
        assert_eq!(fits[0], PHONE.0);
        assert!(
            fits[1].as_u64().unwrap() <= u64::from(PHONE.0),
            "the page scrolls sideways: {fits}"
        );
        // Rows are cards: the column headings move into each cell.
        assert_eq!(fits[2], "absolute");
        browser
            .script("document.querySelector('#view .filters').scrollIntoView();")
            .await;
        browser.screenshot("phone-settings").await;
        browser.click("button[data-view=audit]").await;
        browser.text_of("#view table", "you").await;
        browser
            .script("document.querySelector('#view table').scrollIntoView();")
            .await;
        browser.screenshot("phone-audit").await;
    })
    .await;
}

#[tokio::test]
async fn a_token_without_the_admin_role_or_past_its_expiry_goes_back_to_sign_in() {
    let app = TestApp::spawn().await;
    let user = new_user();
    seed(&app, user).await;

    with_browser(DESKTOP.0, DESKTOP.1, async |browser| {
        let page = format!("{}/admin/", app.address);
        browser.client.goto(&page).await.unwrap();
        browser.type_into("#token", &app.token(user, &[])).await;
        browser.click("#sign-in-form button[type=submit]").await;
        browser
            .text_of("#sign-in-message", "does not have the admin role")
            .await;
        let kept = browser.script("return sessionStorage.length;").await;
        assert_eq!(kept, 0);

        // The page cannot verify a signature: the service refuses a forged admin token, and
        // the person is sent back to sign in.
        let forged = mint_hs256(
            &SecretString::from("another-secret-that-is-long-enough-1234"),
            new_user(),
            &["admin"],
            3600,
            None,
            None,
        )
        .unwrap();
        browser.type_into("#token", &forged).await;
        browser.click("#sign-in-form button[type=submit]").await;
        browser.type_into("#user-id", &user.to_string()).await;
        browser.click("#lookup button[type=submit]").await;
        browser
            .text_of("#sign-in-message", "Your session has ended")
            .await;
        let kept = browser.script("return sessionStorage.length;").await;
        assert_eq!(kept, 0);

        // A token that expires while the page is open signs the person out.
        let short = mint_hs256(
            &SecretString::from(JWT_SECRET),
            new_user(),
            &["admin"],
            3,
            None,
            None,
        )
        .unwrap();
        browser.type_into("#token", &short).await;
        browser.click("#sign-in-form button[type=submit]").await;
        let message = browser
            .script("return document.getElementById('sign-in-message').textContent;")
            .await;
        assert_eq!(message, "", "the short-lived token was refused");
        browser.element("#user-id").await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        browser.text_of("#sign-in-message", "expired").await;
        assert!(
            browser
                .element("#sign-in")
                .await
                .is_displayed()
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn a_database_outage_shows_a_message_and_the_view_comes_back_after_it() {
    let (app, database) = TestApp::spawn_behind_proxy(|c| {
        c.database.timeout = Duration::from_secs(1).try_into().unwrap();
    })
    .await;
    let (user, admin) = (new_user(), new_user());
    seed(&app, user).await;
    let admin_token = app.token(admin, &["admin"]);

    with_browser(DESKTOP.0, DESKTOP.1, async |browser| {
        sign_in_and_open(browser, &app.address, &admin_token, user).await;
        database.cut();
        browser.click("button[data-view=settings]").await;
        browser
            .text_of("#view [role=alert]", "cannot reach its database")
            .await;
        browser.screenshot("desktop-outage").await;
        database.restore();
        browser.click("#view [role=alert] button").await;
        browser.text_of("tr[data-key='ui.theme']", "dark").await;
    })
    .await;
}
