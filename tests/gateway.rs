//! The gateway handshake over real WebSockets: HELLO, IDENTIFY → READY, heartbeats, close codes,
//! zlib-stream, and dispatches reaching every session of a user.

use std::time::Duration;

use serde_json::json;

use crate::common::gateway::{Event, Gateway};
use crate::common::guild::{guild, join_through_invite};
use crate::common::http::{account, patch, post, register, request, say};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";

#[actix_web::test]
async fn identify_reaches_ready_with_every_field_clients_need() {
    let server = TestServer::start().await;
    let token = register(&server, "olga").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    assert_eq!(gateway.hello["d"]["heartbeat_interval"], 41250);
    let ready = gateway.identify(&token).await;
    assert_eq!(ready["s"], 1);
    let d = &ready["d"];
    for key in [
        "v",
        "user",
        "user_settings",
        "relationships",
        "private_channels",
        "guilds",
        "merged_members",
        "session_id",
        "session_type",
        "resume_gateway_url",
        "read_state",
        "user_guild_settings",
        "users",
        "sessions",
        "country_code",
        "analytics_token",
        "auth_session_id_hash",
        "friend_suggestion_count",
        "api_code_version",
    ] {
        assert!(d.get(key).is_some(), "READY lacks {key}");
    }
    assert_eq!(d["v"], 9);
    assert_eq!(d["user"]["username"], "olga");
    assert_eq!(d["guilds"], json!([]));
    assert_eq!(d["resume_gateway_url"], format!("ws://{}", server.addr));
    assert_eq!(d["session_id"].as_str().unwrap().len(), 32);
    assert!(
        d.get("application").is_none(),
        "only bots get an application"
    );
    let supplemental = gateway.dispatch("READY_SUPPLEMENTAL").await;
    assert_eq!(supplemental["s"], 2);
    assert_eq!(supplemental["d"]["guilds"], json!([]));
    assert!(supplemental["d"]["merged_presences"].is_object());

    for op in [1, 40] {
        gateway.send(json!({ "op": op, "d": 2 })).await;
        assert_eq!(
            gateway.payload().await,
            json!({ "op": 11, "d": {} }),
            "answer to op {op}"
        );
    }
}

#[actix_web::test]
async fn zlib_stream_is_one_deflate_stream_of_binary_frames() {
    let server = TestServer::start().await;
    let token = register(&server, "pavel").await;
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json&compress=zlib-stream").await;
    let ready = gateway.identify(&token).await;
    assert_eq!(ready["d"]["user"]["username"], "pavel");
    gateway.dispatch("READY_SUPPLEMENTAL").await;
    gateway.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(gateway.payload().await["op"], 11);
    // A change large enough to be deflated is spliced into the stream too.
    patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "bio": "z".repeat(150) }),
    )
    .await;
    let update = gateway.dispatch("USER_UPDATE").await;
    assert_eq!(update["d"]["bio"], "z".repeat(150));
    assert_eq!(gateway.text_frames, 0);
    assert!(gateway.binary_frames >= 5);

    // An unknown compression gets plain text frames, never a close.
    let mut plain = Gateway::connect(&server, "v=9&encoding=json&compress=brotli-maybe").await;
    plain.identify(&token).await;
    assert!(plain.text_frames >= 2);
}

#[actix_web::test]
async fn capabilities_and_intents_may_be_strings() {
    let server = TestServer::start().await;
    let token = register(&server, "quinn").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    gateway
        .send(json!({ "op": 2, "d": { "token": token, "capabilities": "3070", "intents": "513", "properties": {},
                      "compress": true, "presence": { "status": "idle", "since": 0, "activities": [], "afk": false } } }))
        .await;
    let ready = gateway.dispatch("READY").await;
    assert_eq!(ready["d"]["sessions"][0]["status"], "idle");
    // Fermi's start-up VOICE_STATE_UPDATE with nothing in it is a no-op, not an error.
    gateway.send(json!({ "op": 4, "d": { "guild_id": null, "channel_id": null, "self_mute": false, "self_deaf": false } })).await;
    gateway.send(json!({ "op": 1, "d": 1 })).await;
    assert_eq!(gateway.skip_dispatches().await["op"], 11);
}

