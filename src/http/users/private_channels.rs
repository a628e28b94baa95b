//! `GET /users/@me/channels`: the caller's DMs and group DMs. `POST /users/@me/channels`:
//! `{recipient_id}` (or `{recipients: [one]}`, as Discord's own client sends it) answers the DM
//! with that user, made on first use (CREATE_DMS right); `{recipients: [ids]}` with none or two
//! or more others makes a group DM owned by the caller (CREATE_DM_GROUPS right), at most ten
//! people in all, the others being the caller's friends as Discord requires. Nobody may open a
//! DM with someone who blocked them or whom they blocked (50007). A new channel reaches every
//! recipient's sessions as CHANNEL_CREATE (Discord tells a DM's other side only at its first
//! message; telling them at once is what Spacebar does and clients take either).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::Value;

use crate::db::channels::{kind, Channel};
use crate::db::members::Member;
use crate::db::relationships::Relationship;
use crate::db::users::User;
use crate::db::Connection;
use crate::events::{ChannelChange, ChannelScope, Event};
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::rights;
use crate::state::AppState;
use crate::wire::guild::private_channel;

/// A group DM holds at most this many people, its owner included.
pub const MAX_GROUP_RECIPIENTS: usize = 10;

#[derive(Debug, Deserialize)]
pub struct CreatePrivateChannel {
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    recipient_id: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    recipients: Option<Vec<i64>>,
}

pub async fn list(
    Authenticated { state, session }: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let me = session.user.id;
    let mut conn = state.pool.get().await?;
    let channels = Channel::private_of(&mut conn, me).await?;
    let ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
    let recipients = Channel::recipients(&mut conn, &ids).await?;
    let mut user_ids: Vec<i64> = recipients.iter().map(|(_, u)| *u).collect();
    user_ids.sort_unstable();
    user_ids.dedup();
    let users = User::find_many(&mut conn, &user_ids).await?;
    let bodies: Vec<Value> = channels
        .iter()
        .map(|channel| {
            let members: Vec<&User> = recipients
                .iter()
                .filter(|(c, _)| *c == channel.id)
                .filter_map(|(_, u)| users.iter().find(|user| user.id == *u))
                .collect();
            seen_by(channel, &members, me)
        })
        .collect();
    Ok(HttpResponse::Ok().json(bodies))
}

pub async fn create(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<CreatePrivateChannel>,
) -> Result<HttpResponse, ApiError> {
    let me = &session.user;
    let mut conn = state.pool.get().await?;
    let channel = match (body.recipient_id, body.recipients) {
        (Some(other), _) => dm(&state, &mut conn, me, other).await?,
        (None, Some(others)) if others.len() == 1 => dm(&state, &mut conn, me, others[0]).await?,
        (None, Some(others)) => group(&state, &mut conn, me, others).await?,
        (None, None) => {
            return Err(FormErrors::field(
                "recipient_id",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            )
            .into())
        }
    };
    Ok(HttpResponse::Ok().json(channel))
}

/// The DM between `me` and `other_id`, made (and announced to both) when there is none.
async fn dm(
    state: &AppState,
    conn: &mut Connection,
    me: &User,
    other_id: i64,
) -> Result<Value, ApiError> {
    ApiError::require(me.rights, rights::CREATE_DMS)?;
    if other_id == me.id {
        return Err(cannot_message());
    }
    let other = User::find(conn, other_id)
        .await?
        .ok_or_else(invalid_recipients)?;
    if Relationship::blocked_between(conn, me.id, other.id).await? {
        return Err(cannot_message());
    }
    let pair = [me.clone(), other];
    if let Some(existing) = existing_dm(conn, me.id, other_id).await? {
        return Ok(seen_by(&existing, &pair.iter().collect::<Vec<_>>(), me.id));
    }
    let channel = Channel::new(state.snowflakes.next(), kind::DM, None, None);
    insert_with_recipients(conn, &channel, &[me.id, other_id]).await?;
    let members: Vec<&User> = pair.iter().collect();
    tell_each(
        state,
        Event::ChannelCreate,
        &channel,
        &members,
        &[me.id, other_id],
    );
    Ok(seen_by(&channel, &members, me.id))
}

