//! PostgreSQL adapter: migrations, repositories and the change feed.
