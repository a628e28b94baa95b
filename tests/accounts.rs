//! Registering, logging in and out, and what a token is worth.

use awc::http::Method;
use serde_json::json;

use crate::common::http::{
    assert_form_error, get, post, register, registration, request, request_bytes,
};
use crate::common::TestServer;

#[actix_web::test]
async fn register_then_login_gives_working_tokens_and_complete_settings() {
    let server = TestServer::start().await;
    let registered = post(
        &server,
        "/api/v9/auth/register",
        None,
        registration("alice", "Alice@Example.org"),
    )
    .await;
    assert_eq!(registered.status, 200);
    assert_eq!(registered.content_type.as_deref(), Some("application/json"));
    let token = registered.body["token"].as_str().unwrap();

    let login = post(
        &server,
        "/api/v9/auth/login",
        None,
        json!({ "login": "alice@example.org", "password": "correct horse" }),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let me = get(&server, "/api/v9/users/@me", Some(token)).await;
    assert_eq!(me.body["username"], "alice");
    assert_eq!(me.body["email"], "alice@example.org");
    assert_eq!(login.body["user_id"], me.body["id"]);
    let settings = &login.body["settings"];
    for key in [
        "theme",
        "locale",
        "status",
        "friend_source_flags",
        "guild_folders",
        "custom_status",
        "developer_mode",
    ] {
        assert!(settings.get(key).is_some(), "settings lack {key}");
    }
    let login_token = login.body["token"].as_str().unwrap();
    for presented in [
        login_token.to_string(),
        format!("Bot {login_token}"),
        format!("Bearer {token}"),
    ] {
        let me = get(&server, "/api/v9/users/@me", Some(&presented)).await;
        assert_eq!(me.status, 200, "{presented}");
        assert_eq!(me.body["username"], "alice");
    }
}

#[actix_web::test]
async fn wrong_credentials_are_one_error_for_both_fields() {
    let server = TestServer::start().await;
    register(&server, "bob").await;
    for body in [
        json!({ "login": "nobody@example.org", "password": "correct horse" }),
        json!({ "login": "bob@example.org", "password": "wrong horse!" }),
    ] {
        let response = post(&server, "/api/auth/login", None, body).await;
        assert_form_error(&response, "login", "INVALID_LOGIN");
        assert_form_error(&response, "password", "INVALID_LOGIN");
    }
    let missing = post(
        &server,
        "/api/auth/login",
        None,
        json!({ "login": "x@example.org" }),
    )
    .await;
    assert_form_error(&missing, "password", "BASE_TYPE_REQUIRED");
}

#[actix_web::test]
async fn usernames_are_shared_and_discriminators_are_not() {
    let server = TestServer::start().await;
    let mut discriminators = std::collections::HashSet::new();
    for i in 0..4 {
        let name = if i % 2 == 0 { "Carol" } else { "carol" };
        let body = registration(name, &format!("carol{i}@example.org"));
        let token = post(&server, "/api/v9/auth/register", None, body)
            .await
            .body["token"]
            .as_str()
            .unwrap()
            .to_string();
        let me = get(&server, "/api/users/@me", Some(&token)).await;
        let discriminator = me.body["discriminator"].as_str().unwrap().to_string();
        assert_eq!(discriminator.len(), 4);
        assert!(
            discriminators.insert(discriminator),
            "a discriminator was given twice"
        );
    }
}

#[actix_web::test]
async fn nullable_registration_fields_may_be_null() {
    let server = TestServer::start().await;
    let response = post(
        &server,
        "/api/v9/auth/register",
        None,
        json!({ "username": "fermi", "password": null, "email": null, "invite": null, "fingerprint": null,
                "consent": true, "date_of_birth": "1990-05-05", "captcha_key": null }),
    )
    .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let token = response.body["token"].as_str().unwrap();
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(token)).await.body["email"],
        json!(null)
    );
}

