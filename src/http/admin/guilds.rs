//! `/_spacebar/admin/guilds`: list (paged by id), get, force a user in
//! (`PUT /guilds/{guild_id}/members/{user_id}`, `{"owner": true}` to hand them the guild too),
//! and `DELETE` (streamed: the messages in batches, then the guild).

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::{json, Value};

use super::progress::{self, Progress};
use super::{users, Operator, Page};
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::messages::Message;
use crate::db::roles::Role;
use crate::db::Connection;
use crate::events::{Change, Event};
use crate::http::channels::remove_files;
use crate::http::error::{ApiError, Unknown};
use crate::http::guilds::{guild_delete, members};
use crate::http::json::Json;
use crate::http::snowflake;
use crate::state::AppState;
use crate::wire::guild as wire;

/// Messages deleted per transaction (and per progress line).
const BATCH: i64 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds", web::get().to(list))
        .route("/guilds/{guild_id}", web::get().to(get))
        .route("/guilds/{guild_id}", web::delete().to(delete))
        .route(
            "/guilds/{guild_id}/members/{user_id}",
            web::put().to(force_join),
        );
}

async fn find(conn: &mut Connection, guild_id: &str) -> Result<Guild, ApiError> {
    let guild_id = snowflake("guild_id", guild_id)?;
    Guild::find(conn, guild_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Guild))
}

fn view(guild: &Guild, member_count: i64) -> Value {
    json!({
        "id": guild.id.to_string(),
        "name": guild.name,
        "owner_id": guild.owner_id.to_string(),
        "member_count": member_count,
        "created_at": guild.created_at,
    })
}

async fn list(state: Data<AppState>, page: Page) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let guilds = Guild::page(&mut conn, page.after, page.before, page.limit, page.order).await?;
    let ids: Vec<i64> = guilds.iter().map(|g| g.id).collect();
    let counts: std::collections::HashMap<i64, i64> =
        Member::counts(&mut conn, &ids).await?.into_iter().collect();
    let body: Vec<Value> = guilds
        .iter()
        .map(|g| view(g, counts.get(&g.id).copied().unwrap_or(0)))
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn get(operator: Operator, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    let guild = find(&mut conn, &path).await?;
    let counts = Member::counts(&mut conn, &[guild.id]).await?;
    let count = counts.first().map_or(0, |(_, n)| *n);
    Ok(HttpResponse::Ok().json(view(&guild, count)))
}

#[derive(Debug, Default, Deserialize)]
struct ForceJoin {
    #[serde(default)]
    owner: bool,
}

async fn force_join(
    operator: Operator,
    path: Path<(String, String)>,
    body: Option<Json<ForceJoin>>,
) -> Result<HttpResponse, ApiError> {
    let owner = body.is_some_and(|Json(body)| body.owner);
    let mut conn = operator.state.pool.get().await?;
    let mut guild = find(&mut conn, &path.0).await?;
    let user = users::find(&operator.state, &path.1).await?;
    if user.deleted {
        return Err(ApiError::Unknown(Unknown::User));
    }
    let member = Member::new(guild.id, user.id);
    let joined = conn
        .transaction(async |conn| member.insert_new(conn).await)
        .await?;
    if joined {
        members::joined(&operator.state, &mut conn, guild.id, &user).await?;
    }
    if owner && guild.owner_id != user.id {
        guild.owner_id = user.id;
        let roles = Role::of_guild(&mut conn, guild.id).await?;
        let mut change = Change::new(&operator.state);
        change.emit(Event::GuildUpdate {
            guild_id: guild.id,
            new_owner: Some(user.id),
            guild: wire::guild(&guild, &roles),
        });
        change
            .commit(&mut conn, async |conn| Ok(guild.save(conn).await?))
            .await?;
    }
    operator.log(
        if owner {
            "force join as owner"
        } else {
            "force join"
        },
        format!("user {} guild {}", user.id, guild.id),
    );
    let counts = Member::counts(&mut conn, &[guild.id]).await?;
    let count = counts.first().map_or(0, |(_, n)| *n);
    Ok(HttpResponse::Ok().json(json!({ "joined": joined, "guild": view(&guild, count) })))
}

async fn delete(operator: Operator, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    let guild = find(&mut conn, &path).await?;
    operator.log("delete guild", guild.id);
    Ok(progress::stream(move |progress| async move {
        delete_guild(&operator.state, &progress, guild.id).await
    }))
}

/// Deletes a guild: its messages in committed batches (a big guild never holds one long
/// transaction), then the guild and all else in it; GUILD_DELETE to its members.
pub async fn delete_guild(
    state: &AppState,
    progress: &Progress,
    guild_id: i64,
) -> Result<(), ApiError> {
    let mut conn = state.pool.get().await?;
    let mut deleted = 0;
    loop {
        let ids = Message::batch_of_guild(&mut conn, guild_id, BATCH).await?;
        if ids.is_empty() {
            break;
        }
        let files = Message::delete_ids(&mut conn, &ids).await?;
        deleted += files.len();
        remove_files(state, files).await;
        progress.step(json!({ "step": "guild messages", "guild_id": guild_id.to_string(), "deleted": deleted }));
    }
    if let Some(guild) = Guild::find(&mut conn, guild_id).await? {
        guild_delete::delete_with_files(state, &mut conn, &guild).await?;
    }
    progress.step(json!({ "step": "guild", "guild_id": guild_id.to_string(), "deleted": true }));
    Ok(())
}
