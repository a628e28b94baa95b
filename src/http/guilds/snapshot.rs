//! The GUILD_CREATE a member receives when they join (or create) a guild, in both shapes:
//! classic, and CLIENT_STATE_V2 for the sessions that identified with it (each encoded once).

use serde_json::Value;
use spacebar_actors::intents::MAX_LARGE_THRESHOLD;
use spacebar_actors::registry::GetPresences;

use crate::db::channels::{Channel, OverwriteRow};
use crate::db::emojis::Emoji;
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::stickers::Sticker;
use crate::db::Connection;
use crate::events::{Event, LargeGuild};
use crate::http::access::GuildAccess;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::wire::expression;
use crate::wire::guild::GuildSnapshot;

/// The member in `access` joined: the guild as they see it, and who is in voice (from the
/// guild's actor). A session to which it is large (past its IDENTIFY `large_threshold`) finds
/// only who is online listed; any other, every member.
pub async fn guild_create(
    state: &AppState,
    conn: &mut Connection,
    access: &GuildAccess,
) -> Result<Event, ApiError> {
    let guild_id = access.guild.id;
    let channels = Channel::of_guilds(conn, &[guild_id]).await?;
    let channel_ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
    let overwrites = OverwriteRow::of_channels(conn, &channel_ids).await?;
    let count = Member::counts(conn, &[guild_id])
        .await?
        .first()
        .map_or(0, |(_, n)| *n);
    let roles: &[Role] = &access.roles;
    let mut snapshot = GuildSnapshot::new(
        &access.guild,
        roles,
        &channels,
        &overwrites,
        Some(&access.member),
        count,
    );
    snapshot.emojis = Emoji::of_guild(conn, guild_id)
        .await?
        .iter()
        .map(|e| expression::emoji(e, None))
        .collect();
    snapshot.stickers = Sticker::of_guild(conn, guild_id)
        .await?
        .iter()
        .map(|s| expression::sticker(s, None))
        .collect();
    snapshot.voice_states = state.voice_states(guild_id).await?;
    // Sessions see it as large past their IDENTIFY `large_threshold`, which is somewhere from
    // `gateway.min_large_threshold` to 250: the guild once as each may find it.
    let least = state
        .config()
        .gateway
        .min_large_threshold
        .min(MAX_LARGE_THRESHOLD);
    let members = usize::try_from(count).unwrap_or(0);
    let large = if members > least {
        (snapshot.members, snapshot.presences) = online(state, conn, &access.member).await?;
        let threshold = i64::try_from(least).unwrap_or(0);
        Some(LargeGuild {
            member_count: members,
            guild: snapshot.classic(threshold),
            client_state_v2: snapshot.client_state_v2(threshold),
        })
    } else {
        None
    };
    let user_id = access.member.user_id;
    let most = i64::try_from(MAX_LARGE_THRESHOLD).unwrap_or(i64::MAX);
    let event = match large {
        // Large to every session.
        Some(large) if count > most => Event::GuildJoined {
            guild_id,
            user_id,
            guild: large.guild,
            client_state_v2: large.client_state_v2,
            large: None,
        },
        large => {
            snapshot.members = Member::of_guilds_with_users(conn, &[guild_id], None)
                .await?
                .iter()
                .map(|(m, u)| crate::wire::guild::member(m, Some(u)))
                .collect();
            snapshot.presences = Vec::new();
            Event::GuildJoined {
                guild_id,
                user_id,
                guild: snapshot.classic(most),
                client_state_v2: snapshot.client_state_v2(most),
                large,
            }
        }
    };
    Ok(event)
}

/// The members a large guild's GUILD_CREATE lists, and their presences: who of the guild is
/// online now, and the joiner whatever their status.
async fn online(
    state: &AppState,
    conn: &mut Connection,
    joiner: &Member,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let guild_id = joiner.guild_id;
    let of = Member::users_of_guilds(conn, &[guild_id]).await?;
    let online = state
        .tree
        .sessions
        .send(GetPresences { user_id: 0, of })
        .await
        .map_err(crate::error::Error::from)?;
    let listed = crate::gateway::listed_in_large(&online, joiner.user_id);
    let members = Member::of_guilds_with_users(conn, &[guild_id], Some(&listed))
        .await?
        .iter()
        .map(|(m, u)| crate::wire::guild::member(m, Some(u)))
        .collect();
    let presences = online
        .others
        .iter()
        .map(|(user_id, presence)| presence.to_json(*user_id, Some(guild_id)))
        .collect();
    Ok((members, presences))
}
