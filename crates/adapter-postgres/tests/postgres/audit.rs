//! `PgAuditLog`: records round-trip and cannot be changed afterwards.

use adapter_postgres::{PgAuditLog, testing::TestDatabase};
use domain::{
    audit::{Actor, AuditAction, AuditEntry, Role},
    ports::{AuditLog, AuditTrail},
};

use crate::support::{key, new_user};

#[derive(Debug, PartialEq)]
struct AuditRow {
    actor_id: uuid::Uuid,
    actor_role: String,
    subject_user_id: uuid::Uuid,
    action: String,
    key: Option<String>,
    request_id: Option<String>,
    client_request_id: Option<String>,
    in_the_past: bool,
}

#[tokio::test]
async fn recorded_entry_is_stored_with_every_field() {
    let db = TestDatabase::create().await;
    let log = PgAuditLog::new(db.pool().clone());
    let (actor, subject) = (new_user(), new_user());

    log.record(AuditEntry {
        actor: Actor {
            id: actor,
            role: Role::Service,
            request_id: Some("req-123".to_owned()),
            client_request_id: Some("client-9".to_owned()),
        },
        subject,
        action: AuditAction::SecretRead,
        key: Some(key("scrobbling.trakt.oauth_tokens")),
    })
    .await
    .unwrap();
    log.record(AuditEntry {
        actor: Actor {
            id: actor,
            role: Role::Admin,
            request_id: None,
            client_request_id: None,
        },
        subject,
        action: AuditAction::AdminRead,
        key: None,
    })
    .await
    .unwrap();

    let client = db.pool().get().await.unwrap();
    let rows = client
        .query(
            "SELECT actor_id, actor_role, subject_user_id, action, key, request_id, \
             client_request_id, at <= now() AS in_the_past \
             FROM shared.user_settings_audit WHERE subject_user_id = $1 ORDER BY id",
            &[&subject.as_uuid()],
        )
        .await
        .unwrap();
    let stored: Vec<AuditRow> = rows
        .iter()
        .map(|r| AuditRow {
            actor_id: r.get(0),
            actor_role: r.get(1),
            subject_user_id: r.get(2),
            action: r.get(3),
            key: r.get(4),
            request_id: r.get(5),
            client_request_id: r.get(6),
            in_the_past: r.get(7),
        })
        .collect();
    assert_eq!(
        stored,
        [
            AuditRow {
                actor_id: actor.as_uuid(),
                actor_role: "service".to_owned(),
                subject_user_id: subject.as_uuid(),
                action: "secret_read".to_owned(),
                key: Some("scrobbling.trakt.oauth_tokens".to_owned()),
                request_id: Some("req-123".to_owned()),
                client_request_id: Some("client-9".to_owned()),
                in_the_past: true,
            },
            AuditRow {
                actor_id: actor.as_uuid(),
                actor_role: "admin".to_owned(),
                subject_user_id: subject.as_uuid(),
                action: "admin_read".to_owned(),
                key: None,
                request_id: None,
                client_request_id: None,
                in_the_past: true,
            },
        ]
    );
}

