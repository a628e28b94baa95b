//! Building a world over REST: guilds with their text channel and an invite,
//! and users joining them through the invites.

use std::collections::BTreeSet;

use awc::http::Method;
use awc::Client;
use serde::Deserialize;
use serde_json::json;

use crate::rest::{self, Batch};
use crate::BoxError;

/// A guild ready for the benchmark.
#[derive(Clone, Debug)]
pub struct GuildInfo {
    pub id: String,
    /// Its text channel (`general` if there is one).
    pub channel_id: String,
    pub invite: String,
}

#[derive(Deserialize)]
struct IdBody {
    id: Id,
}

#[derive(Deserialize)]
struct ChannelBody {
    id: Id,
    #[serde(rename = "type")]
    kind: i64,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct InviteBody {
    code: String,
}

/// A snowflake, as a string (Discord) or a number (some servers).
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(u64),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Text(s) => s,
            Id::Number(n) => n.to_string(),
        }
    }
}

/// `owner` creates `count` guilds (`POST /guilds`), finds each one's text
/// channel (`GET /guilds/{id}/channels`) and makes a never-expiring invite to
/// it (`POST /channels/{id}/invites`).
pub async fn create_guilds(
    client: &Client,
    api: &str,
    owner: &str,
    count: usize,
    concurrency: usize,
    run_id: &str,
) -> Batch<GuildInfo> {
    rest::run_bounded("guilds", count, concurrency, |i| async move {
        let body = json!({ "name": format!("bench {run_id} {i}") });
        let guild: IdBody = rest::call_ok(
            client,
            Method::POST,
            &format!("{api}/guilds"),
            Some(owner),
            Some(&body),
            "POST /guilds",
        )
        .await?;
        let id = guild.id.into_string();
        let channels: Vec<ChannelBody> = rest::call_ok(
            client,
            Method::GET,
            &format!("{api}/guilds/{id}/channels"),
            Some(owner),
            None,
            "GET /guilds/{id}/channels",
        )
        .await?;
        let channel_id = pick_text_channel(channels)
            .ok_or_else(|| "GET /guilds/{id}/channels: no text channel (type 0)".to_string())?;
        let invite: InviteBody = rest::call_ok(
            client,
            Method::POST,
            &format!("{api}/channels/{channel_id}/invites"),
            Some(owner),
            Some(&json!({ "max_age": 0, "max_uses": 0 })),
            "POST /channels/{id}/invites",
        )
        .await?;
        Ok(GuildInfo {
            id,
            channel_id,
            invite: invite.code,
        })
    })
    .await
}

/// The guild's first voice channel (type 2): guild creation makes one.
pub async fn voice_channel(
    client: &Client,
    api: &str,
    token: &str,
    guild_id: &str,
) -> Result<String, String> {
    let channels: Vec<ChannelBody> = rest::call_ok(
        client,
        Method::GET,
        &format!("{api}/guilds/{guild_id}/channels"),
        Some(token),
        None,
        "GET /guilds/{id}/channels",
    )
    .await?;
    channels
        .into_iter()
        .find(|c| c.kind == 2)
        .map(|c| c.id.into_string())
        .ok_or_else(|| "GET /guilds/{id}/channels: no voice channel (type 2)".to_string())
}

/// The `general` text channel, else the first text channel.
fn pick_text_channel(channels: Vec<ChannelBody>) -> Option<String> {
    let mut text = channels.into_iter().filter(|c| c.kind == 0);
    let first = text.next()?;
    if first.name.as_deref() == Some("general") {
        return Some(first.id.into_string());
    }
    Some(
        text.find(|c| c.name.as_deref() == Some("general"))
            .unwrap_or(first)
            .id
            .into_string(),
    )
}

/// Every user in `tokens` joins every guild (`POST /invites/{code}`). Pairs are
/// taken guild-fastest, so concurrent joins go to different guilds.
/// Returns the batch and the indices (into `tokens`) of the users for whom at
/// least one join failed.
pub async fn join_all(
    client: &Client,
    api: &str,
    tokens: &[String],
    guilds: &[GuildInfo],
    concurrency: usize,
) -> (Batch<()>, BTreeSet<usize>) {
    let g = guilds.len();
    let pairs: Vec<(usize, usize)> = (0..tokens.len() * g).map(|j| (j / g, j % g)).collect();
    join_pairs(client, api, tokens, guilds, &pairs, concurrency).await
}