#[actix_web::test]
async fn protocol_violations_close_with_discords_codes() {
    let server = TestServer::start().await;
    let token = register(&server, "rita").await;

    let mut bad_token = Gateway::connect(&server, JSON).await;
    bad_token
        .send(json!({ "op": 2, "d": { "token": "nope", "properties": {} } }))
        .await;
    assert_eq!(bad_token.closed().await, Some(4004));

    let mut twice = Gateway::connect(&server, JSON).await;
    twice.identify(&token).await;
    twice
        .send(json!({ "op": 2, "d": { "token": token, "properties": {} } }))
        .await;
    assert_eq!(twice.closed().await, Some(4005));

    let mut malformed = Gateway::connect(&server, JSON).await;
    malformed.send_text("{\"op\": 2, \"d\":".into()).await;
    assert_eq!(malformed.closed().await, Some(4002));

    let mut no_token = Gateway::connect(&server, JSON).await;
    no_token
        .send(json!({ "op": 2, "d": { "properties": {} } }))
        .await;
    assert_eq!(no_token.closed().await, Some(4002));

    let mut unknown = Gateway::connect(&server, JSON).await;
    unknown.identify(&token).await;
    unknown.send(json!({ "op": 99, "d": null })).await;
    assert_eq!(unknown.closed().await, Some(4001));

    let mut early = Gateway::connect(&server, JSON).await;
    early.send(json!({ "op": 3, "d": { "status": "online", "since": 0, "activities": [], "afk": false } })).await;
    assert_eq!(early.closed().await, Some(4003));

    let mut oversized = Gateway::connect(&server, JSON).await;
    oversized
        .send_text(format!("{{\"op\":1,\"d\":\"{}\"}}", "x".repeat(64 * 1024)))
        .await;
    assert_eq!(oversized.closed().await, Some(4002));

    let mut old_version = Gateway::connect_raw(&server, "v=3&encoding=json").await;
    assert_eq!(old_version.closed().await, Some(4012));
}

#[actix_web::test]
async fn silent_connections_time_out_with_4009() {
    let server = TestServer::with(&[
        ("gateway.identify_timeout_ms", "300"),
        ("gateway.heartbeat_interval_ms", "200"),
        ("gateway.heartbeat_grace_ms", "100"),
    ])
    .await;
    let token = register(&server, "sam").await;
    let mut never_identifies = Gateway::connect(&server, JSON).await;
    assert_eq!(never_identifies.closed().await, Some(4009));

    let mut never_beats = Gateway::connect(&server, JSON).await;
    never_beats.identify(&token).await;
    assert_eq!(never_beats.closed().await, Some(4009));

    // One that keeps heartbeating stays.
    let mut beating = Gateway::connect(&server, JSON).await;
    beating.identify(&token).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        beating.send(json!({ "op": 1, "d": null })).await;
        assert_eq!(beating.skip_dispatches().await["op"], 11);
    }
}

#[actix_web::test]
async fn user_update_reaches_every_session_of_the_user_and_only_theirs() {
    let server = TestServer::start().await;
    let token = register(&server, "tina").await;
    let other = register(&server, "uma").await;
    let mut first = Gateway::connect(&server, JSON).await;
    first.identify(&token).await;
    let mut second = Gateway::connect(&server, "v=10&encoding=json&compress=zlib-stream").await;
    second.identify(&token).await;
    let mut stranger = Gateway::connect(&server, JSON).await;
    stranger.identify(&other).await;

    patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "bio": "now with a bio" }),
    )
    .await;
    for gateway in [&mut first, &mut second] {
        let update = gateway.dispatch("USER_UPDATE").await;
        assert_eq!(update["d"]["bio"], "now with a bio");
        assert_eq!(update["d"]["username"], "tina");
    }
    stranger.dispatch("READY_SUPPLEMENTAL").await;
    stranger.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(
        stranger.payload().await["op"],
        11,
        "the stranger got something else first"
    );

    patch(
        &server,
        "/api/v9/users/@me/settings",
        &token,
        json!({ "theme": "light" }),
    )
    .await;
    assert_eq!(
        first.dispatch("USER_SETTINGS_UPDATE").await["d"],
        json!({ "theme": "light" })
    );
}

