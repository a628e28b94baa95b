//! Message search over real HTTP: `GET /guilds/{id}/messages/search` and
//! `GET /channels/{id}/messages/search` — words (case-insensitive, word forms by prefix), the
//! filters, sorting and paging with `total_results`, who may find what (hidden channels,
//! channels without READ_MESSAGE_HISTORY, ephemeral messages, outsiders) and bad parameters.

use awc::http::Method;
use serde_json::{json, Value};

use crate::cdn::{multipart, png, Part};
use crate::common::guild::{guild, join, Guild};
use crate::common::http::{self, assert_form_error, get, post, request, Account, Response};
use crate::common::TestServer;

/// Sends `content` to `channel` as `token`; the new message's id.
async fn say(server: &TestServer, token: &str, channel: &str, content: &str) -> String {
    let sent = http::say(server, token, channel, content).await;
    sent["id"].as_str().unwrap().to_string()
}

/// Sends `content` with one file, as multipart; the new message's id.
async fn say_with_file(
    server: &TestServer,
    token: &str,
    channel: &str,
    content: &str,
    filename: &str,
    bytes: &[u8],
) -> String {
    let payload = json!({ "content": content }).to_string();
    let parts: [Part<'_>; 2] = [
        ("payload_json", None, payload.as_bytes()),
        ("files[0]", Some(filename), bytes),
    ];
    let (content_type, body) = multipart(&parts);
    let mut response = awc::Client::new()
        .post(server.url(&format!("/api/v9/channels/{channel}/messages")))
        .insert_header(("Authorization", token))
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .unwrap();
    let sent: Value = response.json().await.unwrap();
    assert_eq!(response.status(), 200, "{sent:?}");
    sent["id"].as_str().unwrap().to_string()
}

/// `GET /api/v9/{scope}/messages/search?{query}` (`scope`: `guilds/1` or `channels/2`).
async fn search(server: &TestServer, token: &str, scope: &str, query: &str) -> Response {
    get(
        server,
        &format!("/api/v9/{scope}/messages/search?{query}"),
        Some(token),
    )
    .await
}

/// An error answer: its status and Discord's code.
fn assert_code(response: &Response, status: u16, code: u32) {
    assert_eq!(response.status, status, "{:?}", response.body);
    assert_eq!(response.body["code"], code);
}

