//! Support service: a privileged read is recorded before it runs, and the audit trail is
//! read in bounded pages.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{admin, user};
use crate::{
    RepositoryError,
    audit::{AuditAction, AuditRecord, Role},
    ports::{MockAuditLog, MockAuditTrail},
    services::{AuditTrailError, SupportService},
};

fn record(id: i64) -> AuditRecord {
    AuditRecord {
        id,
        at: OffsetDateTime::UNIX_EPOCH,
        actor_id: admin().id,
        actor_role: Role::Admin,
        action: AuditAction::AdminRead,
        key: None,
        request_id: None,
        client_request_id: None,
    }
}

fn recording_audit() -> MockAuditLog {
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .withf(|entry| entry.subject == user() && entry.action == AuditAction::AdminRead)
        .times(1)
        .returning(|_| Ok(()));
    audit
}

#[tokio::test]
async fn when_the_audit_log_fails_nothing_is_read() {
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .returning(|_| Err(RepositoryError::Unavailable("down".into())));
    let mut trail = MockAuditTrail::new();
    trail.expect_trail().never();
    let support = SupportService::new(Arc::new(audit), Arc::new(trail));

    let read = support
        .audited(&admin(), user(), async { Ok::<_, RepositoryError>(()) })
        .await;
    assert!(matches!(read, Err(RepositoryError::Unavailable(_))));
    let page = support.trail_as_admin(&admin(), user(), None, None).await;
    assert!(matches!(page, Err(AuditTrailError::Repository(_))));
}

#[tokio::test]
async fn a_trail_page_asks_for_one_more_record_to_know_whether_another_page_follows() {
    let mut trail = MockAuditTrail::new();
    trail
        .expect_trail()
        .withf(|subject, before, limit| *subject == user() && *before == Some(90) && *limit == 3)
        .returning(|_, _, _| Ok(vec![record(80), record(70), record(60)]));
    let support = SupportService::new(Arc::new(recording_audit()), Arc::new(trail));

    let page = support
        .trail_as_admin(&admin(), user(), Some(90), Some(2))
        .await
        .unwrap();
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [80, 70]);
    assert_eq!(page.next_before, Some(70));
}

#[tokio::test]
async fn the_last_page_has_no_next_and_a_limit_out_of_range_reads_nothing() {
    let mut trail = MockAuditTrail::new();
    trail
        .expect_trail()
        .times(1)
        .returning(|_, _, _| Ok(vec![record(5)]));
    let support = SupportService::new(Arc::new(recording_audit()), Arc::new(trail));

    let page = support
        .trail_as_admin(&admin(), user(), None, None)
        .await
        .unwrap();
    assert_eq!(page.next_before, None);
    for limit in [0, 201] {
        let refused = support
            .trail_as_admin(&admin(), user(), None, Some(limit))
            .await;
        assert!(matches!(refused, Err(AuditTrailError::Validation(_))));
    }
}
