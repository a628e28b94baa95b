//! `/users/*`: the account, its settings, other users, and the same routes under every prefix.

use serde_json::json;

use crate::common::http::{assert_form_error, get, patch, register, register_user};
use crate::common::TestServer;

#[actix_web::test]
async fn every_api_prefix_serves_the_same_routes() {
    let server = TestServer::start().await;
    let token = register(&server, "ivan").await;
    let mut paths: Vec<String> = [
        "/api", "/api/v6", "/api/v7", "/api/v8", "/api/v9", "/api/v10",
    ]
    .iter()
    .map(|prefix| format!("{prefix}/users/@me"))
    .collect();
    paths.push("/api/v9/users/@me/".into());
    paths.push("/api/users/@me/".into());
    for path in paths {
        let response = get(&server, &path, Some(&token)).await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.body["username"], "ivan", "{path}");
    }
}

#[actix_web::test]
async fn other_users_see_the_public_face_only() {
    let server = TestServer::start().await;
    let (token, _) = register_user(&server, "judy").await;
    let (_, karl) = register_user(&server, "karl").await;
    let id = karl["id"].as_str().unwrap();
    let seen = get(&server, &format!("/api/v9/users/{id}"), Some(&token)).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body["username"], "karl");
    assert!(
        seen.body.get("email").is_none(),
        "a public user carries no e-mail"
    );
    let profile = get(
        &server,
        &format!("/api/v9/users/{id}/profile"),
        Some(&token),
    )
    .await;
    assert_eq!(profile.body["user"]["id"], id);
    assert!(profile.body["user_profile"].get("bio").is_some());

    let unknown = get(&server, "/api/v9/users/1234567890123", Some(&token)).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.body["code"].as_u64()),
        (404, Some(10013))
    );
    let not_an_id = get(&server, "/api/v9/users/abc", Some(&token)).await;
    assert_form_error(&not_an_id, "user_id", "NUMBER_TYPE_COERCE");
    assert_eq!(
        get(&server, &format!("/api/v9/users/{id}"), None)
            .await
            .status,
        401
    );
}

#[actix_web::test]
async fn profile_changes_are_checked_and_kept() {
    let server = TestServer::start().await;
    let (token, before) = register_user(&server, "liam").await;
    let changed = patch(&server, "/api/v9/users/@me", &token,
        json!({ "bio": "hello", "pronouns": "he/him", "accent_color": 255, "global_name": "Liam L." })).await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let me = get(&server, "/api/v9/users/@me", Some(&token)).await.body;
    assert_eq!(
        (me["bio"].as_str(), me["global_name"].as_str()),
        (Some("hello"), Some("Liam L."))
    );
    assert_eq!(me["accent_color"], 255);

    let too_long = patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "bio": "b".repeat(191) }),
    )
    .await;
    assert_form_error(&too_long, "bio", "BASE_TYPE_BAD_LENGTH");
    let no_password = patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "username": "liam2" }),
    )
    .await;
    assert_form_error(&no_password, "password", "BASE_TYPE_REQUIRED");
    let renamed = patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "username": "liam2", "password": "correct horse" }),
    )
    .await;
    assert_eq!(renamed.body["username"], "liam2");
    assert_eq!(
        renamed.body["discriminator"], before["discriminator"],
        "a free discriminator is kept"
    );
    let cleared = patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "global_name": null }),
    )
    .await;
    assert_eq!(cleared.body["global_name"], json!(null));
    assert_eq!(
        cleared.body["bio"], "hello",
        "fields not sent are left alone"
    );
}

#[actix_web::test]
async fn settings_are_complete_and_patchable() {
    let server = TestServer::start().await;
    let token = register(&server, "mia").await;
    let settings = get(&server, "/api/v9/users/@me/settings", Some(&token))
        .await
        .body;
    assert_eq!(settings["theme"], "dark");
    assert!(settings.as_object().unwrap().len() > 25);

    let changed = patch(
        &server,
        "/api/v9/users/@me/settings",
        &token,
        json!({ "theme": "light", "status": "idle" }),
    )
    .await;
    assert_eq!(changed.body["theme"], "light");
    assert_eq!(changed.body["locale"], "en-US", "untouched defaults stay");
    let again = get(&server, "/api/v9/users/@me/settings", Some(&token))
        .await
        .body;
    assert_eq!(
        (again["theme"].as_str(), again["status"].as_str()),
        (Some("light"), Some("idle"))
    );

    let unknown = patch(
        &server,
        "/api/v9/users/@me/settings",
        &token,
        json!({ "nonsense": 1 }),
    )
    .await;
    assert_form_error(&unknown, "nonsense", "BASE_TYPE_INVALID");
    let wrong_type = patch(
        &server,
        "/api/v9/users/@me/settings",
        &token,
        json!({ "theme": 5 }),
    )
    .await;
    assert_form_error(&wrong_type, "theme", "BASE_TYPE_INVALID");
    assert_eq!(
        get(&server, "/api/v9/users/@me/settings", Some(&token))
            .await
            .body["theme"],
        "light"
    );
}

#[actix_web::test]
async fn renaming_needs_the_self_edit_name_right() {
    let server = TestServer::start().await;
    let (token, me) = register_user(&server, "nora").await;
    let id = me["id"].as_str().unwrap();
    server
        .sql(&format!("UPDATE users SET rights = 0 WHERE id = {id}"))
        .await;
    let refused = patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "username": "nora2", "password": "correct horse" }),
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.body["code"].as_u64()),
        (403, Some(50013))
    );
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&token)).await.body["username"],
        "nora"
    );
    // OPERATOR alone grants every right.
    server
        .sql(&format!("UPDATE users SET rights = 1 WHERE id = {id}"))
        .await;
    let renamed = patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "username": "nora2", "password": "correct horse" }),
    )
    .await;
    assert_eq!(renamed.body["username"], "nora2");
}
