//! Voice signalling over the real gateway and HTTP: op 4 joins, moves and leaves, what the
//! other members hear (VOICE_STATE_UPDATE), what the joiner gets (VOICE_SERVER_UPDATE with a
//! token the voice gateway's admissions accept), and the checks on the way in.

use serde_json::{json, Value};
use spacebar_actors::voice::{Admission, Flags, RoomKey};

use crate::common::gateway::Gateway;
use awc::http::Method;

use crate::common::guild::{join_through_invite, shared_guild};
use crate::common::http::{account, get, patch, post, request, Account};
use crate::common::{Server, TestServer};

const JSON: &str = "v=9&encoding=json";
const V9: &str = "/api/v9";

/// A guild of `owner`'s that `others` joined: (guild id, its voice channel's id).
pub async fn voice_guild(
    server: &impl Server,
    owner: &Account,
    others: &[&Account],
) -> (String, String) {
    let (guild_id, _) = shared_guild(server, owner, others).await;
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

/// READY lists `user`, alone, in `guild`'s `voice` channel.
pub fn ready_lists_alone_in_voice(ready: &Value, guild: &str, user: &Account, voice: &str) {
    let in_ready = ready["d"]["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == guild)
        .unwrap();
    let states = in_ready["voice_states"].as_array().unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0]["user_id"], user.id.as_str());
    assert_eq!(states[0]["channel_id"], voice);
}

/// A gateway session: the connection and its session id.
pub async fn connect(server: &impl Server, token: &str) -> (Gateway, String) {
    let mut gateway = Gateway::connect(server, JSON).await;
    let ready = gateway.identify(token).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_string();
    (gateway, session_id)
}

