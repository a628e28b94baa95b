//! `/_spacebar/admin/users`: list (paged by id), get, `PATCH {disabled}` (a disabled account
//! cannot log in and its gateway sessions close), and `DELETE` (streamed, resumable): the
//! account is disabled at once, then its guilds, memberships and messages go, then the account.

use std::collections::HashMap;

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use super::progress::{self, Progress};
use super::{guilds, Operator, Page};
use crate::db::channels::Channel;
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::messages::Message;
use crate::db::users::{User, UserChanges};
use crate::events::{ChannelScope, Event, Scoped};
use crate::http::channels::remove_files;
use crate::http::error::{ApiError, Unknown};
use crate::http::guilds::members;
use crate::http::json::Json;
use crate::http::snowflake;
use crate::state::AppState;
use crate::storage::{ImageArea, Key};

/// Messages deleted per transaction (and per progress line).
const BATCH: i64 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users/{user_id}", web::get().to(get))
        .route("/users/{user_id}", web::patch().to(modify))
        .route("/users/{user_id}", web::delete().to(delete));
}

/// An account as operators see it.
pub fn view(user: &User) -> Value {
    json!({
        "id": user.id.to_string(),
        "username": user.username,
        "discriminator": user.discriminator,
        "email": user.email,
        "bot": user.bot,
        "disabled": user.disabled,
        "deleted": user.deleted,
        "rights": user.rights.to_string(),
        "created_at": user.created_at,
    })
}

/// The account `user_id` (deleted ones too), or 10013.
pub async fn find(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    let user_id = snowflake("user_id", user_id)?;
    let mut conn = state.pool.get().await?;
    User::find_any(&mut conn, user_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::User))
}

async fn list(state: Data<AppState>, page: Page) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let users = User::page(&mut conn, page.after, page.before, page.limit, page.order).await?;
    Ok(HttpResponse::Ok().json(users.iter().map(view).collect::<Vec<_>>()))
}

async fn get(operator: Operator, path: Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&find(&operator.state, &path).await?)))
}

#[derive(Debug, Deserialize)]
struct Modify {
    disabled: bool,
}

async fn modify(
    operator: Operator,
    path: Path<String>,
    Json(body): Json<Modify>,
) -> Result<HttpResponse, ApiError> {
    let user = find(&operator.state, &path).await?;
    let user = set_disabled(&operator.state, user.id, body.disabled).await?;
    operator.log(
        if body.disabled {
            "disable user"
        } else {
            "enable user"
        },
        user.id,
    );
    Ok(HttpResponse::Ok().json(view(&user)))
}

/// Disables (or enables) an account: a disabled one cannot log in, its tokens stop working and
/// its gateway sessions close with 4004. Operators and the account itself use this.
pub async fn set_disabled(
    state: &AppState,
    user_id: i64,
    disabled: bool,
) -> Result<User, ApiError> {
    let mut conn = state.pool.get().await?;
    let changes = UserChanges {
        disabled: Some(disabled),
        ..UserChanges::default()
    };
    let user = User::update(&mut conn, user_id, &changes).await?;
    if disabled {
        state.logins_ended(user.id, None, None);
    }
    Ok(user)
}

async fn delete(operator: Operator, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let user = find(&operator.state, &path).await?;
    operator.log("delete user", user.id);
    Ok(progress::stream(move |progress| async move {
        delete_user(&operator.state, &progress, user).await
    }))
}

/// Deletes an account step by step, each step committed: asked again after an interruption, it
/// goes on from where it stopped. Operators use this: it purges the account's messages too
/// (an account deleting itself keeps them, `users/account.rs`).
pub async fn delete_user(
    state: &AppState,
    progress: &Progress,
    user: User,
) -> Result<(), ApiError> {
    let mut conn = state.pool.get().await?;
    let changes = UserChanges {
        disabled: Some(true),
        deleted: Some(true),
        ..UserChanges::default()
    };
    let user = User::update(&mut conn, user.id, &changes).await?;
    state.logins_ended(user.id, None, None);
    progress.step(json!({ "step": "disabled", "user_id": user.id.to_string() }));

    for guild_id in Guild::owned_by(&mut conn, user.id).await? {
        guilds::delete_guild(state, progress, guild_id).await?;
    }
    let memberships = Member::of_user(&mut conn, user.id).await?;
    for membership in &memberships {
        Member::delete(&mut conn, membership.guild_id, user.id).await?;
        members::removed(membership.guild_id, &user)
            .iter()
            .for_each(|event| state.publish(event));
    }
    progress.step(json!({ "step": "memberships", "left": memberships.len() }));

    let mut deleted = 0;
    loop {
        let batch = Message::batch_by_author(&mut conn, user.id, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _, _)| *id).collect();
        let files = Message::delete_ids(&mut conn, &ids).await?;
        deleted += files.len();
        remove_files(state, files).await;
        announce_deleted(state, &mut conn, &batch).await?;
        progress.step(json!({ "step": "messages", "deleted": deleted }));
    }

    // What is left refers to the account and goes with it (sessions, reactions, DMs' seats…),
    // and its pictures.
    User::delete(&mut conn, user.id).await?;
    for (area, hash) in [
        (ImageArea::Avatar, &user.avatar),
        (ImageArea::Banner, &user.banner),
    ] {
        if let Some(key) = hash.as_deref().and_then(|h| Key::image(area, user.id, h)) {
            state.cdn.remove(&key).await;
        }
    }
    progress.step(json!({ "step": "account", "deleted": true }));
    Ok(())
}

/// MESSAGE_DELETE_BULK for deleted messages, per channel, to whoever could see them.
async fn announce_deleted(
    state: &AppState,
    conn: &mut crate::db::Connection,
    batch: &[(i64, i64, Option<i64>)],
) -> Result<(), ApiError> {
    let mut by_channel: HashMap<(i64, Option<i64>), Vec<String>> = HashMap::new();
    for (id, channel_id, guild_id) in batch {
        by_channel
            .entry((*channel_id, *guild_id))
            .or_default()
            .push(id.to_string());
    }
    let private: Vec<i64> = by_channel
        .keys()
        .filter(|(_, guild)| guild.is_none())
        .map(|(channel, _)| *channel)
        .collect();
    let recipients = Channel::recipients(conn, &private).await?;
    for ((channel_id, guild_id), ids) in by_channel {
        let mut data = json!({ "ids": ids, "channel_id": channel_id.to_string() });
        if let Some(guild_id) = guild_id {
            data["guild_id"] = guild_id.to_string().into();
        }
        let scope = ChannelScope {
            guild_id,
            channel_id,
            recipients: recipients
                .iter()
                .filter(|(c, _)| *c == channel_id)
                .map(|(_, recipient)| *recipient)
                .collect(),
        };
        state.publish(&Event::MessageDeleteBulk(Scoped { scope, data }));
    }
    Ok(())
}
