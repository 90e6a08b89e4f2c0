//! Test support (feature `testing`): a fresh, migrated database per test, dropped afterwards.
//!
//! `DATABASE_URL` names a server and a maintenance database on it (`cargo xtask test` sets
//! it); each [`TestDatabase`] creates its own database `test_<uuid>` there, so tests run in
//! parallel without seeing each other's rows.
//!
//! Failures here panic with a message: this is test set-up, where a panic is the report.

use std::thread;

use crate::{PgConfig, Pool, build_pool, connect, migrate};

/// A database that exists for the lifetime of this value. Dropping it drops the database
/// (`WITH (FORCE)`, so connections still open do not keep it alive) and waits until done.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: Pool,
}

impl TestDatabase {
    /// Creates and migrates a fresh database on the server of `DATABASE_URL`.
    ///
    /// # Panics
    /// When `DATABASE_URL` is unset or the database cannot be created or migrated.
    pub async fn create() -> Self {
        let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "DATABASE_URL is not set. Run the tests with `cargo xtask test`, which starts a \
                 PostgreSQL and sets it, or set DATABASE_URL to a server where this user may \
                 CREATE DATABASE (e.g. postgres://postgres@127.0.0.1:5432/postgres)."
            )
        });
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&PgConfig::new(&admin_url))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        drop(admin);

        let url = with_database(&admin_url, &name);
        let pool = build_pool(&PgConfig::new(&url))
            .unwrap_or_else(|e| panic!("cannot build a pool for {name}: {e}"));
        // From here on, a panic drops `database`, which drops the database.
        let database = Self {
            name,
            url,
            admin_url,
            pool,
        };
        let mut client = connect(&database.config())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", database.name));
        migrate(&mut client)
            .await
            .unwrap_or_else(|e| panic!("cannot migrate {}: {e}", database.name));
        database
    }

    /// Connection string of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Name of this database (`test_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool on this database, built with the default [`PgConfig`].
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The default [`PgConfig`] for this database, to build other pools or a change feed.
    pub fn config(&self) -> PgConfig {
        PgConfig::new(&self.url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.pool.close();
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop is synchronous and may run inside the test's runtime, which must not be
        // blocked on: a thread with its own runtime does the async work.
        let dropped = thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = connect(&PgConfig::new(admin_url))
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        // Never panic in Drop (it may run while a failed test unwinds): report instead.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: thread panicked",
                self.name
            ),
        }
    }
}

/// `url` with its database name replaced by `name` (URL or key=value form).
fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // key=value form: a later key wins.
        return format!("{url} dbname={name}");
    };
    let authority_start = scheme_end + 3;
    let path_start = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let query_start = url[path_start..]
        .find('?')
        .map_or(url.len(), |i| path_start + i);
    format!("{}/{name}{}", &url[..path_start], &url[query_start..])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "t"),
            "postgres://u@h:5432/t"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "t"),
            "postgres://u@h/t?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t"), "postgres://u@h/t");
        assert_eq!(
            with_database("postgresql:///postgres?host=/run/pg", "t"),
            "postgresql:///t?host=/run/pg"
        );
        assert_eq!(
            with_database("host=h user=u dbname=postgres", "t"),
            "host=h user=u dbname=postgres dbname=t"
        );
    }
}