pub fn op4(guild_id: &str, channel_id: Option<&str>, self_mute: bool) -> Value {
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

/// A new channel of `kind` in the guild, with `extra` fields (user_limit, overwrites …).
pub async fn channel(
    server: &TestServer,
    owner: &Account,
    guild_id: &str,
    kind: u8,
    extra: Value,
) -> String {
    let mut body = json!({ "name": format!("room-{kind}"), "type": kind });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let created = post(
        server,
        &format!("{V9}/guilds/{guild_id}/channels"),
        Some(&owner.token),
        body,
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

/// The next VOICE_STATE_UPDATE about `user`.
pub async fn state_of(gateway: &mut Gateway, user: &Account) -> Value {
    loop {
        let d = voice_state(gateway).await;
        if d["user_id"] == user.id.as_str() {
            return d;
        }
    }
}

/// `viewer` watches the stream `key` (op 20): its STREAM_CREATE, and the admission that its
/// STREAM_SERVER_UPDATE's token redeems, which must be to the stream's own room.
async fn watch(
    server: &TestServer,
    gateway: &mut Gateway,
    viewer: &Account,
    session_id: &str,
    key: &str,
) -> (Value, Admission) {
    gateway
        .send(json!({ "op": 20, "d": { "stream_key": key } }))
        .await;
    let watched = gateway.dispatch("STREAM_CREATE").await["d"].clone();
    let token = gateway.dispatch("STREAM_SERVER_UPDATE").await["d"]["token"].clone();
    let admission = server
        .admissions()
        .redeem(
            watched["rtc_server_id"].as_str().unwrap(),
            viewer.id.parse().unwrap(),
            session_id,
            token.as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(
        admission.room,
        RoomKey::Stream {
            stream_key: key.to_string()
        }
    );
    (watched, admission)
}

/// The token of the next VOICE_SERVER_UPDATE.
async fn token(gateway: &mut Gateway) -> String {
    let d = gateway.dispatch("VOICE_SERVER_UPDATE").await["d"].clone();
    d["token"].as_str().unwrap().to_string()
}

const CONNECT: u64 = 1 << 20;
const SPEAK: u64 = 1 << 21;

#[actix_web::test]
async fn refused_joins_change_nothing_and_speak_decides_suppression() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let carol = account(&server, "carol").await;
    let (guild, _) = voice_guild(&server, &alice, &[&bob, &carol]).await;
    let small = channel(&server, &alice, &guild, 2, json!({ "user_limit": 1 })).await;
    let everyone_denied = |deny: u64| json!({ "permission_overwrites": [{ "id": guild, "type": 0, "allow": "0", "deny": deny.to_string() }] });
    let locked = channel(&server, &alice, &guild, 2, everyone_denied(CONNECT)).await;
    let quiet = channel(&server, &alice, &guild, 2, everyone_denied(SPEAK)).await;
    let (mut a, _) = connect(&server, &alice.token).await;
    let (mut b, _) = connect(&server, &bob.token).await;
    let (mut c, carol_session) = connect(&server, &carol.token).await;

    b.send(op4(&guild, Some(&small), false)).await;
    assert_eq!(state_of(&mut c, &bob).await["channel_id"], small.as_str());

    // Carol finds the small channel full and the locked one closed; her op 4s are taken in
    // order, so her first voice state is the quiet channel's.
    c.send(op4(&guild, Some(&small), false)).await;
    c.send(op4(&guild, Some(&locked), false)).await;
    c.send(op4(&guild, Some(&quiet), false)).await;
    let state = state_of(&mut c, &carol).await;
    assert_eq!(state["channel_id"], quiet.as_str(), "{state}");
    // Without SPEAK she is in, suppressed: she hears, and nothing of hers is forwarded.
    assert_eq!(state["suppress"], true);
    let carol_id: i64 = carol.id.parse().unwrap();
    let admission = server
        .admissions()
        .redeem(&guild, carol_id, &carol_session, &token(&mut c).await)
        .unwrap();
    let flags = (*admission.flags.borrow()).unwrap();
    assert!(flags.suppress && !flags.forwards_audio() && flags.hears());

    // The owner (MOVE_MEMBERS) goes past the user limit.
    a.send(op4(&guild, Some(&small), false)).await;
    assert_eq!(state_of(&mut b, &alice).await["channel_id"], small.as_str());
}

#[actix_web::test]
async fn moderators_mute_move_and_disconnect_members_in_voice() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let carol = account(&server, "carol").await;
    let (guild, voice) = voice_guild(&server, &alice, &[&bob, &carol]).await;
    let other = channel(&server, &alice, &guild, 2, json!({})).await;
    let (_a, _) = connect(&server, &alice.token).await;
    let (mut b, bob_session) = connect(&server, &bob.token).await;
    let (mut c, _) = connect(&server, &carol.token).await;
    let bob_id: i64 = bob.id.parse().unwrap();
    let member = |user: &Account| format!("{V9}/guilds/{guild}/members/{}", user.id);

    b.send(op4(&guild, Some(&voice), false)).await;
    let first = token(&mut b).await;
    let admission = server
        .admissions()
        .redeem(&guild, bob_id, &bob_session, &first)
        .unwrap();
    assert_eq!(state_of(&mut c, &bob).await["mute"], false);

    // A nickname given meanwhile shows in the voice state's member from then on.
    let named = patch(
        &server,
        &member(&bob),
        &alice.token,
        json!({ "nick": "Bobby" }),
    )
    .await;
    assert_eq!(named.status, 200, "{:?}", named.body);
    // Carol may not mute; Alice may, and everyone sees it, the voice connection too.
    let refused = patch(
        &server,
        &member(&bob),
        &carol.token,
        json!({ "mute": true }),
    )
    .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.body["code"], 50013);
    let muted = patch(
        &server,
        &member(&bob),
        &alice.token,
        json!({ "mute": true }),
    )
    .await;
    assert_eq!(muted.status, 200, "{:?}", muted.body);
    let seen = state_of(&mut c, &bob).await;
    assert_eq!(seen["mute"], true, "{seen}");
    assert_eq!(seen["member"]["nick"], "Bobby", "{seen}");
    assert_eq!(seen["channel_id"], voice.as_str());
    assert_eq!(
        state_of(&mut b, &bob).await["mute"],
        true,
        "Bob hears it too"
    );
    assert_eq!(
        *admission.flags.borrow(),
        Some(Flags {
            mute: true,
            ..Flags::default()
        })
    );

    // Moving someone who is not in voice is refused; moving Bob sends him a new token.
    let nobody = patch(
        &server,
        &member(&carol),
        &alice.token,
        json!({ "channel_id": other }),
    )
    .await;
    assert_eq!(nobody.status, 400, "{:?}", nobody.body);
    assert_eq!(nobody.body["code"], 40032);
    let moved = patch(
        &server,
        &member(&bob),
        &alice.token,
        json!({ "channel_id": other }),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let own = state_of(&mut b, &bob).await;
    assert_eq!(own["channel_id"], other.as_str());
    assert_eq!(own["mute"], true, "a server mute stays with the member");
    let second = token(&mut b).await;
    assert_eq!(
        *admission.flags.borrow(),
        None,
        "the old room's connection hangs up"
    );
    let moved_in = server
        .admissions()
        .redeem(&guild, bob_id, &bob_session, &second)
        .unwrap();
    assert_eq!(moved_in.room, room(&guild, &other));
    assert_eq!(state_of(&mut c, &bob).await["channel_id"], other.as_str());
    let read = get(
        &server,
        &format!("{V9}/guilds/{guild}/voice-states/{}", bob.id),
        Some(&carol.token),
    )
    .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["channel_id"], other.as_str());

    // Disconnecting: everyone hears channel_id null, and the voice state is gone.
    let out = patch(
        &server,
        &member(&bob),
        &alice.token,
        json!({ "channel_id": null }),
    )
    .await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert!(state_of(&mut c, &bob).await["channel_id"].is_null());
    assert_eq!(*moved_in.flags.borrow(), None);
    let gone = get(
        &server,
        &format!("{V9}/guilds/{guild}/voice-states/{}", bob.id),
        Some(&carol.token),
    )
    .await;
    assert_eq!(gone.status, 404, "{:?}", gone.body);
    assert_eq!(gone.body["code"], 10065);

    // The audit log has the mute, the move and the disconnect.
    let log = get(
        &server,
        &format!("{V9}/guilds/{guild}/audit-logs"),
        Some(&alice.token),
    )
    .await;
    let actions: Vec<i64> = log.body["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action_type"].as_i64().unwrap())
        .collect();
    for action in [24, 26, 27] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }

    // Kicked from the guild, a member leaves its voice channel.
    b.send(op4(&guild, Some(&voice), false)).await;
    assert_eq!(state_of(&mut c, &bob).await["channel_id"], voice.as_str());
    let kicked = request(
        &server,
        Method::DELETE,
        &member(&bob),
        Some(&alice.token),
        None,
    )
    .await;
    assert_eq!(kicked.status, 204, "{:?}", kicked.body);
    assert!(state_of(&mut c, &bob).await["channel_id"].is_null());
}

