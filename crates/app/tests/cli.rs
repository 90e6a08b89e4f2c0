//! The `user-settings` binary: key generation, token minting, and configuration errors that
//! name their field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use adapter_http::{AuthConfig, Authenticator, VerificationKey};
use secrecy::SecretString;

fn user_settings(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_user-settings"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn keys_generate_prints_only_a_fresh_64_hex_key() {
    let first = user_settings(&["keys", "generate"], &[]);
    let second = user_settings(&["keys", "generate"], &[]);
    assert!(first.status.success());
    let key = stdout(&first);
    assert_eq!(key.trim().len(), 64);
    assert!(key.trim().chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(key.lines().count(), 1, "the key alone on stdout");
    assert_ne!(key, stdout(&second));
}

#[test]
fn token_prints_a_token_the_service_accepts() {
    let sub = "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b";
    let output = user_settings(
        &["token", "--sub", sub, "--role", "admin", "--ttl", "5m"],
        &[(
            "USER_SETTINGS_JWT_SECRET",
            "cli-test-secret-of-at-least-32-bytes",
        )],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output);
    let authenticator = Authenticator::new(&AuthConfig {
        key: VerificationKey::Hs256(SecretString::from("cli-test-secret-of-at-least-32-bytes")),
        issuer: None,
        audience: None,
    })
    .unwrap();
    let principal = authenticator.verify(token.trim()).unwrap();
    assert_eq!(principal.user_id.to_string(), sub);
    assert_eq!(principal.roles, vec![domain::audit::Role::Admin]);
}

#[test]
fn token_with_a_subjects_file_prints_one_token_per_subject() {
    let subjects = [
        "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b",
        "7b3c1c0e-5a7e-4d2b-9f1a-2c6d8e4f0a11",
    ];
    let file = std::env::temp_dir().join(format!("user-settings-subjects-{}", std::process::id()));
    std::fs::write(&file, subjects.join("\n")).unwrap();
    let output = user_settings(
        &[
            "token",
            "--subjects-file",
            file.to_str().unwrap(),
            "--ttl",
            "5m",
        ],
        &[(
            "USER_SETTINGS_JWT_SECRET",
            "cli-test-secret-of-at-least-32-bytes",
        )],
    );
    std::fs::remove_file(&file).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let authenticator = Authenticator::new(&AuthConfig {
        key: VerificationKey::Hs256(SecretString::from("cli-test-secret-of-at-least-32-bytes")),
        issuer: None,
        audience: None,
    })
    .unwrap();
    let tokens = stdout(&output);
    let users: Vec<String> = tokens
        .lines()
        .map(|token| authenticator.verify(token).unwrap().user_id.to_string())
        .collect();
    assert_eq!(users, subjects);
}

#[test]
fn token_without_a_secret_explains_what_is_missing() {
    let output = user_settings(
        &["token", "--sub", "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b"],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("USER_SETTINGS_JWT_SECRET"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn invalid_environment_value_names_the_field() {
    let output = user_settings(
        &["token", "--sub", "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b"],
        &[
            ("USER_SETTINGS_RATE_LIMIT_READS", "lots"),
            (
                "USER_SETTINGS_JWT_SECRET",
                "cli-test-secret-of-at-least-32-bytes",
            ),
        ],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("reads_per_hour"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn incoherent_body_limits_from_the_environment_stop_start_up_naming_both_fields() {
    let output = user_settings(
        &["token", "--sub", "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b"],
        &[
            ("USER_SETTINGS_MAX_BULK_BODY_KB", "100"),
            ("USER_SETTINGS_JWT_SECRET", "s"),
        ],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("USER_SETTINGS_MAX_BULK_BODY_KB"),
        "{message}"
    );
    assert!(message.contains("max_value_size_kb"), "{message}");
}

#[test]
fn invalid_yaml_value_names_the_field() {
    let dir = std::env::temp_dir().join(format!("user-settings-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "user_settings:\n  validation:\n    max_bulk_items: 0\n",
    )
    .unwrap();
    let output = user_settings(
        &[
            "--config",
            file.to_str().unwrap(),
            "token",
            "--sub",
            "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b",
        ],
        &[(
            "USER_SETTINGS_JWT_SECRET",
            "cli-test-secret-of-at-least-32-bytes",
        )],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("user_settings.validation.max_bulk_items"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn serve_without_database_url_says_how_to_get_one() {
    let output = user_settings(&["serve"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("DATABASE_URL"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_all_digit_jwt_secret_is_accepted_as_text() {
    let output = user_settings(
        &["token", "--sub", "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b"],
        &[(
            "USER_SETTINGS_JWT_SECRET",
            "12345678901234567890123456789012",
        )],
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn configuration_errors_never_print_a_secret_value() {
    let output = user_settings(
        &["token", "--sub", "3f2b8a4e-2c1d-4e5f-9a8b-7c6d5e4f3a2b"],
        &[("USER_SETTINGS_JWT_SECRET", "[unbalanced-secret-value")],
    );
    assert!(
        !stderr(&output).contains("unbalanced-secret-value"),
        "{}",
        stderr(&output)
    );
}

/// `serve` against `database_url` (nothing listens there: start-up must fail before).
fn serve_with_database_url(database_url: &str) -> Output {
    user_settings(
        &["serve"],
        &[
            ("DATABASE_URL", database_url),
            (
                "USER_SETTINGS_ENCRYPTION_KEY",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            ),
            (
                "USER_SETTINGS_JWT_SECRET",
                "cli-test-secret-of-at-least-32-bytes",
            ),
            ("USER_SETTINGS_MIGRATE_ON_START", "false"),
        ],
    )
}

#[test]
fn an_unknown_sslmode_stops_start_up_naming_it_without_the_password() {
    let output =
        serve_with_database_url("postgres://app:hunter2@127.0.0.1:1/app?sslmode=verify_full");
    assert!(!output.status.success());
    let stderr = stderr(&output);
    assert!(stderr.contains("sslmode"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_unreadable_sslrootcert_stops_start_up_naming_it() {
    let output = serve_with_database_url(
        "postgres://app:hunter2@127.0.0.1:1/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    assert!(!output.status.success());
    let stderr = stderr(&output);
    assert!(
        stderr.contains("sslrootcert: cannot read /nonexistent/ca.pem"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
