//! The GUILD_CREATE a member receives when they join (or create) a guild, in both shapes:
//! classic, and CLIENT_STATE_V2 for the sessions that identified with it (each encoded once).

use spacebar_actors::Dispatch;
use spacebar_actors::EventName;

use crate::db::channels::{Channel, OverwriteRow};
use crate::db::emojis::Emoji;
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::stickers::Sticker;
use crate::db::Connection;
use crate::http::access::GuildAccess;
use crate::http::error::ApiError;
use crate::server::AppState;
use crate::wire::expression;
use crate::wire::guild::GuildSnapshot;

/// The guild as the member in `access` sees it, with every member when it is small, and who
/// is in voice (from the guild's actor).
pub async fn guild_create(
    state: &AppState,
    conn: &mut Connection,
    access: &GuildAccess,
) -> Result<Dispatch, ApiError> {
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
        snapshot.members = Member::of_guilds_with_users(conn, &[guild_id])
            .await?
            .iter()
            .map(|(m, u)| crate::wire::guild::member(m, Some(u)))
            .collect();
    }
    let shaped = Dispatch::json(
        EventName::GuildCreate,
        &snapshot.client_state_v2(LARGE_THRESHOLD),
    )?;
    Ok(
        Dispatch::json(EventName::GuildCreate, &snapshot.classic(LARGE_THRESHOLD))?
            .in_guild(guild_id)
            .with_client_state_v2(shaped.in_guild(guild_id)),
    )
}

/// Guilds with more members than this send only the joiner's own member.
const LARGE_THRESHOLD: i64 = 250;