/// User `tokens[u]` joins guild `guilds[g]` for every `(u, g)` in `pairs`, in
/// that order. Returns the batch and the indices (into `tokens`) of the users
/// for whom at least one join failed.
pub async fn join_pairs(
    client: &Client,
    api: &str,
    tokens: &[String],
    guilds: &[GuildInfo],
    pairs: &[(usize, usize)],
    concurrency: usize,
) -> (Batch<()>, BTreeSet<usize>) {
    let batch = rest::run_bounded("joins", pairs.len(), concurrency, |j| {
        let pair = pairs.get(j).copied();
        async move {
            let Some((token, guild)) =
                pair.and_then(|(u, g)| Some((tokens.get(u)?, guilds.get(g)?)))
            else {
                return Err("internal: join index out of range".to_string());
            };
            let url = format!("{api}/invites/{}", guild.invite);
            let (status, bytes) =
                rest::call(client, Method::POST, &url, Some(token), Some(&json!({})))
                    .await
                    .map_err(|e| format!("POST /invites/{{code}}: {e}"))?;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!(
                    "POST /invites/{{code}}: HTTP {}: {}",
                    status.as_u16(),
                    rest::snippet(&bytes)
                ))
            }
        }
    })
    .await;
    let failed_users = batch
        .failed
        .iter()
        .filter_map(|&j| pairs.get(j).map(|(u, _)| *u))
        .collect();
    (batch, failed_users)
}

/// Registers `members` users; user 0 creates `guilds_wanted` guilds (text channel, invite)
/// and every other user joins all of them, `concurrency` requests at a time, with progress
/// lines. A user whose join failed is left out (stays offline). Returns the tokens (the
/// owner's first) and the guilds.
pub async fn populate(
    client: &Client,
    api: &str,
    members: usize,
    guilds_wanted: usize,
    concurrency: usize,
    run_id: &str,
) -> Result<(Vec<String>, Vec<GuildInfo>), BoxError> {
    println!(
        "registering {} users at {api} (run id {run_id}, {} requests at a time)",
        members, concurrency
    );
    let reg = rest::register_all(client, api, members, concurrency, run_id).await;
    println!("registration: {}", reg.describe(members));
    let mut tokens = reg.tokens;
    let Some(owner) = tokens.first().cloned() else {
        return Err("no user could be registered".into());
    };
    let made = create_guilds(client, api, &owner, guilds_wanted, concurrency, run_id).await;
    println!("guilds (create, channels, invite): {}", made.describe());
    if made.ok.len() < guilds_wanted {
        return Err("could not set up every guild (see the errors above)".into());
    }
    let guilds = made.ok;
    if let Some(g) = guilds.first() {
        println!(
            "  first guild {}, text channel {}, invite {}",
            g.id, g.channel_id, g.invite
        );
    }
    let (joins, failed_users) = join_all(client, api, &tokens[1..], &guilds, concurrency).await;
    println!(
        "joins ({} users x {} guilds): {}",
        tokens.len() - 1,
        guilds.len(),
        joins.describe()
    );
    if !failed_users.is_empty() {
        println!(
            "warning: {} users missed at least one guild and stay offline",
            failed_users.len()
        );
        let mut i = 0usize;
        tokens.retain(|_| {
            // tokens[0] is the owner; joiner j is tokens[j + 1].
            let keep = i == 0 || !failed_users.contains(&(i - 1));
            i += 1;
            keep
        });
    }
    Ok((tokens, guilds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels(json: &str) -> Vec<ChannelBody> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn picks_general_text_channel() {
        let list = channels(
            r#"[{"id":"1","type":4,"name":"Text Channels"},
                {"id":"2","type":0,"name":"rules"},
                {"id":"3","type":0,"name":"general"},
                {"id":"4","type":2,"name":"General"}]"#,
        );
        assert_eq!(pick_text_channel(list).as_deref(), Some("3"));
        let list = channels(r#"[{"id":5,"type":2},{"id":6,"type":0,"name":"chat"}]"#);
        assert_eq!(pick_text_channel(list).as_deref(), Some("6"));
        assert_eq!(
            pick_text_channel(channels(r#"[{"id":"7","type":2}]"#)),
            None
        );
    }
}