#[actix_web::test]
async fn a_failure_in_one_session_closes_it_with_4000_and_nothing_else() {
    let server = TestServer::start().await;
    let token = register(&server, "victor").await;
    let mut healthy = Gateway::connect(&server, JSON).await;
    healthy.identify(&token).await;

    // Break the database under the server: the next IDENTIFY fails inside its session.
    server.sql("ALTER TABLE users RENAME TO users_gone").await;
    let mut failing = Gateway::connect(&server, JSON).await;
    failing
        .send(json!({ "op": 2, "d": { "token": token, "properties": {} } }))
        .await;
    assert_eq!(failing.closed().await, Some(4000));

    // The other session and the server carry on.
    healthy.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(healthy.skip_dispatches().await["op"], 11);
    server.sql("ALTER TABLE users_gone RENAME TO users").await;
    let mut again = Gateway::connect(&server, JSON).await;
    again.identify(&token).await;
    let me = post(
        &server,
        "/api/v9/auth/login",
        None,
        json!({ "login": "victor@example.org", "password": "correct horse" }),
    )
    .await;
    assert_eq!(me.status, 200);
}

#[actix_web::test]
async fn old_tokens_cannot_identify_after_a_password_change() {
    let server = TestServer::start().await;
    let token = register(&server, "wendy").await;
    patch(
        &server,
        "/api/v9/users/@me",
        &token,
        json!({ "password": "correct horse", "new_password": "another one" }),
    )
    .await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    gateway
        .send(json!({ "op": 2, "d": { "token": token, "properties": {} } }))
        .await;
    assert!(matches!(gateway.next().await, Event::Closed(Some(4004))));
}

#[actix_web::test]
async fn ending_a_login_closes_its_gateway_sessions_with_4004() {
    let server = TestServer::start().await;
    let first = register(&server, "xena").await;
    let login = json!({ "login": "xena@example.org", "password": "correct horse" });
    let second = post(&server, "/api/v9/auth/login", None, login).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut on_first = Gateway::connect(&server, JSON).await;
    on_first.identify(&first).await;
    let mut on_second = Gateway::connect(&server, JSON).await;
    on_second.identify(&second).await;

    // Logging out ends only the sessions of that login.
    let out = crate::common::http::request(
        &server,
        awc::http::Method::POST,
        "/api/v9/auth/logout",
        Some(&first),
        None,
    )
    .await;
    assert_eq!(out.status, 204);
    assert_eq!(on_first.closed().await, Some(4004));
    on_second.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(on_second.skip_dispatches().await["op"], 11);

    // A new password ends every other login, and the one it opens stays.
    let changed = patch(
        &server,
        "/api/v9/users/@me",
        &second,
        json!({ "password": "correct horse", "new_password": "brand new one" }),
    )
    .await;
    let fresh = changed.body["token"].as_str().unwrap().to_string();
    assert_eq!(on_second.closed().await, Some(4004));
    let mut on_fresh = Gateway::connect(&server, JSON).await;
    on_fresh.identify(&fresh).await;
}

/// Identifies and reads past READY and READY_SUPPLEMENTAL: (session id, last seq).
async fn ready_session(gateway: &mut Gateway, token: &str) -> (String, u64) {
    let ready = gateway.identify(token).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_string();
    let supplemental = gateway.dispatch("READY_SUPPLEMENTAL").await;
    (session_id, supplemental["s"].as_u64().unwrap())
}

fn resume(token: &str, session_id: &str, seq: u64) -> serde_json::Value {
    json!({ "op": 6, "d": { "token": token, "session_id": session_id, "seq": seq } })
}

