//! Keyset pagination of listings: pages in key order, without gaps or overlaps.

use adapter_postgres::testing::TestDatabase;
use domain::{
    ports::SettingsRepository,
    settings::{Category, Page},
};
use serde_json::json;

use crate::support::{PutSetting, key, new_user, settings_repo, write_in};

#[tokio::test]
async fn pages_after_a_key_continue_in_key_order_without_overlap() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    for raw in ["c.x", "a.x", "e.x", "b.x", "d.x"] {
        repo.put(user, raw, json!(1)).await;
    }

    let mut seen = Vec::new();
    let mut page = Page::first(2);
    loop {
        let found = repo.list(user, None, page.clone()).await.unwrap();
        let Some(last) = found.last() else { break };
        page.after = Some(last.key.clone());
        seen.extend(found.iter().map(|s| s.key.to_string()));
        assert!(found.len() <= 2);
    }

    assert_eq!(seen, ["a.x", "b.x", "c.x", "d.x", "e.x"]);
}

#[tokio::test]
async fn category_pages_start_after_the_given_key() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    for (raw, category) in [("a.x", "ui"), ("b.x", "sync"), ("c.x", "ui"), ("d.x", "ui")] {
        repo.put_write(user, &write_in(raw, json!(1), category))
            .await;
    }

    let page = Page {
        after: Some(key("a.x")),
        limit: 1,
    };
    let found = repo
        .list(user, Some(Category::from_stored("ui".into())), page)
        .await
        .unwrap();

    let keys: Vec<_> = found.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(keys, ["c.x"]);
}
