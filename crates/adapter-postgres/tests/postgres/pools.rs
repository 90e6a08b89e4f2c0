//! The pools: a thread with a single-threaded runtime (an HTTP worker) queries through a pool
//! of its own, so its connections' I/O runs on it; multi-threaded runtimes share one.

use adapter_postgres::{PoolStatus, build_pool, testing::TestDatabase};

#[tokio::test]
async fn a_single_threaded_runtime_has_a_pool_of_its_own_and_others_share_one() {
    let db = TestDatabase::create().await;
    let mut config = db.config();
    config.max_size = 3;
    config.thread_max_size = 2;
    let pool = build_pool(&config).unwrap();
    assert_eq!(
        pool.status().max_size,
        3,
        "only the shared pool before any query"
    );

    let held = pool.get().await.unwrap();
    assert_eq!(
        pool.status(),
        PoolStatus {
            max_size: 3 + 2,
            size: 1,
            available: 0,
            waiting: 0
        },
        "this test's runtime is single-threaded: its own pool opened the connection"
    );

    let shared = pool.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = shared.get().await.unwrap();
            client.simple_query("SELECT 1").await.unwrap();
        });
    })
    .join()
    .unwrap();
    let status = pool.status();
    assert_eq!(
        (status.max_size, status.size),
        (5, 2),
        "the multi-threaded runtime used the shared pool, and made no pool of its own"
    );

    drop(held);
    let again = pool.get().await.unwrap();
    again.simple_query("SELECT 1").await.unwrap();
    assert_eq!(pool.status().size, 2, "the thread's connection is reused");
}
