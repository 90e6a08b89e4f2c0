//! Key rotation: batching, concurrency, corrupt rows and dry runs, against mocked ports.

use std::ops::ControlFlow;

use serde_json::json;
use zeroize::Zeroizing;

use super::user;
use crate::{
    ports::{MockEnvelopeStore, MockSecretCipher, SealedCell},
    secrets::{CipherError, Envelope},
    services::{KeyRotation, RewrapOptions, RewrapProgress},
    settings::SettingKey,
};

fn envelope(kid: &str) -> Envelope {
    Envelope {
        v: 1,
        alg: "A256GCM-HKDF-SHA256".into(),
        kid: kid.into(),
        salt: "s".into(),
        nonce: "n".into(),
        ciphertext: "c".into(),
    }
}

fn cell(key: &str, value: serde_json::Value) -> SealedCell {
    SealedCell {
        user_id: user(),
        key: SettingKey::parse(key).unwrap(),
        version: 4,
        value,
    }
}

fn cipher() -> MockSecretCipher {
    let mut cipher = MockSecretCipher::new();
    cipher.expect_current_kid().return_const("k2".to_owned());
    cipher.expect_open().returning(|_, _, e| {
        if e.kid == "k1" {
            Ok(Zeroizing::new(b"\"p\"".to_vec()))
        } else {
            Err(CipherError::UnknownKid { kid: e.kid.clone() })
        }
    });
    cipher.expect_seal().returning(|_, _, _| Ok(envelope("k2")));
    cipher
}

/// A store holding `cells` (all on old kids), served in batches of `limit` after the cursor.
fn store(cells: Vec<SealedCell>, accept_writes: bool) -> MockEnvelopeStore {
    let mut store = MockEnvelopeStore::new();
    store
        .expect_not_sealed_with()
        .returning(move |kid, after, limit| {
            assert_eq!(kid, "k2");
            Ok(cells
                .iter()
                .filter(|c| {
                    after
                        .as_ref()
                        .is_none_or(|(u, k)| (c.user_id, &c.key) > (*u, k))
                })
                .take(limit as usize)
                .cloned()
                .collect())
        });
    store.expect_replace_envelopes().returning(move |batch| {
        assert!(batch.iter().all(|(_, e)| e.kid == "k2"));
        Ok(if accept_writes { batch.len() as u64 } else { 0 })
    });
    store
}

#[tokio::test]
async fn rewrap_reseals_every_row_across_batches() {
    let cells = (0..5)
        .map(|i| cell(&format!("a.k{i}"), envelope("k1").to_value()))
        .collect();
    let rotation = KeyRotation::new(store(cells, true), cipher());
    let report = rotation
        .rewrap(RewrapOptions {
            batch_size: 2,
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 5);
    assert!(report.failures.is_empty());
}

#[tokio::test]
async fn rows_changed_concurrently_are_counted_not_overwritten() {
    let cells = vec![cell("a.k", envelope("k1").to_value())];
    let rotation = KeyRotation::new(store(cells, false), cipher());
    let report = rotation.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!((report.rewrapped, report.changed_concurrently), (0, 1));
}

#[tokio::test]
async fn corrupt_and_undecryptable_rows_are_reported_and_skipped() {
    let cells = vec![
        cell("a.bad", json!({"not": "an envelope"})),
        cell("a.gone", envelope("k0").to_value()),
        cell("a.good", envelope("k1").to_value()),
    ];
    let rotation = KeyRotation::new(store(cells, true), cipher());
    let report = rotation.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 1);
    let failed: Vec<_> = report.failures.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(failed, ["a.bad", "a.gone"]);
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let mut store = MockEnvelopeStore::new();
    let cells = vec![cell("a.k", envelope("k1").to_value())];
    store
        .expect_not_sealed_with()
        .returning(move |_, after, _| {
            Ok(if after.is_none() {
                cells.clone()
            } else {
                vec![]
            })
        });
    // No expectation on replace_envelopes: a write would fail the test.
    let rotation = KeyRotation::new(store, cipher());
    let report = rotation
        .rewrap(RewrapOptions {
            batch_size: 10,
            dry_run: true,
        })
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 1);
}

/// Five rows on the old key k1 (three more already on k2), served two per batch.
fn five_old_rows() -> MockEnvelopeStore {
    let cells = (0..5)
        .map(|i| cell(&format!("a.k{i}"), envelope("k1").to_value()))
        .collect();
    let mut store = store(cells, true);
    store
        .expect_count_by_kid()
        .returning(|| Ok(vec![(Some("k1".into()), 5), (Some("k2".into()), 3)]));
    store
}

const TWO_PER_BATCH: RewrapOptions = RewrapOptions {
    batch_size: 2,
    dry_run: false,
};

#[tokio::test]
async fn progress_counts_the_rows_to_rewrap_first_then_reports_every_batch() {
    let rotation = KeyRotation::new(five_old_rows(), cipher());
    let mut seen = Vec::new();
    rotation
        .rewrap_with_progress(TWO_PER_BATCH, |p| {
            seen.push(p);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    let done: Vec<u64> = seen.iter().map(|p| p.done).collect();
    assert_eq!(done, [0, 2, 4, 5]);
    assert!(seen.iter().all(|p| p.total == 5), "{seen:?}");
}

#[tokio::test]
async fn breaking_from_progress_stops_after_the_current_batch() {
    let rotation = KeyRotation::new(five_old_rows(), cipher());
    let report = rotation
        .rewrap_with_progress(TWO_PER_BATCH, |p: RewrapProgress| {
            if p.done >= 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 2);
    assert!(report.interrupted);
}
