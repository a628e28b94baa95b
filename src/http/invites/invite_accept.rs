//! `POST /invites/{code}`: accept an invite, joining its guild (the JOIN_GUILDS right). The
//! membership and the use are written in one transaction, and the use is counted only while
//! the invite still has one (10006 otherwise). Someone already in the guild gets the invite
//! back with `new_member: false` and uses nothing; a banned user gets 40007, a bot 20001.

use actix_web::http::StatusCode;
use actix_web::web::Path;
use actix_web::HttpResponse;
use diesel_async::AsyncConnection;

use super::{describe, find_usable};
use crate::db::bans::Ban;
use crate::db::guilds::Guild;
use crate::db::invites::Invite;
use crate::db::members::Member;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::http::guilds::members::joined;
use crate::rights;

pub async fn accept(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = &session.user;
    // Bots join through OAuth2 authorization, never through invites.
    if user.bot {
        return Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 20001,
            message: "Bots cannot use this endpoint",
        });
    }
    ApiError::require(user.rights, rights::JOIN_GUILDS)?;
    let mut conn = state.pool.get().await?;
    let invite = find_usable(&mut conn, &path).await?;
    let guild_id = invite.guild_id;
    if Member::find(&mut conn, guild_id, user.id).await?.is_some() {
        return answer(&mut conn, &invite, false).await;
    }
    if Ban::exists(&mut conn, guild_id, user.id).await? {
        return Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 40007,
            message: "The user is banned from this guild.",
        });
    }
    let guilds = Guild::of_user(&mut conn, user.id).await?.len();
    if u64::try_from(guilds).unwrap_or(u64::MAX) >= state.config().limits.user_max_guilds {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30001,
            message: "Maximum number of guilds reached",
        });
    }
    let member = Member::new(guild_id, user.id);
    let used = conn
        .transaction(async |conn| {
            // Joined meanwhile through another request: nothing used, nothing to announce.
            if !member.insert_new(conn).await? {
                return Ok(None);
            }
            match Invite::use_once(conn, &invite.code).await? {
                Some(used) => Ok(Some(used)),
                // Rolls the membership back with it.
                None => Err(ApiError::Unknown(Unknown::Invite)),
            }
        })
        .await?;
    let Some(used) = used else {
        return answer(&mut conn, &invite, false).await;
    };
    tracing::info!(guild_id, user_id = user.id, code = %used.code, "joined through an invite");
    joined(&state, &mut conn, guild_id, user).await?;
    answer(&mut conn, &used, true).await
}

async fn answer(
    conn: &mut crate::db::Connection,
    invite: &Invite,
    new_member: bool,
) -> Result<HttpResponse, ApiError> {
    let mut body = describe(conn, invite).await?;
    body["new_member"] = new_member.into();
    Ok(HttpResponse::Ok().json(body))
}
