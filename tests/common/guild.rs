//! A guild to test in: its owner, its text channel, and members who join it through an invite.

use serde_json::json;

use super::http::{account, get, post, Account};
use super::Server;

/// A guild made by a fresh account, `owner`, with the text channel guild creation makes.
pub struct Guild {
    pub id: String,
    pub channel: String,
    pub owner: Account,
}

pub async fn guild(server: &impl Server) -> Guild {
    let owner = account(server, "owner").await;
    let (id, channel) = create(server, &owner).await;
    Guild { id, channel, owner }
}

/// A new guild of `owner`'s: (guild id, its text channel's id).
async fn create(server: &impl Server, owner: &Account) -> (String, String) {
    let created = post(
        server,
        "/api/v9/guilds",
        Some(&owner.token),
        json!({ "name": "Test guild" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let guild_id = created.body["id"].as_str().unwrap().to_string();
    let channel = created.body["system_channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    (guild_id, channel)
}

/// Registers `name` and joins them to the guild through a new invite.
pub async fn join(server: &impl Server, guild: &Guild, name: &str) -> Account {
    let joiner = account(server, name).await;
    join_through_invite(server, &guild.owner.token, &guild.channel, &joiner.token).await;
    joiner
}

/// `inviter` makes an invite to `channel` and `joiner` accepts it (for a joiner whose gateway
/// is already open, to see the GUILD_CREATE that follows).
pub async fn join_through_invite(server: &impl Server, inviter: &str, channel: &str, joiner: &str) {
    let invite = post(
        server,
        &format!("/api/v9/channels/{channel}/invites"),
        Some(inviter),
        json!({ "max_age": 0, "unique": true }),
    )
    .await;
    assert_eq!(invite.status, 200, "{:?}", invite.body);
    let code = invite.body["code"].as_str().unwrap();
    let joined = post(
        server,
        &format!("/api/v9/invites/{code}"),
        Some(joiner),
        json!({}),
    )
    .await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
}

/// A guild of `owner`'s that `others` joined through an invite: (guild id, channel id).
pub async fn shared_guild(
    server: &impl Server,
    owner: &Account,
    others: &[&Account],
) -> (String, String) {
    let (guild_id, channel) = create(server, owner).await;
    let invite = post(
        server,
        &format!("/api/v9/channels/{channel}/invites"),
        Some(&owner.token),
        json!({ "max_age": 0 }),
    )
    .await;
    assert_eq!(invite.status, 200, "{:?}", invite.body);
    let code = invite.body["code"].as_str().unwrap().to_string();
    for other in others {
        let joined = post(
            server,
            &format!("/api/v9/invites/{code}"),
            Some(&other.token),
            json!({}),
        )
        .await;
        assert_eq!(joined.status, 200, "{:?}", joined.body);
    }
    (guild_id, channel)
}

/// The guild's first text channel, as its channel list shows it to `token`.
pub async fn text_channel(server: &impl Server, token: &str, guild_id: &str) -> String {
    let channels = get(
        server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(token),
    )
    .await;
    channels
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == 0)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}