#[actix_web::test]
async fn a_dropped_session_resumes_with_every_missed_dispatch_once_and_in_order() {
    let server = TestServer::start().await;
    let token = register(&server, "yara").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    let (session_id, seq) = ready_session(&mut gateway, &token).await;
    drop(gateway); // the socket goes away without a close frame

    // Events keep coming while the client is away…
    for theme in ["light", "dark", "light"] {
        patch(
            &server,
            "/api/v9/users/@me/settings",
            &token,
            json!({ "theme": theme }),
        )
        .await;
    }
    let mut resumed = Gateway::connect(&server, "v=9&encoding=json&compress=zlib-stream").await;
    resumed.send(resume(&token, &session_id, seq)).await;
    // …and while it resumes.
    let (theme_server, theme_token) = (&server, token.clone());
    let more = async move {
        for theme in ["dark", "light"] {
            patch(
                theme_server,
                "/api/v9/users/@me/settings",
                &theme_token,
                json!({ "theme": theme }),
            )
            .await;
        }
    };
    let reading = async {
        let mut seen = Vec::new();
        while seen
            .iter()
            .filter(|(t, _)| t == "USER_SETTINGS_UPDATE")
            .count()
            < 5
        {
            let payload = resumed.payload().await;
            assert_eq!(payload["op"], 0, "{payload}");
            seen.push((
                payload["t"].as_str().unwrap().to_string(),
                payload["s"].as_u64().unwrap(),
            ));
        }
        seen
    };
    let (seen, ()) = tokio::join!(reading, more);
    let seqs: Vec<u64> = seen.iter().map(|(_, s)| *s).collect();
    let expected: Vec<u64> = (seq + 1..=seq + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "missed, repeated or out of order: {seen:?}");
    let resumed_at = seen
        .iter()
        .position(|(t, _)| t == "RESUMED")
        .expect("no RESUMED");
    assert!(
        resumed_at >= 3,
        "RESUMED came before the three missed dispatches: {seen:?}"
    );
    assert_eq!(seen.len(), 6, "five updates and one RESUMED: {seen:?}");

    // The resumed session is the same session: it can resume again from where it is now.
    drop(resumed);
    let mut again = Gateway::connect(&server, JSON).await;
    again
        .send(resume(&token, &session_id, *seqs.last().unwrap()))
        .await;
    let payload = again.payload().await;
    assert_eq!(
        (payload["t"].as_str(), payload["s"].as_u64()),
        (Some("RESUMED"), Some(seqs.last().unwrap() + 1))
    );
}

#[actix_web::test]
async fn a_burst_of_dispatches_arrives_whole_and_in_order_in_every_compression() {
    let server = TestServer::start().await;
    let token = register(&server, "bertha").await;
    let channel = new_guild_channel(&server, &token, "Burst").await;
    const SENT: usize = 30;
    for query in [
        "v=9&encoding=json&compress=zlib-stream",
        "v=9&encoding=json&compress=zstd-stream",
        "v=10&encoding=etf&compress=zlib-stream",
    ] {
        let mut gateway = Gateway::connect(&server, JSON).await;
        let (session_id, seq) = ready_session(&mut gateway, &token).await;
        drop(gateway);
        // Small messages and large ones (spliced from the shared compressed copy), unread.
        for n in 0..SENT {
            let filler = "w".repeat(if n % 2 == 0 { 10 } else { 600 });
            say(&server, &token, &channel, &format!("{n}:{filler}")).await;
        }
        // The RESUME's replay reaches the connection as one burst, written to the socket
        // together: each payload must still be its own whole frame, in one compression stream.
        let mut resumed = Gateway::connect(&server, query).await;
        let frames_before = resumed.binary_frames;
        resumed.send(resume(&token, &session_id, seq)).await;
        let (mut numbers, mut last) = (Vec::new(), seq);
        loop {
            let payload = resumed.payload().await;
            assert_eq!(payload["s"].as_u64(), Some(last + 1), "{query}: {payload}");
            last += 1;
            match payload["t"].as_str() {
                Some("MESSAGE_CREATE") => {
                    let content = payload["d"]["content"].as_str().unwrap();
                    numbers.push(content.split(':').next().unwrap().parse::<usize>().unwrap());
                }
                Some("RESUMED") => break,
                _ => {}
            }
        }
        assert_eq!(numbers, (0..SENT).collect::<Vec<_>>(), "{query}");
        assert_eq!(
            resumed.binary_frames - frames_before,
            usize::try_from(last - seq).unwrap(),
            "one frame per payload ({query})"
        );
    }
}