/// A new group DM of `me` (its owner) and `others`.
async fn group(
    state: &AppState,
    conn: &mut Connection,
    me: &User,
    mut others: Vec<i64>,
) -> Result<Value, ApiError> {
    ApiError::require(me.rights, rights::CREATE_DM_GROUPS)?;
    others.sort_unstable();
    others.dedup();
    others.retain(|id| *id != me.id);
    if others.len() + 1 > MAX_GROUP_RECIPIENTS {
        return Err(too_many_recipients());
    }
    let mut users = User::find_many(conn, &others).await?;
    if users.len() != others.len() {
        return Err(invalid_recipients());
    }
    check_invitable(conn, me.id, &others).await?;
    let mut channel = Channel::new(state.snowflakes.next(), kind::GROUP_DM, None, None);
    channel.owner_id = Some(me.id);
    let mut ids = others;
    ids.push(me.id);
    insert_with_recipients(conn, &channel, &ids).await?;
    users.push(me.clone());
    let members: Vec<&User> = users.iter().collect();
    tell_each(state, Event::ChannelCreate, &channel, &members, &ids);
    Ok(seen_by(&channel, &members, me.id))
}

/// The DM (type 1) whose recipients are exactly `me` and `other`.
async fn existing_dm(
    conn: &mut Connection,
    me: i64,
    other: i64,
) -> Result<Option<Channel>, ApiError> {
    let dms: Vec<Channel> = Channel::private_of(conn, me)
        .await?
        .into_iter()
        .filter(|c| c.kind == kind::DM)
        .collect();
    let ids: Vec<i64> = dms.iter().map(|c| c.id).collect();
    let recipients = Channel::recipients(conn, &ids).await?;
    Ok(dms.into_iter().find(|dm| {
        recipients
            .iter()
            .any(|(c, user)| *c == dm.id && *user == other)
    }))
}

async fn insert_with_recipients(
    conn: &mut Connection,
    channel: &Channel,
    recipients: &[i64],
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        channel.insert(conn).await?;
        for user_id in recipients {
            Channel::add_recipient(conn, channel.id, *user_id).await?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .await?;
    Ok(())
}

/// Whether `me` may bring `others` into a group DM: no blocks either way (50007), and only
/// friends (50033), as Discord requires.
pub async fn check_invitable(
    conn: &mut Connection,
    me: i64,
    others: &[i64],
) -> Result<(), ApiError> {
    for other in others {
        if Relationship::blocked_between(conn, me, *other).await? {
            return Err(cannot_message());
        }
    }
    let friends = Relationship::friends_among(conn, me, others).await?;
    if others.iter().all(|other| friends.contains(other)) {
        Ok(())
    } else {
        Err(invalid_recipients())
    }
}

/// A private channel as `viewer` sees it: the recipients are the others.
pub fn seen_by(channel: &Channel, members: &[&User], viewer: i64) -> Value {
    let others: Vec<&User> = members.iter().copied().filter(|u| u.id != viewer).collect();
    private_channel(channel, &others)
}

/// Sends `event` with the channel to each of `to`, as each of them sees it.
pub fn tell_each(
    state: &AppState,
    event: fn(ChannelChange) -> Event,
    channel: &Channel,
    members: &[&User],
    to: &[i64],
) {
    for viewer in to {
        state.publish(&event(ChannelChange {
            scope: ChannelScope {
                guild_id: None,
                channel_id: channel.id,
                recipients: vec![*viewer],
            },
            overwrites: None,
            channel: seen_by(channel, members, *viewer),
        }));
    }
}

pub fn too_many_recipients() -> ApiError {
    FormErrors::field(
        "recipients",
        "BASE_TYPE_MAX_LENGTH",
        format!("A group DM holds at most {MAX_GROUP_RECIPIENTS} people, its owner included."),
    )
    .into()
}

/// 50007 unless `me` may send into a DM with these recipients: Discord lets a message through
/// only between users who share a guild or are friends, and never where either blocked the
/// other. Opening the DM is not refused for want of a guild or friendship; sending is.
pub async fn require_reachable(
    conn: &mut Connection,
    me: i64,
    recipients: &[i64],
) -> Result<(), ApiError> {
    for &other in recipients.iter().filter(|&&id| id != me) {
        if Relationship::blocked_between(conn, me, other).await? {
            return Err(cannot_message());
        }
        let friends = !Relationship::friends_among(conn, me, &[other])
            .await?
            .is_empty();
        if !friends && !Member::share_a_guild(conn, me, other).await? {
            return Err(cannot_message());
        }
    }
    Ok(())
}

pub fn cannot_message() -> ApiError {
    ApiError::Plain {
        status: StatusCode::FORBIDDEN,
        code: 50007,
        message: "Cannot send messages to this user",
    }
}

pub fn invalid_recipients() -> ApiError {
    ApiError::Plain {
        status: StatusCode::BAD_REQUEST,
        code: 50033,
        message: "Invalid Recipient(s)",
    }
}
