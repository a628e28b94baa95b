//! TLS on the listener: with `http.tls_cert` and `http.tls_key` set, the API answers over HTTPS,
//! hands out `wss://` gateway URLs, and the gateway speaks over TLS.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;

use crate::common::TestServer;

/// An awc client that trusts only `certificate`.
fn client_trusting(certificate: &rcgen::Certificate) -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .finish()
}

#[actix_web::test]
async fn the_listener_speaks_tls_for_the_api_and_the_gateway() {
    let signed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, signed.cert.pem()).unwrap();
    std::fs::write(&key, signed.signing_key.serialize_pem()).unwrap();
    let server = TestServer::with(&[
        ("http.tls_cert", cert.to_str().unwrap()),
        ("http.tls_key", key.to_str().unwrap()),
    ])
    .await;
    let client = client_trusting(&signed.cert);
    let base = format!("https://localhost:{}", server.addr.port());

    let mut answer = client
        .get(format!("{base}/api/v9/gateway"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    let gateway = body["url"].as_str().unwrap();
    assert_eq!(gateway, format!("wss://localhost:{}", server.addr.port()));

    let (_, mut socket) = client
        .ws(format!("{gateway}/?v=9&encoding=json"))
        .connect()
        .await
        .unwrap();
    let Some(Ok(awc::ws::Frame::Text(hello))) = socket.next().await else {
        panic!("no HELLO over wss://")
    };
    let hello: Value = serde_json::from_slice(&hello).unwrap();
    assert_eq!(hello["op"], 10);

    // A plain-HTTP request to the TLS port gets no API answer.
    let plain = awc::Client::new()
        .get(server.url("/api/v9/gateway"))
        .send()
        .await;
    assert!(plain.map_or(true, |r| r.status() != 200));
}