#[actix_web::test]
async fn resumes_that_cannot_work_are_refused_the_way_clients_expect() {
    let server = TestServer::with(&[("gateway.resume_window_ms", "300")]).await;
    let token = register(&server, "zoe").await;
    let other = register(&server, "zed").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    let (session_id, seq) = ready_session(&mut gateway, &token).await;
    drop(gateway);

    let cases = [
        (
            resume(&token, "0123456789abcdef0123456789abcdef", seq),
            "an unknown session",
        ),
        (resume(&other, &session_id, seq), "another user's token"),
    ];
    for (payload, why) in cases {
        let mut attempt = Gateway::connect(&server, JSON).await;
        attempt.send(payload).await;
        assert_eq!(
            attempt.payload().await,
            json!({ "op": 9, "d": false }),
            "{why}"
        );
        // Refused, the client may identify on the same connection.
        attempt.identify(&token).await;
    }
    let mut forged = Gateway::connect(&server, JSON).await;
    forged.send(resume("not a token", &session_id, seq)).await;
    assert_eq!(forged.closed().await, Some(4004));

    // Past the resume window the session is gone.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let mut late = Gateway::connect(&server, JSON).await;
    late.send(resume(&token, &session_id, seq)).await;
    assert_eq!(late.payload().await, json!({ "op": 9, "d": false }));
}

#[actix_web::test]
async fn a_graceful_shutdown_asks_clients_to_reconnect() {
    let server = TestServer::start().await;
    let token = register(&server, "quentin").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    ready_session(&mut gateway, &token).await;
    server.stop_gracefully().await;
    assert_eq!(gateway.payload().await, json!({ "op": 7, "d": null }));
    assert_eq!(gateway.closed().await, Some(1012));
}

#[actix_web::test]
async fn too_many_commands_close_with_4008() {
    let server = TestServer::with(&[("gateway.commands_per_minute", "5")]).await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    for _ in 0..5 {
        gateway.send(json!({ "op": 1, "d": null })).await;
        assert_eq!(gateway.payload().await["op"], 11);
    }
    gateway.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(gateway.closed().await, Some(4008));
}

#[actix_web::test]
async fn etf_and_zstd_stream_in_every_combination() {
    let server = TestServer::start().await;
    let token = register(&server, "etta").await;
    for (round, query) in [
        "v=10&encoding=etf",
        "v=10&encoding=etf&compress=zlib-stream",
        "v=10&encoding=etf&compress=zstd-stream",
        "v=9&encoding=json&compress=zstd-stream",
    ]
    .into_iter()
    .enumerate()
    {
        let mut gateway = Gateway::connect(&server, query).await;
        assert_eq!(gateway.hello["d"]["heartbeat_interval"], 41250, "{query}");
        let ready = gateway.identify(&token).await;
        assert_eq!(ready["d"]["user"]["username"], "etta", "{query}");
        assert_eq!(ready["d"]["guilds"], json!([]), "{query}");
        assert_eq!(ready["d"]["user"]["bot"], false, "{query}");
        gateway.dispatch("READY_SUPPLEMENTAL").await;
        gateway.send(json!({ "op": 1, "d": 2 })).await;
        assert_eq!(
            gateway.payload().await,
            json!({ "op": 11, "d": {} }),
            "{query}"
        );
        // A dispatch large enough to go out from the shared compressed copy.
        let bio = format!("{round}{}", "b".repeat(180));
        patch(&server, "/api/v9/users/@me", &token, json!({ "bio": bio })).await;
        assert_eq!(
            gateway.dispatch("USER_UPDATE").await["d"]["bio"],
            bio.as_str()
        );
        assert_eq!(gateway.text_frames, 0, "{query}");
    }
    // A frame that is not a term closes with 4002, like malformed JSON.
    let mut garbage = Gateway::connect(&server, "v=10&encoding=etf").await;
    garbage.send_text("{\"op\":1}".into()).await;
    assert_eq!(garbage.closed().await, Some(4002));
}

