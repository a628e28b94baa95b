//! `GET /users/@me/guilds`: the guilds the caller is in, with their permissions there;
//! `DELETE /users/@me/guilds/{guild_id}`: leave one (the owner must delete or transfer it).

use actix_web::HttpResponse;
use serde_json::json;

use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::extractors::InGuild;
use crate::permissions::Member as Rank;
use crate::wire::guild::id;

pub async fn list(
    Authenticated { state, session }: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user_id = session.user.id;
    let mut conn = state.pool.get().await?;
    let guilds = Guild::of_user(&mut conn, user_id).await?;
    let ids: Vec<i64> = guilds.iter().map(|g| g.id).collect();
    let roles = Role::of_guilds(&mut conn, &ids).await?;
    let memberships = Member::of_user(&mut conn, user_id).await?;
    let body: Vec<_> = guilds
        .iter()
        .map(|guild| {
            let membership = memberships.iter().find(|m| m.guild_id == guild.id);
            let mine = membership.map(|m| m.roles.as_slice()).unwrap_or_default();
            let ranks: Vec<_> = roles
                .iter()
                .filter(|r| mine.contains(&r.id))
                .map(Role::rank)
                .collect();
            let everyone = roles
                .iter()
                .find(|r| r.id == guild.id)
                .map_or(0, |r| r.permissions as u64);
            let rank = Rank {
                user_id,
                guild_id: guild.id,
                owner_id: guild.owner_id,
                everyone,
                roles: &ranks,
                timed_out: membership.is_some_and(Member::timed_out),
            };
            json!({
                "id": id(guild.id),
                "name": guild.name,
                "icon": guild.icon,
                "banner": guild.banner,
                "owner": guild.owner_id == user_id,
                "permissions": rank.base().to_string(),
                "features": guild.features,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

pub async fn leave(
    InGuild {
        session,
        access,
        conn,
        state,
        ..
    }: InGuild,
) -> Result<HttpResponse, ApiError> {
    let guild_id = access.guild.id;
    if access.is_owner() {
        return Err(ApiError::Plain {
            status: actix_web::http::StatusCode::BAD_REQUEST,
            code: 50055,
            message: "Invalid guild: the owner cannot leave, transfer or delete it instead",
        });
    }
    let mut conn = conn.get().await?;
    Member::delete(&mut conn, guild_id, session.user.id).await?;
    crate::http::guilds::members::removed(guild_id, &session.user)
        .iter()
        .for_each(|event| state.publish(event));
    Ok(HttpResponse::NoContent().finish())
}
