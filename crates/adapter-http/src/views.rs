//! `ViewCache`: a port for rendered effective views (their bytes and ETag), so the start-up
//! read of a client costs a lookup and a copy instead of resolving every layer again.
//!
//! Correctness rests on the stamp: the implementation names, with one number, the state of
//! everything a user's view depends on (their settings, their preferences, the deployment
//! layer); a view is stored with the stamp taken *before* it was built and served only while
//! the stamp is unchanged, so a view built from data older than an invalidation is never
//! served.

use std::sync::Arc;

use async_trait::async_trait;
use domain::UserId;

/// A rendered view: the answer's bytes and its ETag.
#[derive(Debug)]
pub struct RenderedView {
    /// The JSON body.
    pub body: Vec<u8>,
    /// The strong ETag's value (without quotes).
    pub tag: String,
}

/// Rendered views by user and device.
#[async_trait]
pub trait ViewCache: Send + Sync {
    /// The current state of what `user`'s views depend on; it changes whenever any of it
    /// changes.
    fn stamp(&self, user: UserId) -> u64;

    /// The view of `user` (on `device`), if one is stored under the current stamp.
    async fn get(&self, user: UserId, device: Option<&str>) -> Option<Arc<RenderedView>>;

    /// Stores a view built after `stamp` was taken.
    async fn put(&self, user: UserId, device: Option<&str>, stamp: u64, view: Arc<RenderedView>);
}
