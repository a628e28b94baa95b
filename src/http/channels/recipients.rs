//! Group DM recipients. `PUT /channels/{channel_id}/recipients/{user_id}`: a recipient adds one
//! of their friends (at most ten people in all). `DELETE …`: the owner removes someone, or
//! anyone removes themselves (leaves); an owner who leaves hands the group to another recipient
//! (CHANNEL_UPDATE), and the last one out deletes it. The remaining recipients hear
//! CHANNEL_RECIPIENT_ADD / CHANNEL_RECIPIENT_REMOVE `{channel_id, user}`; the one added hears
//! CHANNEL_CREATE, the one removed CHANNEL_DELETE. Both answer 204.

use actix_web::HttpResponse;
use diesel_async::AsyncConnection;
use serde_json::{json, Value};

use crate::db::channels::{kind, Channel};
use crate::db::users::User;
use crate::db::Connection;
use crate::events::{Event, ToUser};
use crate::http::access::ChannelAccess;
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::{path, Id, InChannel};
use crate::http::users::private_channels::{
    check_invitable, invalid_recipients, tell_each, too_many_recipients, MAX_GROUP_RECIPIENTS,
};
use crate::state::AppState;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

/// `PUT` (`ADD`) and `DELETE` of a recipient.
pub async fn set<const ADD: bool>(
    caller: InChannel,
    user_id: Id<path::User>,
) -> Result<HttpResponse, ApiError> {
    // 50024 for a channel that is not a group DM.
    if caller.access.channel.kind != kind::GROUP_DM {
        return Err(ApiError::wrong_channel_type());
    }
    let (me, access) = (caller.session.user, caller.access);
    let mut conn = caller.conn.get().await?;
    let user_id = user_id.get();
    if ADD {
        add(&caller.state, &mut conn, &me, &access, user_id).await?;
    } else {
        if user_id != me.id && access.channel.owner_id != Some(me.id) {
            return Err(ApiError::MissingPermissions);
        }
        remove(&caller.state, &mut conn, &access, user_id).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Brings `user_id`, a friend of `me`, into the group.
async fn add(
    state: &AppState,
    conn: &mut Connection,
    me: &User,
    access: &ChannelAccess,
    user_id: i64,
) -> Result<(), ApiError> {
    if access.recipients.contains(&user_id) {
        return Ok(());
    }
    let added = User::find(conn, user_id)
        .await?
        .ok_or_else(invalid_recipients)?;
    check_invitable(conn, me.id, &[user_id]).await?;
    if access.recipients.len() >= MAX_GROUP_RECIPIENTS {
        return Err(too_many_recipients());
    }
    let channel = &access.channel;
    Channel::add_recipient(conn, channel.id, user_id).await?;

    let others = &access.recipients;
    tell_others(state, others, Event::ChannelRecipientAdd, channel, &added);
    let mut members = User::find_many(conn, &access.recipients).await?;
    members.push(added);
    let members: Vec<&User> = members.iter().collect();
    tell_each(state, Event::ChannelCreate, channel, &members, &[user_id]);
    Ok(())
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
        Event::ChannelDelete,
        &access.channel,
        &everyone,
        &[user_id],
    );
    let left: Vec<&User> = members.iter().filter(|u| u.id != user_id).collect();
    for recipient in &remaining {
        let told = std::slice::from_ref(recipient);
        tell_others(
            state,
            told,
            Event::ChannelRecipientRemove,
            &channel,
            removed,
        );
        if new_owner.is_some() {
            tell_each(state, Event::ChannelUpdate, &channel, &left, told);
        }
    }
    Ok(())
}

/// CHANNEL_RECIPIENT_ADD or _REMOVE `{channel_id, user}` to each of `to`.
fn tell_others(
    state: &AppState,
    to: &[i64],
    event: fn(ToUser) -> Event,
    channel: &Channel,
    user: &User,
) {
    let data: Value = json!({ "channel_id": id(channel.id), "user": PublicUser::from(user) });
    for user_id in to {
        state.publish(&event(ToUser {
            user_id: *user_id,
            data: data.clone(),
        }));
    }
}
