//! The GUILD_CREATE a member receives when they join (or create) a guild, in both shapes:
//! classic, and CLIENT_STATE_V2 for the sessions that identified with it (each encoded once).

use crate::db::channels::{Channel, OverwriteRow};
use crate::db::emojis::Emoji;
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::stickers::Sticker;
use crate::db::Connection;
use crate::events::Event;
use crate::http::access::GuildAccess;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::wire::expression;
use crate::wire::guild::GuildSnapshot;

/// The member in `access` joined: the guild as they see it, with every member when it is
/// small, and who is in voice (from the guild's actor).
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
    if count <= LARGE_THRESHOLD {
        snapshot.members = Member::of_guilds_with_users(conn, &[guild_id], None)
            .await?
            .iter()
            .map(|(m, u)| crate::wire::guild::member(m, Some(u)))
            .collect();
    }
    Ok(Event::GuildJoined {
        guild_id,
        user_id: access.member.user_id,
        guild: snapshot.classic(LARGE_THRESHOLD),
        client_state_v2: snapshot.client_state_v2(LARGE_THRESHOLD),
    })
}

/// Guilds with more members than this send only the joiner's own member.
const LARGE_THRESHOLD: i64 = 250;