#[actix_web::test]
async fn a_clean_close_ends_the_session_and_another_close_keeps_it_resumable() {
    let server = TestServer::start().await;
    let token = register(&server, "clara").await;
    for (code, resumable) in [(1000u16, false), (1001, false), (4000, true)] {
        let mut gateway = Gateway::connect(&server, JSON).await;
        let (session_id, seq) = ready_session(&mut gateway, &token).await;
        gateway.close_with(code).await;
        gateway.closed().await;
        let mut again = Gateway::connect(&server, JSON).await;
        again.send(resume(&token, &session_id, seq)).await;
        let answer = again.payload().await;
        if resumable {
            assert_eq!(answer["t"], "RESUMED", "after close code {code}");
        } else {
            assert_eq!(
                answer,
                json!({ "op": 9, "d": false }),
                "after close code {code}"
            );
        }
    }
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_let_go_and_resumes_without_losing_anything() {
    // Four dispatches may wait for a client; the socket buffers take some megabytes more.
    let server = TestServer::with(&[
        ("gateway.outbound_queue", "4"),
        // Large messages, and room to keep all of them for the RESUME.
        ("limits.message_max_characters", "1048576"),
        ("gateway.outbound_queue_bytes", "67108864"),
    ])
    .await;
    let token = register(&server, "sloth").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    let (session_id, seq) = ready_session(&mut gateway, &token).await;
    let channel = new_guild_channel(&server, &token, "Slow").await;

    // 40 messages of 500 KB (20 MB) while the client reads nothing.
    const SENT: usize = 40;
    let filler = "x".repeat(500_000);
    for n in 0..SENT {
        say(&server, &token, &channel, &format!("{n}:{filler}")).await;
    }

    // What reached the socket before the server gave up on the client, then the close.
    let mut seen: Vec<(u64, usize)> = Vec::new();
    let mut last_seq = seq;
    let message_number = |payload: &serde_json::Value| {
        let content = payload["d"]["content"].as_str().unwrap();
        content.split(':').next().unwrap().parse::<usize>().unwrap()
    };
    let code = loop {
        match gateway.next().await {
            Event::Payload(payload) => {
                if payload["op"] != 0 {
                    continue;
                }
                last_seq = payload["s"].as_u64().unwrap();
                if payload["t"] == "MESSAGE_CREATE" {
                    seen.push((last_seq, message_number(&payload)));
                }
            }
            Event::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(4000), "after {} messages", seen.len());
    assert!(seen.len() < SENT, "the client was never let go");

    // RESUME brings the rest, once each, in order.
    let mut resumed = Gateway::connect(&server, JSON).await;
    resumed.send(resume(&token, &session_id, last_seq)).await;
    while seen.len() < SENT {
        let payload = resumed.payload().await;
        if payload["t"] == "MESSAGE_CREATE" {
            seen.push((payload["s"].as_u64().unwrap(), message_number(&payload)));
        }
    }
    let numbers: Vec<usize> = seen.iter().map(|(_, n)| *n).collect();
    assert_eq!(numbers, (0..SENT).collect::<Vec<_>>());
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
}

#[actix_web::test]
async fn a_guild_joined_is_heard_of_before_anything_in_it_or_its_leaving() {
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let joiner = account(&server, "joiner").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    gateway.identify(&joiner.token).await;

    // The guild's first message follows the join at once (through the guild's actor), and the
    // leave (GUILD_DELETE, through the session registry) at once after it.
    join_through_invite(&server, &g.owner.token, &g.channel, &joiner.token).await;
    say(&server, &g.owner.token, &g.channel, "welcome").await;
    let left = request(
        &server,
        awc::http::Method::DELETE,
        &format!("/api/v9/users/@me/guilds/{}", g.id),
        Some(&joiner.token),
        None,
    )
    .await;
    assert_eq!(left.status, 204, "{:?}", left.body);
    let seen = gateway.dispatches_until("GUILD_DELETE").await;
    let of_guild: Vec<&str> = seen
        .iter()
        .filter(|e| e["d"]["guild_id"] == g.id.as_str() || e["d"]["id"] == g.id.as_str())
        .map(|e| e["t"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(of_guild.first(), Some(&"GUILD_CREATE"), "{of_guild:?}");
    assert_eq!(of_guild.last(), Some(&"GUILD_DELETE"), "{of_guild:?}");
}

/// Makes a guild named `name` and answers its system channel's id.
async fn new_guild_channel(server: &TestServer, token: &str, name: &str) -> String {
    let guild = post(
        server,
        "/api/v9/guilds",
        Some(token),
        json!({ "name": name }),
    )
    .await;
    guild.body["system_channel_id"]
        .as_str()
        .unwrap()
        .to_string()
}