/// The hits' contents, in order, checking Discord's shape on the way.
fn contents(response: &Response) -> Vec<String> {
    assert_eq!(response.status, 200, "{:?}", response.body);
    response.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| {
            let hit = hit.as_array().unwrap();
            assert_eq!(hit.len(), 1, "each hit is a one-element list");
            assert_eq!(hit[0]["hit"], true);
            assert!(hit[0].get("reactions").is_none());
            hit[0]["content"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The hits' contents of a guild-wide search.
async fn found(server: &TestServer, token: &str, guild: &Guild, query: &str) -> Vec<String> {
    contents(&search(server, token, &format!("guilds/{}", guild.id), query).await)
}

async fn create_channel(server: &TestServer, guild: &Guild, name: &str) -> String {
    let created = post(
        server,
        &format!("/api/v9/guilds/{}/channels", guild.id),
        Some(&guild.owner.token),
        json!({ "name": name }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

/// Denies `deny` (a permission bit set) to `member` in `channel`.
async fn deny(server: &TestServer, guild: &Guild, channel: &str, member: &Account, deny: u64) {
    let denied = request(
        server,
        Method::PUT,
        &format!("/api/v9/channels/{channel}/permissions/{}", member.id),
        Some(&guild.owner.token),
        Some(json!({ "type": 1, "allow": "0", "deny": deny.to_string() })),
    )
    .await;
    assert_eq!(denied.status, 204, "{:?}", denied.body);
}

#[actix_web::test]
async fn words_match_whatever_their_case_and_form() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let token = &guild.owner.token;
    say(&server, token, &guild.channel, "Running the marathon today").await;
    say(&server, token, &guild.channel, "I like pizza").await;
    say(&server, token, &guild.channel, "PIZZA party tonight!").await;
    say(&server, token, &guild.channel, "Straße und Café").await;

    let pizza = search(
        &server,
        token,
        &format!("guilds/{}", guild.id),
        "content=Pizza",
    )
    .await;
    assert_eq!(contents(&pizza), ["PIZZA party tonight!", "I like pizza"]);
    assert_eq!(pizza.body["total_results"], 2);
    assert_eq!(pizza.body["doing_deep_historical_index"], false);
    assert!(pizza.body["analytics_id"].is_string());

    // Word forms: a word finds the longer words it starts ("run" → "Running").
    assert_eq!(
        found(&server, token, &guild, "content=run").await,
        ["Running the marathon today"]
    );
    // Every word is required, in any order; other scripts are words too.
    assert_eq!(
        found(&server, token, &guild, "content=party%20pizza").await,
        ["PIZZA party tonight!"]
    );
    assert_eq!(
        found(&server, token, &guild, "content=stra%C3%9Fe%20CAF%C3%89").await,
        ["Straße und Café"]
    );
    assert!(found(&server, token, &guild, "content=pasta")
        .await
        .is_empty());
    // Operators and quotes in the content are plain text, never a query error.
    let odd = search(
        &server,
        token,
        &format!("guilds/{}", guild.id),
        "content=%27pizza%20%26%20%21%7C%20%5C%3A%2A",
    )
    .await;
    assert_eq!(contents(&odd), ["PIZZA party tonight!", "I like pizza"]);

    // The channel route finds the same in its channel.
    let in_channel = search(
        &server,
        token,
        &format!("channels/{}", guild.channel),
        "content=pizza&limit=1",
    )
    .await;
    assert_eq!(contents(&in_channel), ["PIZZA party tonight!"]);
    assert_eq!(in_channel.body["total_results"], 2);
}

#[actix_web::test]
async fn filters_narrow_the_matches() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let owner = &guild.owner;
    let member = join(&server, &guild, "member").await;
    let other = create_channel(&server, &guild, "other").await;
    let c = &guild.channel;

    let first = say(&server, &owner.token, c, "plain words").await;
    say(&server, &member.token, c, &format!("hello <@{}>", owner.id)).await;
    say(&server, &member.token, c, "see https://example.com/page").await;
    say_with_file(&server, &owner.token, c, "notes", "notes.txt", b"hi").await;
    say_with_file(&server, &owner.token, c, "picture", "pic.png", &png(4, 4)).await;
    say_with_file(&server, &owner.token, c, "clip", "clip.mp4", b"not really").await;
    let embedded = post(
        &server,
        &format!("/api/v9/channels/{c}/messages"),
        Some(&owner.token),
        json!({ "content": "with embed", "embeds": [{ "title": "News" }] }),
    )
    .await;
    assert_eq!(embedded.status, 200, "{:?}", embedded.body);
    let pinned = say(&server, &owner.token, c, "pin me").await;
    let pin = request(
        &server,
        Method::PUT,
        &format!("/api/v9/channels/{c}/pins/{pinned}"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(pin.status, 204, "{:?}", pin.body);
    let last = say(&server, &owner.token, &other, "elsewhere").await;
    let t = &owner.token;

    let by_member = format!("author_id={}", member.id);
    assert_eq!(
        found(&server, t, &guild, &by_member).await,
        [
            "see https://example.com/page",
            format!("hello <@{}>", owner.id).as_str()
        ]
    );
    let both = format!(
        "author_id={}&author_id={}&content=hello",
        member.id, owner.id
    );
    assert_eq!(found(&server, t, &guild, &both).await.len(), 1);
    assert_eq!(
        found(&server, t, &guild, &format!("mentions={}", owner.id)).await,
        [format!("hello <@{}>", owner.id)]
    );
    assert_eq!(
        found(&server, t, &guild, "has=file").await,
        ["clip", "picture", "notes"]
    );
    assert_eq!(found(&server, t, &guild, "has=image").await, ["picture"]);
    assert_eq!(found(&server, t, &guild, "has=video").await, ["clip"]);
    assert_eq!(
        found(&server, t, &guild, "has=image&has=video").await,
        ["clip", "picture"]
    );
    assert_eq!(found(&server, t, &guild, "has=embed").await, ["with embed"]);
    assert_eq!(
        found(&server, t, &guild, "has=link").await,
        ["see https://example.com/page"]
    );
    assert!(found(&server, t, &guild, "has=sticker").await.is_empty());
    let not_files = found(&server, t, &guild, "has=-file").await;
    assert!(
        !not_files
            .iter()
            .any(|c| ["notes", "picture", "clip"].contains(&c.as_str())),
        "{not_files:?}"
    );
    assert!(
        not_files.contains(&"elsewhere".to_string()),
        "{not_files:?}"
    );
    assert_eq!(found(&server, t, &guild, "pinned=true").await, ["pin me"]);
    assert!(!found(&server, t, &guild, "pinned=false")
        .await
        .contains(&"pin me".to_string()));
    assert_eq!(
        found(&server, t, &guild, &format!("channel_id={other}")).await,
        ["elsewhere"]
    );
    // min_id and max_id leave out the messages named: strictly after, strictly before.
    let between = found(&server, t, &guild, &format!("min_id={first}&max_id={last}")).await;
    assert!(!between.contains(&"plain words".to_string()), "{between:?}");
    assert!(!between.contains(&"elsewhere".to_string()), "{between:?}");
    assert!(between.contains(&"pin me".to_string()), "{between:?}");
}

#[actix_web::test]
async fn sorting_paging_and_the_total() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let t = &guild.owner.token;
    for i in 1..=7 {
        say(&server, t, &guild.channel, &format!("alpha number{i}")).await;
    }
    say(&server, t, &guild.channel, "unrelated").await;
    let scope = format!("guilds/{}", guild.id);

    let first = search(&server, t, &scope, "content=alpha&limit=3").await;
    assert_eq!(
        contents(&first),
        ["alpha number7", "alpha number6", "alpha number5"]
    );
    assert_eq!(first.body["total_results"], 7);
    let second = search(&server, t, &scope, "content=alpha&limit=3&offset=3").await;
    assert_eq!(
        contents(&second),
        ["alpha number4", "alpha number3", "alpha number2"]
    );
    let last = search(&server, t, &scope, "content=alpha&limit=3&offset=6").await;
    assert_eq!(contents(&last), ["alpha number1"]);
    assert_eq!(last.body["total_results"], 7);
    let beyond = search(&server, t, &scope, "content=alpha&offset=100").await;
    assert!(contents(&beyond).is_empty());
    assert_eq!(beyond.body["total_results"], 7);

    let oldest = search(&server, t, &scope, "content=alpha&sort_order=asc&limit=2").await;
    assert_eq!(contents(&oldest), ["alpha number1", "alpha number2"]);
    // Without content, every message matches; 25 is the default page.
    let everything = search(&server, t, &scope, "").await;
    assert_eq!(everything.body["total_results"], 8);
    assert_eq!(contents(&everything).len(), 8);

    // Relevance: the message where the words weigh most comes first, whatever its age.
    say(&server, t, &guild.channel, "beta gamma").await;
    say(&server, t, &guild.channel, "beta delta delta gamma").await;
    say(&server, t, &guild.channel, "gamma beta beta").await;
    say(
        &server,
        t,
        &guild.channel,
        "beta and then much later something gamma",
    )
    .await;
    let relevant = search(&server, t, &scope, "content=beta%20gamma&sort_by=relevance").await;
    let hits = contents(&relevant);
    assert_eq!(hits.len(), 4);
    assert_eq!(
        hits.last().map(String::as_str),
        Some("beta and then much later something gamma")
    );
    let by_time = search(&server, t, &scope, "content=beta%20gamma&sort_by=timestamp").await;
    assert_eq!(
        contents(&by_time).first().map(String::as_str),
        Some("beta and then much later something gamma")
    );
}

#[actix_web::test]
async fn only_what_the_caller_may_read_is_found() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let owner = &guild.owner;
    let member = join(&server, &guild, "member").await;
    let hidden = create_channel(&server, &guild, "hidden").await;
    let no_history = create_channel(&server, &guild, "no-history").await;
    deny(&server, &guild, &hidden, &member, 1 << 10).await;
    deny(&server, &guild, &no_history, &member, 1 << 16).await;
    say(&server, &owner.token, &guild.channel, "secret in general").await;
    say(&server, &owner.token, &hidden, "secret hidden").await;
    say(&server, &owner.token, &no_history, "secret unreadable").await;
    let ephemeral = say(&server, &owner.token, &guild.channel, "secret ephemeral").await;
    server
        .sql(&format!(
            "UPDATE messages SET flags = 64 WHERE id = {ephemeral}"
        ))
        .await;

    let everything = found(&server, &owner.token, &guild, "content=secret").await;
    assert_eq!(everything.len(), 3, "{everything:?}");
    assert!(!everything.contains(&"secret ephemeral".to_string()));

    let theirs = search(
        &server,
        &member.token,
        &format!("guilds/{}", guild.id),
        "content=secret",
    )
    .await;
    assert_eq!(contents(&theirs), ["secret in general"]);
    assert_eq!(theirs.body["total_results"], 1);
    // Naming channels they cannot read finds nothing there, and no error.
    let named = format!("content=secret&channel_id={hidden}&channel_id={no_history}");
    assert!(found(&server, &member.token, &guild, &named)
        .await
        .is_empty());
    // The channel route refuses both.
    for channel in [&hidden, &no_history] {
        let refused = search(
            &server,
            &member.token,
            &format!("channels/{channel}"),
            "content=secret",
        )
        .await;
        assert_code(&refused, 403, 50001);
    }

    // Outsiders learn nothing: the guild and its channels are unknown to them.
    let outsider = crate::common::http::account(&server, "outsider").await;
    for (scope, code) in [
        (format!("guilds/{}", guild.id), 10004),
        (format!("channels/{}", guild.channel), 10003),
    ] {
        let unknown = search(&server, &outsider.token, &scope, "content=secret").await;
        assert_code(&unknown, 404, code);
    }
    let anonymous = get(
        &server,
        &format!("/api/v9/guilds/{}/messages/search", guild.id),
        None,
    )
    .await;
    assert_eq!(anonymous.status, 401);
}

#[actix_web::test]
async fn a_dm_is_searched_by_its_recipients() {
    let server = TestServer::start().await;
    let alice = crate::common::http::account(&server, "alice").await;
    let bob = crate::common::http::account(&server, "bob").await;
    let eve = crate::common::http::account(&server, "eve").await;
    // A DM between strangers is refused (50007): these two are friends.
    crate::common::http::befriend(&server, &alice, &bob).await;
    let dm = crate::common::http::open_dm(&server, &alice, &bob).await;
    say(&server, &alice.token, &dm, "dinner at eight?").await;
    say(&server, &bob.token, &dm, "sure, dinner it is").await;

    let scope = format!("channels/{dm}");
    let hits = search(
        &server,
        &bob.token,
        &scope,
        &format!("content=dinner&author_id={}", alice.id),
    )
    .await;
    assert_eq!(contents(&hits), ["dinner at eight?"]);
    let refused = search(&server, &eve.token, &scope, "content=dinner").await;
    assert_code(&refused, 403, 50001);
}

#[actix_web::test]
async fn bad_parameters_are_form_errors() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let scope = format!("guilds/{}", guild.id);
    let long = "a".repeat(1025);
    let cases: [(&str, &str, &str); 9] = [
        ("limit=0", "limit", "NUMBER_TYPE_MIN"),
        ("limit=26", "limit", "NUMBER_TYPE_MAX"),
        ("offset=9976", "offset", "NUMBER_TYPE_MAX"),
        ("offset=-1", "offset", "NUMBER_TYPE_MIN"),
        ("has=files", "has", "BASE_TYPE_CHOICES"),
        ("author_id=abc", "author_id", "NUMBER_TYPE_COERCE"),
        ("sort_order=up", "sort_order", "BASE_TYPE_CHOICES"),
        ("pinned=maybe", "pinned", "BASE_TYPE_BOOLEAN"),
        (
            &format!("content={long}"),
            "content",
            "BASE_TYPE_MAX_LENGTH",
        ),
    ];
    for (query, field, code) in cases {
        let response = search(&server, &guild.owner.token, &scope, query).await;
        assert_form_error(&response, field, code);
    }
    let bad_guild = get(
        &server,
        "/api/v9/guilds/nope/messages/search",
        Some(&guild.owner.token),
    )
    .await;
    assert_eq!(bad_guild.status, 400, "{:?}", bad_guild.body);
    assert_eq!(bad_guild.body["code"], 50035);
}

#[actix_web::test]
async fn content_is_bounded_and_punctuation_finds_nothing() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let t = &guild.owner.token;
    say(&server, t, &guild.channel, "a b c hello").await;
    say(&server, t, &guild.channel, "abacus").await;
    let scope = format!("guilds/{}", guild.id);

    // 17 words is more than a search takes.
    let many: Vec<String> = (1..=17).map(|i| format!("w{i}")).collect();
    let refused = search(&server, t, &scope, &format!("content={}", many.join("%20"))).await;
    assert_form_error(&refused, "content", "BASE_TYPE_MAX_LENGTH");
    let sixteen = search(
        &server,
        t,
        &scope,
        &format!("content={}", many[..16].join("%20")),
    )
    .await;
    assert!(contents(&sixteen).is_empty());

    // Only punctuation: nothing is searched for, so nothing is found (not everything).
    let bangs = search(&server, t, &scope, "content=!!").await;
    assert!(contents(&bangs).is_empty());
    assert_eq!(bangs.body["total_results"], 0);
    // Short words match only themselves; longer ones start words.
    assert_eq!(
        found(&server, t, &guild, "content=a").await,
        ["a b c hello"]
    );
    assert_eq!(found(&server, t, &guild, "content=aba").await, ["abacus"]);
}

#[actix_web::test]
async fn relevance_counts_only_what_it_ranks() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let t = &guild.owner.token;
    say(&server, t, &guild.channel, "needle first").await;
    server
        .sql(&format!(
            "INSERT INTO messages (id, channel_id, guild_id, author_id, content) \
             SELECT (SELECT max(id) FROM messages) + n, {channel}, {guild}, {author}, 'needle ' || n \
             FROM generate_series(1, 1000) AS n",
            channel = guild.channel,
            guild = guild.id,
            author = guild.owner.id,
        ))
        .await;
    let scope = format!("guilds/{}", guild.id);
    let by_time = search(&server, t, &scope, "content=needle&limit=1").await;
    assert_eq!(by_time.body["total_results"], 1001, "{:?}", by_time.body);
    let ranked = search(&server, t, &scope, "content=needle&sort_by=relevance").await;
    assert_eq!(ranked.body["total_results"], 1000, "{:?}", ranked.body);
    // The last page by relevance is within the total.
    let last = search(
        &server,
        t,
        &scope,
        "content=needle&sort_by=relevance&offset=975",
    )
    .await;
    assert_eq!(contents(&last).len(), 25);
}

#[actix_web::test]
async fn a_search_that_runs_too_long_is_asked_again_later() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let t = &guild.owner.token;
    say(&server, t, &guild.channel, "hello").await;
    let scope = format!("guilds/{}", guild.id);

    // Another connection holds the messages locked: the search waits, then gives up in time.
    let mut holder = AsyncPgConnection::establish(&server.database_url)
        .await
        .unwrap();
    for sql in ["BEGIN", "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"] {
        diesel::sql_query(sql).execute(&mut holder).await.unwrap();
    }
    let started = std::time::Instant::now();
    let slow = search(&server, t, &scope, "content=hello").await;
    assert_eq!(slow.status, 202, "{:?}", slow.body);
    assert_eq!(slow.body["code"], 110000);
    assert!(slow.body["retry_after"].as_f64().unwrap() > 0.0);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    diesel::sql_query("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();

    assert_eq!(found(&server, t, &guild, "content=hello").await, ["hello"]);
}