#[actix_web::test]
async fn voice_states_reach_later_sessions_and_end_with_the_session() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let (guild, voice) = voice_guild(&server, &alice, &[&bob]).await;
    let (mut a1, first_session) = connect(&server, &alice.token).await;
    let alice_id: i64 = alice.id.parse().unwrap();
    a1.send(op4(&guild, Some(&voice), false)).await;
    let first = token(&mut a1).await;
    let admission = server
        .admissions()
        .redeem(&guild, alice_id, &first_session, &first)
        .unwrap();

    // A later IDENTIFY sees Alice in voice, in READY's guild and in READY_SUPPLEMENTAL.
    let mut b = Gateway::connect(&server, JSON).await;
    let ready = b.identify(&bob.token).await;
    ready_lists_alone_in_voice(&ready, &guild, &alice, &voice);
    let supplemental = b.dispatch("READY_SUPPLEMENTAL").await;
    let in_supplemental = supplemental["d"]["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == guild.as_str())
        .unwrap();
    assert_eq!(
        in_supplemental["voice_states"][0]["session_id"],
        first_session.as_str()
    );

    // Someone joining the guild finds Alice in voice in its GUILD_CREATE.
    let carol = account(&server, "carol").await;
    let (mut c, _) = connect(&server, &carol.token).await;
    let guild_object = get(&server, &format!("{V9}/guilds/{guild}"), Some(&alice.token)).await;
    let text = guild_object.body["system_channel_id"].as_str().unwrap();
    join_through_invite(&server, &alice.token, text, &carol.token).await;
    let created = c.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(
        created["voice_states"][0]["user_id"],
        alice.id.as_str(),
        "{created}"
    );

    // Joining from another session moves the voice state there: the first connection ends.
    let (mut a2, second_session) = connect(&server, &alice.token).await;
    a2.send(op4(&guild, Some(&voice), false)).await;
    assert_eq!(
        state_of(&mut b, &alice).await["session_id"],
        second_session.as_str()
    );
    assert!(!token(&mut a2).await.is_empty());
    assert_eq!(*admission.flags.borrow(), None);

    // The first session ending leaves the voice state alone; the second ending ends it.
    a1.close_with(1000).await;
    a2.close_with(1000).await;
    let left = state_of(&mut b, &alice).await;
    assert!(left["channel_id"].is_null(), "{left}");
    assert_eq!(left["session_id"], second_session.as_str(), "{left}");
}

