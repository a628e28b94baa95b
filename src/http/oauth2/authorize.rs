//! `GET /oauth2/authorize?client_id=…`: what the authorize screen shows (the application, its
//! bot, the caller, and the guilds the caller may add it to). `POST /oauth2/authorize?client_id=…
//! &scope=bot&permissions=…` with `{guild_id, permissions?, authorize}`: the caller (a person
//! with MANAGE_GUILD there) adds the application's bot to the guild, with a managed role named
//! after the application that holds the granted permissions (none when no permission is
//! granted, as on Discord), all in one transaction. Then GUILD_ROLE_CREATE (and GUILD_ROLE_UPDATE
//! for the roles moved up to make room) and GUILD_MEMBER_ADD to the guild, and GUILD_CREATE to
//! the bot's sessions, which start hearing the guild.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Query};
use actix_web::{HttpRequest, HttpResponse};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::json;

use crate::audit::{action, Audit, Entry};
use crate::db::applications::Application;
use crate::db::bans::Ban;
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::users::User;
use crate::db::Connection;
use crate::events::Event;
use crate::http::access::GuildAccess;
use crate::http::applications::{human_only, no_bot};
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::guilds::{members, roles};
use crate::http::urls::PublicUrls;
use crate::http::{json, snowflake};
use crate::permissions::{self, bits};
use crate::state::AppState;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

/// The bot's managed role goes just above @everyone.
const MANAGED_ROLE_POSITION: i32 = 1;

#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeBody {
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    guild_id: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::permissions")]
    permissions: Option<i64>,
    #[serde(default)]
    authorize: Option<bool>,
}

pub async fn get(
    Authenticated { state, session }: Authenticated,
    query: Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let user = &session.user;
    human_only(user)?;
    let mut conn = state.pool.get().await?;
    let (app, bot) = application_with_bot(&mut conn, &query).await?;
    let mut guilds = Vec::new();
    for guild in Guild::of_user(&mut conn, user.id).await? {
        let access = GuildAccess::load(&mut conn, guild.id, user.id).await?;
        let granted = access.permissions();
        if permissions::has(granted, bits::MANAGE_GUILD) {
            guilds.push(json!({
                "id": id(guild.id),
                "name": guild.name,
                "icon": guild.icon,
                "mfa_level": guild.mfa_level,
                "permissions": granted.to_string(),
            }));
        }
    }
    let application = crate::http::applications::body(&mut conn, &app).await?;
    Ok(HttpResponse::Ok().json(json!({
        "application": application,
        "bot": PublicUser::from(&bot),
        "user": PublicUser::from(user),
        "guilds": guilds,
        "authorized": false,
        "redirect_uri": null,
    })))
}

pub async fn post(
    req: HttpRequest,
    Authenticated { state, session }: Authenticated,
    audit: Audit,
    query: Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let user = &session.user;
    human_only(user)?;
    // Clients send `{}` or nothing at all when only the query matters.
    let body: AuthorizeBody = if body.iter().all(u8::is_ascii_whitespace) {
        AuthorizeBody::default()
    } else {
        json::parse(&body)?
    };
    let mut conn = state.pool.get().await?;
    let (app, bot) = application_with_bot(&mut conn, &query).await?;
    let location = format!(
        "{}/oauth2/authorized",
        PublicUrls::of(&req, &state.config()).base
    );
    if body.authorize != Some(true) {
        return Ok(HttpResponse::Ok().json(json!({
            "location": format!("{location}?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request"),
        })));
    }
    let guild_id = body.guild_id.ok_or_else(|| {
        FormErrors::field("guild_id", "BASE_TYPE_REQUIRED", "This field is required")
    })?;
    let access = GuildAccess::load(&mut conn, guild_id, user.id).await?;
    access.require(bits::MANAGE_GUILD)?;
    if Ban::exists(&mut conn, guild_id, bot.id).await? {
        return Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 40007,
            message: "The user is banned from this guild.",
        });
    }
    let requested = match (body.permissions, query.get("permissions")) {
        (Some(permissions), _) => permissions,
        (None, Some(text)) => snowflake("permissions", text)?,
        (None, None) => 0,
    };
    // Nobody can hand a bot more than they hold themselves.
    let granted = (requested as u64) & access.permissions() & permissions::ALL;
    let entry = audit.entry(&state, guild_id, user.id, action::BOT_ADD, Some(bot.id));
    add_bot(&state, &mut conn, &access, (&app, &bot), granted, &entry).await?;
    Ok(HttpResponse::Ok().json(json!({ "location": location })))
}

/// The application named by `client_id` and its bot user: 10002 / 50010 otherwise.
async fn application_with_bot(
    conn: &mut Connection,
    query: &HashMap<String, String>,
) -> Result<(Application, User), ApiError> {
    let client_id = query.get("client_id").ok_or_else(|| {
        FormErrors::field("client_id", "BASE_TYPE_REQUIRED", "This field is required")
    })?;
    let app = Application::find(conn, snowflake("client_id", client_id)?)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Application))?;
    let bot_id = app.bot_user_id.ok_or_else(no_bot)?;
    let bot = User::find(conn, bot_id).await?.ok_or_else(no_bot)?;
    Ok((app, bot))
}

/// Makes the bot a member (with its managed role when it was granted anything) and tells
/// everyone. A bot already in the guild stays as it is.
async fn add_bot(
    state: &AppState,
    conn: &mut Connection,
    access: &GuildAccess,
    (app, bot): (&Application, &User),
    granted: u64,
    entry: &Entry,
) -> Result<(), ApiError> {
    let guild_id = access.guild.id;
    let role = (granted != 0).then(|| {
        let mut role = Role::new(state.snowflakes.next(), guild_id, app.name.clone(), granted);
        role.managed = true;
        role.bot_id = Some(bot.id);
        role.position = MANAGED_ROLE_POSITION;
        role
    });
    let mut member = Member::new(guild_id, bot.id);
    member.roles = role.iter().map(|r| r.id).collect();
    let joined = conn
        .transaction(async |conn| {
            if Member::find(conn, guild_id, bot.id).await?.is_some() {
                return Ok(false);
            }
            if let Some(role) = &role {
                Role::shift_up_from(conn, guild_id, role.position).await?;
                role.insert(conn).await?;
            }
            member.insert(conn).await?;
            entry.write(conn).await?;
            Ok::<_, diesel::result::Error>(true)
        })
        .await?;
    if !joined {
        return Ok(());
    }
    state.publish(&entry.event());
    tracing::info!(guild_id, bot_id = bot.id, granted, "bot added to guild");

    if let Some(role) = &role {
        // Roles pushed up to make room: their new positions, then the new role.
        for event in roles::moved(conn, access).await? {
            state.publish(&event);
        }
        state.publish(&Event::GuildRoleCreate(roles::changed(role)));
    }
    members::joined(state, conn, guild_id, bot).await
}
