//! Voice signalling over the real gateway and HTTP: op 4 joins, moves and leaves, what the
//! other members hear (VOICE_STATE_UPDATE), what the joiner gets (VOICE_SERVER_UPDATE with a
//! token the voice gateway's admissions accept), and the checks on the way in.

use serde_json::{json, Value};
use spacebar_actors::voice::{Flags, RoomKey};

use crate::common::gateway::Gateway;
use crate::common::http::{account, get, post, Account};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";
const V9: &str = "/api/v9";

/// A guild of `owner`'s that `others` joined: (guild id, its voice channel's id).
async fn voice_guild(
    server: &TestServer,
    owner: &Account,
    others: &[&Account],
) -> (String, String) {
    let created = post(
        server,
        &format!("{V9}/guilds"),
        Some(&owner.token),
        json!({ "name": "Voices" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let guild_id = created.body["id"].as_str().unwrap().to_string();
    let text = created.body["system_channel_id"].as_str().unwrap();
    let invite = post(
        server,
        &format!("{V9}/channels/{text}/invites"),
        Some(&owner.token),
        json!({ "max_age": 0 }),
    )
    .await;
    let code = invite.body["code"].as_str().unwrap().to_string();
    for other in others {
        let joined = post(
            server,
            &format!("{V9}/invites/{code}"),
            Some(&other.token),
            json!({}),
        )
        .await;
        assert_eq!(joined.status, 200, "{:?}", joined.body);
    }
    let channels = get(
        server,
        &format!("{V9}/guilds/{guild_id}/channels"),
        Some(&owner.token),
    )
    .await;
    let voice = channels
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == 2)
        .unwrap();
    (guild_id, voice["id"].as_str().unwrap().to_string())
}

/// A gateway session: the connection and its session id.
async fn connect(server: &TestServer, token: &str) -> (Gateway, String) {
    let mut gateway = Gateway::connect(server, JSON).await;
    let ready = gateway.identify(token).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_string();
    (gateway, session_id)
}

fn op4(guild_id: &str, channel_id: Option<&str>, self_mute: bool) -> Value {
    json!({ "op": 4, "d": { "guild_id": guild_id, "channel_id": channel_id, "self_mute": self_mute, "self_deaf": false, "self_video": false } })
}

/// The next VOICE_STATE_UPDATE's `d`.
async fn voice_state(gateway: &mut Gateway) -> Value {
    gateway.dispatch("VOICE_STATE_UPDATE").await["d"].clone()
}

fn room(guild_id: &str, channel_id: &str) -> RoomKey {
    RoomKey::Guild {
        guild_id: guild_id.parse().unwrap(),
        channel_id: channel_id.parse().unwrap(),
    }
}

#[actix_web::test]
async fn joining_tells_the_guild_and_gives_the_joiner_a_token() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let (guild, voice) = voice_guild(&server, &alice, &[&bob]).await;
    let (mut a, session) = connect(&server, &alice.token).await;
    let (mut b, _) = connect(&server, &bob.token).await;

    a.send(op4(&guild, Some(&voice), false)).await;
    let state = voice_state(&mut a).await;
    assert_eq!(state["guild_id"], guild.as_str());
    assert_eq!(state["channel_id"], voice.as_str());
    assert_eq!(state["user_id"], alice.id.as_str());
    assert_eq!(state["session_id"], session.as_str());
    assert_eq!(state["member"]["user"]["id"], alice.id.as_str());
    for flag in [
        "mute",
        "deaf",
        "self_mute",
        "self_deaf",
        "self_video",
        "self_stream",
        "suppress",
    ] {
        assert_eq!(state[flag], false, "{flag}: {state}");
    }
    assert!(state["request_to_speak_timestamp"].is_null());
    let server_update = a.dispatch("VOICE_SERVER_UPDATE").await["d"].clone();
    assert_eq!(server_update["guild_id"], guild.as_str());
    assert_eq!(server_update["endpoint"], format!("{}/voice", server.addr));
    let token = server_update["token"].as_str().unwrap();

    let seen = voice_state(&mut b).await;
    assert_eq!(seen["user_id"], alice.id.as_str());
    assert_eq!(seen["channel_id"], voice.as_str());

    // The voice gateway's IDENTIFY finds the admission, once, with the voice state's flags.
    let alice_id: i64 = alice.id.parse().unwrap();
    assert!(server
        .admissions()
        .redeem(&guild, alice_id, "another-session", token)
        .is_none());
    let admission = server
        .admissions()
        .redeem(&guild, alice_id, &session, token)
        .expect("the token is admitted");
    assert_eq!(admission.room, room(&guild, &voice));
    assert_eq!(*admission.flags.borrow(), Some(Flags::default()));

    // Muting oneself reaches the others and the voice connection, and needs no new token.
    a.send(op4(&guild, Some(&voice), true)).await;
    assert_eq!(voice_state(&mut b).await["self_mute"], true);
    let muted = Flags {
        self_mute: true,
        ..Flags::default()
    };
    assert_eq!(*admission.flags.borrow(), Some(muted));

    // Leaving: everyone hears channel_id null and the voice connection is dismissed.
    a.send(op4(&guild, None, false)).await;
    let left = voice_state(&mut b).await;
    assert_eq!(left["user_id"], alice.id.as_str());
    assert!(left["channel_id"].is_null(), "{left}");
    assert_eq!(*admission.flags.borrow(), None);
}