#[tokio::test]
async fn overlong_request_ids_are_cut_not_refused() {
    let db = TestDatabase::create().await;
    let log = PgAuditLog::new(db.pool().clone());
    let subject = new_user();

    log.record(AuditEntry {
        actor: Actor {
            id: new_user(),
            role: Role::Admin,
            request_id: Some("é".repeat(500)),
            client_request_id: Some("ü".repeat(500)),
        },
        subject,
        action: AuditAction::AdminRead,
        key: None,
    })
    .await
    .unwrap();

    let client = db.pool().get().await.unwrap();
    let row = client
        .query_one(
            "SELECT request_id, client_request_id FROM shared.user_settings_audit \
             WHERE subject_user_id = $1",
            &[&subject.as_uuid()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "é".repeat(200));
    assert_eq!(row.get::<_, String>(1), "ü".repeat(200));
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_or_deleted() {
    let db = TestDatabase::create().await;
    let log = PgAuditLog::new(db.pool().clone());
    let subject = new_user();
    log.record(AuditEntry {
        actor: Actor {
            id: new_user(),
            role: Role::Admin,
            request_id: None,
            client_request_id: None,
        },
        subject,
        action: AuditAction::AdminRead,
        key: None,
    })
    .await
    .unwrap();
    let client = db.pool().get().await.unwrap();

    let update = client
        .execute(
            "UPDATE shared.user_settings_audit SET action = 'token_read'",
            &[],
        )
        .await;
    let delete = client
        .execute("DELETE FROM shared.user_settings_audit", &[])
        .await;

    assert!(update.is_err());
    assert!(delete.is_err());
    let count: i64 = client
        .query_one("SELECT count(*) FROM shared.user_settings_audit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn audit_checks_reject_unknown_roles_actions_and_oversized_fields() {
    let db = TestDatabase::create().await;
    let client = db.pool().get().await.unwrap();
    let cases = [
        (
            "user_settings_audit_actor_role",
            "'root'",
            "'admin_read'",
            "NULL",
            "NULL, NULL",
        ),
        (
            "user_settings_audit_action",
            "'admin'",
            "'secret_write'",
            "NULL",
            "NULL, NULL",
        ),
        (
            "user_settings_audit_key_length",
            "'admin'",
            "'admin_read'",
            "''",
            "NULL, NULL",
        ),
        (
            "user_settings_audit_request_id_length",
            "'admin'",
            "'admin_read'",
            "NULL",
            "repeat('r', 201), NULL",
        ),
        (
            "user_settings_audit_client_request_id_length",
            "'admin'",
            "'admin_read'",
            "NULL",
            "NULL, repeat('r', 201)",
        ),
    ];

    for (constraint, role, action, key, request_ids) in cases {
        let sql = format!(
            "INSERT INTO shared.user_settings_audit \
             (actor_id, actor_role, subject_user_id, action, key, request_id, client_request_id) \
             VALUES (gen_random_uuid(), {role}, gen_random_uuid(), {action}, {key}, {request_ids})"
        );
        let error = client.batch_execute(&sql).await.expect_err(constraint);
        assert_eq!(
            error.as_db_error().and_then(|db| db.constraint()),
            Some(constraint)
        );
    }
}

fn admin_read(actor: domain::UserId, subject: domain::UserId, request: &str) -> AuditEntry {
    AuditEntry {
        actor: Actor {
            id: actor,
            role: Role::Admin,
            request_id: Some(request.to_owned()),
            client_request_id: None,
        },
        subject,
        action: AuditAction::AdminRead,
        key: None,
    }
}

#[tokio::test]
async fn a_trail_is_one_subjects_records_newest_first_a_page_below_an_id() {
    let db = TestDatabase::create().await;
    let log = PgAuditLog::new(db.pool().clone());
    let (actor, subject, other) = (new_user(), new_user(), new_user());
    for request in ["r1", "r2", "r3"] {
        log.record(admin_read(actor, subject, request))
            .await
            .unwrap();
    }
    log.record(admin_read(actor, other, "elsewhere"))
        .await
        .unwrap();

    let first = log.trail(subject, None, 2).await.unwrap();
    let requests: Vec<_> = first.iter().map(|r| r.request_id.as_deref()).collect();
    assert_eq!(requests, [Some("r3"), Some("r2")]);
    assert_eq!(first[0].actor_id, actor);
    assert_eq!(first[0].actor_role, Role::Admin);
    assert_eq!(first[0].action, AuditAction::AdminRead);

    let rest = log.trail(subject, Some(first[1].id), 2).await.unwrap();
    let requests: Vec<_> = rest.iter().map(|r| r.request_id.as_deref()).collect();
    assert_eq!(requests, [Some("r1")]);
    assert!(log.trail(new_user(), None, 10).await.unwrap().is_empty());
}
