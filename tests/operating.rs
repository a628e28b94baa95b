//! Running the instance: start-up failures say what is wrong in one line and exit cleanly.

use crate::common::http::{account, get};
use crate::common::process::ServerProcess;

/// A second instance on one host: the bots' voice port is taken. The server names the key and
/// the address and exits with an error status, not a panic (exit 101).
#[actix_web::test]
async fn a_taken_voice_port_is_named_and_the_start_fails_cleanly() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, output) = ServerProcess::run_to_exit(&[
        ("voice.bind_ip", "127.0.0.1"),
        ("voice.bot_udp_port", &port),
    ])
    .await;
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(!output.contains("panicked"), "{output}");
    let line = output
        .lines()
        .find(|line| line.contains("ERROR"))
        .unwrap_or_else(|| panic!("no error line: {output}"));
    assert!(line.contains("voice.bot_udp_port"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
}

/// The HTTP port taken: the same, naming `http.listen`.
#[actix_web::test]
async fn a_taken_http_port_is_named_and_the_start_fails_cleanly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let (status, output) = ServerProcess::run_to_exit(&[("http.listen", &listen)]).await;
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(!output.contains("panicked"), "{output}");
    let line = output.lines().find(|line| line.contains("ERROR")).unwrap();
    assert!(
        line.contains("http.listen") && line.contains(&listen),
        "{line}"
    );
}

/// The first operator is made while the server runs on its embedded database (register in
/// the client, then grant): the command uses the running cluster instead of starting it again.
#[actix_web::test]
async fn grant_operator_works_while_the_server_runs_on_its_embedded_database() {
    let server = ServerProcess::start(&[("database.url", "")]).await;
    let account = account(&server, "first_operator").await;
    let whoami = get(&server, "/_spacebar/admin/whoami", Some(&account.token)).await;
    assert_eq!(whoami.body["operator"], false, "{:?}", whoami.body);

    let (status, output) = server.run(&["admin", "grant-operator", &account.id]);
    assert!(status.success(), "{output}");
    assert!(output.contains("is now an operator"), "{output}");
    let whoami = get(&server, "/_spacebar/admin/whoami", Some(&account.token)).await;
    assert_eq!(whoami.body["operator"], true, "{:?}", whoami.body);
}
