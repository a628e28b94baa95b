//! `DELETE /applications/{application_id}` and `POST /applications/{application_id}/delete`
//! (as Discord's client sends it): its owner only. The bot leaves every guild (members hear
//! GUILD_MEMBER_REMOVE), its gateway sessions close and its token dies; its account stays, as
//! a deleted user, so the messages it wrote keep their author. Its commands and interactions go
//! with the application.

use actix_web::web::Path;
use actix_web::HttpResponse;
use diesel_async::AsyncConnection;

use super::{human_only, owned};
use crate::db::applications::Application;
use crate::db::auth_sessions;
use crate::db::members::Member;
use crate::db::users::{User, UserChanges};
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::guilds::members;
use crate::http::snowflake;

pub async fn delete(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    human_only(&session.user)?;
    let application_id = snowflake("application_id", &path)?;
    let mut conn = state.pool.get().await?;
    let app = owned(&mut conn, application_id, session.user.id).await?;
    let bot = match app.bot_user_id {
        Some(bot_id) => User::find(&mut conn, bot_id).await?,
        None => None,
    };
    let left = match &bot {
        Some(bot) => Member::of_user(&mut conn, bot.id).await?,
        None => Vec::new(),
    };
    conn.transaction(async |conn| {
        if let Some(bot) = &bot {
            for membership in &left {
                Member::delete(conn, membership.guild_id, bot.id).await?;
            }
            auth_sessions::delete_all(conn, bot.id).await?;
            let gone = UserChanges {
                disabled: Some(true),
                deleted: Some(true),
                ..UserChanges::default()
            };
            User::update(conn, bot.id, &gone).await?;
        }
        Application::delete(conn, app.id).await
    })
    .await?;
    if let Some(bot) = &bot {
        state.logins_ended(bot.id, None, None);
        for membership in &left {
            members::removed(membership.guild_id, bot)
                .iter()
                .for_each(|event| state.publish(event));
        }
    }
    tracing::info!(application_id = app.id, "application deleted");
    Ok(HttpResponse::NoContent().finish())
}
