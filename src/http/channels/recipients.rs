//! Group DM recipients. `PUT /channels/{channel_id}/recipients/{user_id}`: a recipient adds one
//! of their friends (at most ten people in all). `DELETE …`: the owner removes someone, or
//! anyone removes themselves (leaves); an owner who leaves hands the group to another recipient
//! (CHANNEL_UPDATE), and the last one out deletes it. The remaining recipients hear
//! CHANNEL_RECIPIENT_ADD / CHANNEL_RECIPIENT_REMOVE `{channel_id, user}`; the one added hears
//! CHANNEL_CREATE, the one removed CHANNEL_DELETE. Both answer 204.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use diesel_async::AsyncConnection;
use serde_json::json;
use spacebar_actors::EventName;

use crate::db::channels::{kind, Channel};
use crate::db::users::User;
use crate::db::Connection;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::http::snowflake;
use crate::http::users::private_channels::{
    check_invitable, invalid_recipients, seen_by, tell_each, too_many_recipients,
    MAX_GROUP_RECIPIENTS,
};
use crate::server::AppState;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

pub async fn put(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let me = &session.user;
    let mut conn = state.pool.get().await?;
    let (access, user_id) = load(&mut conn, &path, me.id).await?;
    if access.recipients.contains(&user_id) {
        return Ok(HttpResponse::NoContent().finish());
    }
    let added = User::find(&mut conn, user_id)
        .await?
        .ok_or_else(invalid_recipients)?;
    check_invitable(&mut conn, me.id, &[user_id]).await?;
    if access.recipients.len() >= MAX_GROUP_RECIPIENTS {
        return Err(too_many_recipients());
    }
    let channel = &access.channel;
    Channel::add_recipient(&mut conn, channel.id, user_id).await?;

    let event = json!({ "channel_id": id(channel.id), "user": PublicUser::from(&added) });
    for recipient in &access.recipients {
        state.user_event(*recipient, EventName::ChannelRecipientAdd, &event)?;
    }
    let mut members = User::find_many(&mut conn, &access.recipients).await?;
    members.push(added);
    let members: Vec<&User> = members.iter().collect();
    tell_each(
        &state,
        EventName::ChannelCreate,
        channel,
        &members,
        &[user_id],
    )?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let me = &session.user;
    let mut conn = state.pool.get().await?;
    let (access, user_id) = load(&mut conn, &path, me.id).await?;
    if user_id != me.id && access.channel.owner_id != Some(me.id) {
        return Err(ApiError::MissingPermissions);
    }
    remove(&state, &mut conn, &access, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Takes `user_id` out of a group DM (the caller's right to do so already checked): the group
/// passes to another owner if need be, and is deleted when the last one leaves.
pub async fn remove(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    user_id: i64,
) -> Result<(), ApiError> {
    let mut channel = access.channel.clone();
    if !access.recipients.contains(&user_id) {
        return Err(ApiError::Unknown(Unknown::User));
    }
    let members = User::find_many(conn, &access.recipients).await?;
    let removed = members
        .iter()
        .find(|u| u.id == user_id)
        .ok_or(ApiError::Unknown(Unknown::User))?;
    let remaining: Vec<i64> = access
        .recipients
        .iter()
        .copied()
        .filter(|r| *r != user_id)
        .collect();
    let new_owner = (channel.owner_id == Some(user_id))
        .then(|| remaining.iter().min().copied())
        .flatten();
    if let Some(owner) = new_owner {
        channel.owner_id = Some(owner);
    }
    conn.transaction(async |conn| {
        Channel::remove_recipient(conn, channel.id, user_id).await?;
        if remaining.is_empty() {
            Channel::delete(conn, channel.id).await?;
        } else if new_owner.is_some() {
            channel.save(conn).await?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .await?;

    let everyone: Vec<&User> = members.iter().collect();
    tell_each(
        state,
        EventName::ChannelDelete,
        &access.channel,
        &everyone,
        &[user_id],
    )?;
    let event = json!({ "channel_id": id(channel.id), "user": PublicUser::from(removed) });
    let left: Vec<&User> = members.iter().filter(|u| u.id != user_id).collect();
    for recipient in &remaining {
        state.user_event(*recipient, EventName::ChannelRecipientRemove, &event)?;
        if new_owner.is_some() {
            state.user_event(
                *recipient,
                EventName::ChannelUpdate,
                &seen_by(&channel, &left, *recipient),
            )?;
        }
    }
    Ok(())
}

/// The group DM the caller is in and the user the path names. 10003/50001 as for any channel;
/// 50024 for a channel that is not a group DM.
async fn load(
    conn: &mut Connection,
    path: &(String, String),
    me: i64,
) -> Result<(ChannelAccess, i64), ApiError> {
    let channel_id = snowflake("channel_id", &path.0)?;
    let user_id = snowflake("user_id", &path.1)?;
    let access = ChannelAccess::load(conn, channel_id, me).await?;
    if access.channel.kind != kind::GROUP_DM {
        return Err(ApiError::wrong_channel_type());
    }
    Ok((access, user_id))
}