#[actix_web::test]
async fn stage_speakers_regions_and_deleted_channels() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let (guild, voice) = voice_guild(&server, &alice, &[&bob]).await;
    let stage = channel(&server, &alice, &guild, 13, json!({})).await;
    let (mut a, _) = connect(&server, &alice.token).await;
    let (mut b, bob_session) = connect(&server, &bob.token).await;
    let bob_id: i64 = bob.id.parse().unwrap();

    for path in [
        format!("{V9}/voice/regions"),
        format!("{V9}/guilds/{guild}/regions"),
    ] {
        let regions = get(&server, &path, Some(&bob.token)).await;
        assert_eq!(regions.status, 200, "{path}: {:?}", regions.body);
        assert_eq!(regions.body[0]["id"], "spacebar");
        assert_eq!(regions.body[0]["optimal"], true);
    }

    // Everyone joins a stage suppressed, and may ask to speak.
    let mine = format!("{V9}/guilds/{guild}/voice-states/@me");
    let not_in = patch(
        &server,
        &mine,
        &bob.token,
        json!({ "channel_id": stage, "suppress": true }),
    )
    .await;
    assert_eq!(not_in.body["code"], 10065, "{:?}", not_in.body);
    b.send(op4(&guild, Some(&stage), false)).await;
    assert_eq!(state_of(&mut a, &bob).await["suppress"], true);
    let admission = server
        .admissions()
        .redeem(&guild, bob_id, &bob_session, &token(&mut b).await)
        .unwrap();
    let asked = patch(
        &server,
        &mine,
        &bob.token,
        json!({ "channel_id": stage, "request_to_speak_timestamp": "2026-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(asked.status, 204, "{:?}", asked.body);
    assert!(state_of(&mut a, &bob).await["request_to_speak_timestamp"].is_string());
    let wrong = patch(
        &server,
        &mine,
        &bob.token,
        json!({ "channel_id": voice, "suppress": true }),
    )
    .await;
    assert_eq!(wrong.body["code"], 50024, "{:?}", wrong.body);

    // Lifting suppression takes MUTE_MEMBERS: not Bob's, but Alice's.
    let refused = patch(
        &server,
        &mine,
        &bob.token,
        json!({ "channel_id": stage, "suppress": false }),
    )
    .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let his = format!("{V9}/guilds/{guild}/voice-states/{}", bob.id);
    let invited = patch(
        &server,
        &his,
        &alice.token,
        json!({ "channel_id": stage, "suppress": false }),
    )
    .await;
    assert_eq!(invited.status, 204, "{:?}", invited.body);
    assert_eq!(state_of(&mut a, &bob).await["suppress"], false);
    assert!(admission.flags.borrow().unwrap().forwards_audio());

    // Deleting the channel disconnects whoever is in it.
    let deleted = request(
        &server,
        Method::DELETE,
        &format!("{V9}/channels/{stage}"),
        Some(&alice.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert!(state_of(&mut a, &bob).await["channel_id"].is_null());
    assert_eq!(*admission.flags.borrow(), None);
}

/// `user` declines the call in `channel` (`…/call/stop-ringing` with no body at all): 204.
pub async fn decline(server: &impl Server, user: &Account, channel: &str) {
    let declined = request(
        server,
        Method::POST,
        &format!("{V9}/channels/{channel}/call/stop-ringing"),
        Some(&user.token),
        None,
    )
    .await;
    assert_eq!(declined.status, 204, "{:?}", declined.body);
}

#[actix_web::test]
async fn a_dm_call_rings_the_other_recipient_streams_and_ends_with_its_last_participant() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let (_, voice) = voice_guild(&server, &alice, &[&bob]).await;
    let dm = post(
        &server,
        &format!("{V9}/users/@me/channels"),
        Some(&alice.token),
        json!({ "recipient_id": bob.id }),
    )
    .await;
    assert_eq!(dm.status, 200, "{:?}", dm.body);
    let dm = dm.body["id"].as_str().unwrap().to_string();
    let (mut a, alice_session) = connect(&server, &alice.token).await;
    let (mut b, bob_session) = connect(&server, &bob.token).await;
    let call = |channel_id: Option<&str>| json!({ "op": 4, "d": { "guild_id": null, "channel_id": channel_id, "self_mute": false, "self_deaf": false } });

    // Fermi's start-up op 4 (no guild, no channel) is a no-op; Alice then starts the call.
    a.send(call(None)).await;
    a.send(call(Some(&dm))).await;
    let created = b.dispatch("CALL_CREATE").await["d"].clone();
    assert_eq!(created["channel_id"], dm.as_str());
    assert_eq!(created["ringing"], json!([bob.id]));
    let state = state_of(&mut b, &alice).await;
    assert!(state["guild_id"].is_null());
    assert_eq!(state["channel_id"], dm.as_str());
    let server_update = a.dispatch("VOICE_SERVER_UPDATE").await["d"].clone();
    assert!(server_update["guild_id"].is_null());
    assert_eq!(server_update["channel_id"], dm.as_str());
    assert_eq!(server_update["endpoint"], format!("{}/voice", server.addr));
    let alice_id: i64 = alice.id.parse().unwrap();
    let issued = server_update["token"].as_str().unwrap();
    let admission = server
        .admissions()
        .redeem(&dm, alice_id, &alice_session, issued)
        .unwrap();
    assert_eq!(
        admission.room,
        RoomKey::Call {
            channel_id: dm.parse().unwrap()
        }
    );

    // Bob declines (no body at all), and the ringing stops for both; Alice rings everyone
    // again (`recipients: null`). A call is no guild channel's.
    decline(&server, &bob, &dm).await;
    for gateway in [&mut a, &mut b] {
        assert_eq!(
            gateway.dispatch("CALL_UPDATE").await["d"]["ringing"],
            json!([])
        );
    }
    let (server_ref, alice_token) = (&server, alice.token.as_str());
    let ring = move |channel: String| async move {
        post(
            server_ref,
            &format!("{V9}/channels/{channel}/call/ring"),
            Some(alice_token),
            json!({ "recipients": null }),
        )
        .await
    };
    let rung = ring(dm.clone()).await;
    assert_eq!(rung.status, 204, "{:?}", rung.body);
    for gateway in [&mut a, &mut b] {
        assert_eq!(
            gateway.dispatch("CALL_UPDATE").await["d"]["ringing"],
            json!([bob.id])
        );
    }
    let in_a_guild = ring(voice.clone()).await;
    assert_eq!(
        (in_a_guild.status.as_u16(), &in_a_guild.body["code"]),
        (400, &json!(50024))
    );

    // Bob answers: nobody rings any more, and both are in the call.
    b.send(call(Some(&dm))).await;
    let updated = a.dispatch("CALL_UPDATE").await["d"].clone();
    assert_eq!(updated["ringing"], json!([]));
    let mut inside: Vec<&str> = updated["voice_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_id"].as_str().unwrap())
        .collect();
    inside.sort_unstable();
    let mut expected = vec![alice.id.as_str(), bob.id.as_str()];
    expected.sort_unstable();
    assert_eq!(inside, expected);
    assert!(!token(&mut b).await.is_empty());

    // Alice goes live in the call (a stream key of its own), and Bob watches.
    a.send(
        json!({ "op": 18, "d": { "type": "call", "channel_id": dm, "preferred_region": null } }),
    )
    .await;
    let key = format!("call:{dm}:{}", alice.id);
    let created = a.dispatch("STREAM_CREATE").await["d"].clone();
    assert_eq!(created["stream_key"], key.as_str());
    assert_eq!(
        a.dispatch("STREAM_SERVER_UPDATE").await["d"]["stream_key"],
        key.as_str()
    );
    assert_eq!(state_of(&mut b, &alice).await["self_stream"], true);
    let (watched, watching) = watch(&server, &mut b, &bob, &bob_session, &key).await;
    assert_eq!(watched["rtc_server_id"], created["rtc_server_id"]);
    let viewers = a.dispatch("STREAM_UPDATE").await["d"]["viewer_ids"].clone();
    assert_eq!(viewers, json!([bob.id]));

    // Alice hangs up: her stream ends for Bob too, and she is out of the call; then Bob
    // hangs up and the call ends.
    a.send(call(None)).await;
    let (mut stream_ended, mut alice_left) = (false, false);
    while !(stream_ended && alice_left) {
        let payload = b.payload().await;
        match payload["t"].as_str() {
            Some("STREAM_DELETE") => {
                assert_eq!(payload["d"]["stream_key"], key.as_str());
                stream_ended = true;
            }
            Some("VOICE_STATE_UPDATE") if payload["d"]["user_id"] == alice.id.as_str() => {
                assert!(payload["d"]["channel_id"].is_null());
                alice_left = true;
            }
            _ => {}
        }
    }
    assert_eq!(*watching.flags.borrow(), None);
    assert_eq!(*admission.flags.borrow(), None);
    b.send(call(None)).await;
    let deleted = a.dispatch("CALL_DELETE").await["d"].clone();
    assert_eq!(deleted["channel_id"], dm.as_str());
}

#[actix_web::test]
async fn go_live_streams_are_created_watched_paused_and_ended() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let (guild, voice) = voice_guild(&server, &alice, &[&bob]).await;
    let (mut a, alice_session) = connect(&server, &alice.token).await;
    let (mut b, bob_session) = connect(&server, &bob.token).await;
    a.send(op4(&guild, Some(&voice), false)).await;
    token(&mut a).await;
    b.send(op4(&guild, Some(&voice), false)).await;
    token(&mut b).await;
    let alice_id: i64 = alice.id.parse().unwrap();
    let key = format!("guild:{guild}:{voice}:{}", alice.id);
    let go_live = json!({ "op": 18, "d": { "type": "guild", "guild_id": guild, "channel_id": voice, "preferred_region": null } });

    // Alice goes live: she gets the stream and a token for it; the guild sees self_stream.
    a.send(go_live.clone()).await;
    let created = a.dispatch("STREAM_CREATE").await["d"].clone();
    assert_eq!(created["stream_key"], key.as_str());
    assert_eq!(created["viewer_ids"], json!([]));
    assert_eq!(created["paused"], false);
    let rtc_server_id = created["rtc_server_id"].as_str().unwrap().to_string();
    let streamer = a.dispatch("STREAM_SERVER_UPDATE").await["d"].clone();
    assert_eq!(streamer["stream_key"], key.as_str());
    assert_eq!(streamer["endpoint"], format!("{}/voice", server.addr));
    let stream_room = RoomKey::Stream {
        stream_key: key.clone(),
    };
    let publishing = server
        .admissions()
        .redeem(
            &rtc_server_id,
            alice_id,
            &alice_session,
            streamer["token"].as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(publishing.room, stream_room);
    loop {
        let state = state_of(&mut b, &alice).await;
        if state["self_stream"] == true {
            break;
        }
    }

    // Bob watches with a token of his own; Alice learns who watches.
    let (watched, watching) = watch(&server, &mut b, &bob, &bob_session, &key).await;
    assert_eq!(watched["rtc_server_id"], rtc_server_id.as_str());
    assert_eq!(watched["viewer_ids"], json!([bob.id]));
    assert_eq!(
        a.dispatch("STREAM_UPDATE").await["d"]["viewer_ids"],
        json!([bob.id])
    );

    // Pausing reaches the watcher; stopping ends it for both, and their connections to it.
    a.send(json!({ "op": 22, "d": { "stream_key": key, "paused": true } }))
        .await;
    assert_eq!(b.dispatch("STREAM_UPDATE").await["d"]["paused"], true);
    a.send(json!({ "op": 19, "d": { "stream_key": key } }))
        .await;
    for gateway in [&mut a, &mut b] {
        let deleted = gateway.dispatch("STREAM_DELETE").await["d"].clone();
        assert_eq!(deleted["stream_key"], key.as_str());
        assert_eq!(deleted["reason"], "user_requested");
        assert_eq!(deleted["unavailable"], false);
    }
    assert_eq!(*publishing.flags.borrow(), None);
    assert_eq!(*watching.flags.borrow(), None);
    assert_eq!(state_of(&mut b, &alice).await["self_stream"], false);

    // Leaving the channel ends a stream too.
    a.send(go_live).await;
    a.dispatch("STREAM_SERVER_UPDATE").await;
    b.send(json!({ "op": 20, "d": { "stream_key": key } }))
        .await;
    b.dispatch("STREAM_SERVER_UPDATE").await;
    a.send(op4(&guild, None, false)).await;
    let ended = b.dispatch("STREAM_DELETE").await["d"].clone();
    assert_eq!(ended["reason"], "stream_ended");
}
