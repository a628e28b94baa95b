//! The embedded default database: with no URL configured, the server runs its own cluster.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use spacebar::config::Config;
use spacebar::db::Database;

fn config(data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let dir = data_dir.to_string_lossy().to_string();
    let mut settings = vec![
        ("storage.data_dir", dir.as_str()),
        ("http.listen", "127.0.0.1:0"),
        ("http.workers", "1"),
        ("security.bcrypt_cost", "4"),
    ];
    settings.extend_from_slice(extra);
    Config::with_overrides(&settings).unwrap()
}

/// Runs a server on `database` just long enough for `visit` to talk to it.
fn with_server<F: std::future::Future<Output = ()>>(
    config: Config,
    database: &Database,
    visit: impl FnOnce(String) -> F,
) {
    let url = database.url().to_string();
    actix_web::rt::System::new().block_on(async move {
        let secret =
            spacebar::credentials::token::load_secret("", &config.storage.data_dir).unwrap();
        let server = spacebar::server::build(config, &url, &secret)
            .await
            .unwrap();
        let (handle, addr) = (server.handle(), server.addr);
        let running = actix_web::rt::spawn(server.run());
        visit(format!("http://{addr}")).await;
        handle.stop(true).await;
        running.await.unwrap().unwrap();
    });
}

#[test]
fn the_server_runs_its_own_database_and_keeps_it_across_restarts() {
    let data = tempfile::tempdir().unwrap();
    // PostgreSQL runs as the `postgres` user when the tests run as root: let it through.
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = Database::open(&config(data.path(), &[])).unwrap();
    assert!(database.is_embedded());
    assert!(data.path().join("postgres/PG_VERSION").exists());
    assert!(
        !database.url().contains("localhost"),
        "socket only: {}",
        database.url()
    );
    with_server(config(data.path(), &[]), &database, |base| async move {
        let body = json!({ "username": "persistent", "email": "p@example.org", "password": "correct horse",
                           "consent": true, "date_of_birth": "2000-01-01" });
        let response = awc::Client::new()
            .post(format!("{base}/api/v9/auth/register"))
            .send_json(&body)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    });
    drop(database);
    assert!(
        !data.path().join("postgres/postmaster.pid").exists(),
        "the cluster did not stop"
    );

    // Started again, it finds the same cluster and the same account, and the same signing key.
    let database = Database::open(&config(data.path(), &[])).unwrap();
    with_server(config(data.path(), &[]), &database, |base| async move {
        let login = json!({ "login": "p@example.org", "password": "correct horse" });
        let mut response = awc::Client::new()
            .post(format!("{base}/api/v9/auth/login"))
            .send_json(&login)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let token: serde_json::Value = response.json().await.unwrap();
        let me = awc::Client::new()
            .get(format!("{base}/api/v9/users/@me"))
            .insert_header(("Authorization", token["token"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
    });
}

#[test]
fn missing_postgres_binaries_name_the_package_to_install() {
    let data = tempfile::tempdir().unwrap();
    let error = Database::open(&config(
        data.path(),
        &[("database.postgres_bin_dir", "/nonexistent")],
    ))
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("apt-get install postgresql"), "{message}");
    assert!(message.contains("SPACEBAR__DATABASE__URL"), "{message}");
}