#[actix_web::test]
async fn bad_registrations_get_field_errors_and_write_nothing() {
    let server = TestServer::start().await;
    register(&server, "taken").await;
    let cases = [
        (
            json!({ "username": "x", "consent": true, "date_of_birth": "2000-01-01" }),
            "username",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            json!({ "username": "no@pe", "consent": true, "date_of_birth": "2000-01-01" }),
            "username",
            "USERNAME_INVALID_CONTAINS",
        ),
        (
            json!({ "username": "dave", "date_of_birth": "2000-01-01" }),
            "consent",
            "CONSENT_REQUIRED",
        ),
        (
            json!({ "username": "dave", "consent": true, "date_of_birth": "2000-01-01", "password": "short" }),
            "password",
            "PASSWORD_REQUIREMENTS_MIN_LENGTH",
        ),
        (
            json!({ "username": "dave", "consent": true, "date_of_birth": "2000-01-01", "email": "not an email" }),
            "email",
            "EMAIL_TYPE_INVALID_EMAIL",
        ),
        (
            json!({ "username": "dave", "consent": true, "date_of_birth": "2000-01-01", "email": "TAKEN@example.org" }),
            "email",
            "EMAIL_ALREADY_REGISTERED",
        ),
        (
            json!({ "username": "dave", "consent": true }),
            "date_of_birth",
            "BASE_TYPE_REQUIRED",
        ),
        (
            json!({ "username": "dave", "consent": true, "date_of_birth": "yesterday" }),
            "date_of_birth",
            "DATE_TYPE_PARSE",
        ),
        (
            json!({ "username": "dave", "consent": true, "date_of_birth": "2024-01-01" }),
            "date_of_birth",
            "DATE_OF_BIRTH_UNDERAGE",
        ),
        (
            json!({ "consent": true, "date_of_birth": "2000-01-01" }),
            "username",
            "BASE_TYPE_REQUIRED",
        ),
        (
            json!({ "username": 42, "consent": true }),
            "username",
            "BASE_TYPE_STRING",
        ),
    ];
    for (body, field, code) in cases {
        let response = post(&server, "/api/v9/auth/register", None, body.clone()).await;
        assert_form_error(&response, field, code);
    }
    let malformed = request_bytes(
        &server,
        Method::POST,
        "/api/v9/auth/register",
        b"{\"username\": ",
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["code"], 50109);
    let oversized = request(
        &server,
        Method::POST,
        "/api/v9/auth/register",
        None,
        Some(json!({ "username": "x".repeat(2 << 20) })),
    )
    .await;
    assert_eq!(oversized.status, 413);
    assert_eq!(oversized.body["code"], 40005);
    assert_eq!(
        server.count("users").await,
        1,
        "a failed registration wrote a row"
    );
    assert_eq!(server.count("auth_sessions").await, 1);
}

#[actix_web::test]
async fn closed_registration_refuses_everyone() {
    let server = TestServer::with(&[("register.allow_new_registration", "false")]).await;
    let response = post(
        &server,
        "/api/v9/auth/register",
        None,
        registration("erin", "erin@example.org"),
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(server.count("users").await, 0);
}

#[actix_web::test]
async fn missing_or_bad_tokens_get_401() {
    let server = TestServer::start().await;
    let token = register(&server, "frank").await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    for presented in [None, Some("garbage"), Some(forged.as_str()), Some("Bot ")] {
        let response = get(&server, "/api/v9/users/@me", presented).await;
        assert_eq!(response.status, 401, "{presented:?}");
        assert_eq!(
            response.body,
            json!({ "code": 0, "message": "401: Unauthorized" })
        );
    }
}

#[actix_web::test]
async fn logout_ends_only_that_token() {
    let server = TestServer::start().await;
    let first = register(&server, "grace").await;
    let second = post(
        &server,
        "/api/auth/login",
        None,
        json!({ "login": "grace@example.org", "password": "correct horse" }),
    )
    .await
    .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let out = request(
        &server,
        Method::POST,
        "/api/v9/auth/logout",
        Some(&first),
        Some(json!({ "provider": null })),
    )
    .await;
    assert_eq!(out.status, 204);
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&first)).await.status,
        401
    );
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&second))
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn a_new_password_ends_every_older_token() {
    let server = TestServer::start().await;
    let old = register(&server, "heidi").await;
    let other = post(
        &server,
        "/api/auth/login",
        None,
        json!({ "login": "heidi@example.org", "password": "correct horse" }),
    )
    .await
    .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = crate::common::http::patch(
        &server,
        "/api/v9/users/@me",
        &old,
        json!({ "password": "not it at all", "new_password": "battery staple" }),
    )
    .await;
    assert_form_error(&wrong, "password", "PASSWORD_DOES_NOT_MATCH");
    let changed = crate::common::http::patch(
        &server,
        "/api/v9/users/@me",
        &old,
        json!({ "password": "correct horse", "new_password": "battery staple" }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let new = changed.body["token"].as_str().unwrap();
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&old)).await.status,
        401
    );
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&other)).await.status,
        401
    );
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(new)).await.status,
        200
    );
    let relogin = post(
        &server,
        "/api/auth/login",
        None,
        json!({ "login": "heidi@example.org", "password": "battery staple" }),
    )
    .await;
    assert_eq!(relogin.status, 200);
}
