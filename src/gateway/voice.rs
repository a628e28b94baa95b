//! Op 4 (VOICE_STATE_UPDATE) looked up in the database: the guild channel a member asked to
//! join, with their server mute and deafen and their member object (the guild actor checks
//! permissions and the user limit against the state it holds); or the DM or group DM whose
//! call a recipient joins. Two queries each.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use spacebar_actors::session::backend::BackendError;
use spacebar_actors::session::VoiceTarget;

use crate::db::channels::{kind, Channel};
use crate::db::members::Member;
use crate::db::Pool;
use crate::wire::guild;

/// The voice channel `channel_id` of `guild_id` for `user_id`; `None` when it is not a voice
/// channel of that guild or they are not a member.
pub fn voice_target(
    pool: Pool,
    user_id: i64,
    guild_id: i64,
    channel_id: i64,
) -> BoxFuture<'static, Result<Option<VoiceTarget>, BackendError>> {
    Box::pin(async move {
        let mut conn = pool.get().await.map_err(BackendError::new)?;
        let channel = Channel::find(&mut conn, channel_id)
            .await
            .map_err(BackendError::new)?
            .and_then(|c| c.voice_in(guild_id));
        let Some(channel) = channel else {
            return Ok(None);
        };
        let found = Member::find_with_user(&mut conn, guild_id, user_id)
            .await
            .map_err(BackendError::new)?;
        Ok(found.map(|(member, user)| VoiceTarget {
            channel,
            mute: member.mute,
            deaf: member.deaf,
            member: Arc::new(guild::member(&member, Some(&user))),
        }))
    })
}

/// The recipients of `channel_id` if it is a DM or group DM `user_id` is in; one query after
/// the channel's.
pub fn call_recipients(
    pool: Pool,
    user_id: i64,
    channel_id: i64,
) -> BoxFuture<'static, Result<Option<Vec<i64>>, BackendError>> {
    Box::pin(async move {
        let mut conn = pool.get().await.map_err(BackendError::new)?;
        let private = Channel::find(&mut conn, channel_id)
            .await
            .map_err(BackendError::new)?
            .is_some_and(|c| !kind::is_guild(c.kind));
        if !private {
            return Ok(None);
        }
        let recipients: Vec<i64> = Channel::recipients(&mut conn, &[channel_id])
            .await
            .map_err(BackendError::new)?
            .into_iter()
            .map(|(_, user)| user)
            .collect();
        Ok(recipients.contains(&user_id).then_some(recipients))
    })
}
