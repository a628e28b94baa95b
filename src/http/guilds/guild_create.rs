//! `POST /guilds`: a new guild with its @everyone role, Discord's default channels and its
//! creator as owner, all in one transaction; then GUILD_CREATE to the creator's sessions.
//! [`found`] does the founding for a template's guild too.
//! An `icon` data URL is stored first and removed again if the guild is not.

use actix_web::HttpResponse;
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::snapshot;
use crate::db::channels::{kind, Channel, OverwriteRow};
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::users::User;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::permissions::DEFAULT_EVERYONE;
use crate::rights;
use crate::state::AppState;
use crate::storage::{ImageArea, Key};
use crate::wire::guild;

#[derive(Debug, Deserialize)]
pub struct CreateGuild {
    name: String,
    description: Option<String>,
    icon: Option<String>,
}

pub async fn create(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<CreateGuild>,
) -> Result<HttpResponse, ApiError> {
    let name = body.name.trim().to_string();
    check_name(&name)?;
    if let Some(description) = &body.description {
        crate::http::limits::guild_description(description)?;
    }
    let ids = &state.snowflakes;
    let mut guild = Guild::new(ids.next(), name, session.user.id);
    guild.description = body.description;
    let everyone = Role::new(guild.id, guild.id, "@everyone".into(), DEFAULT_EVERYONE);
    let text_category = category(ids.next(), guild.id, "Text Channels", 0);
    let mut general = Channel::new(
        ids.next(),
        kind::GUILD_TEXT,
        Some(guild.id),
        Some("general".into()),
    );
    general.parent_id = Some(text_category.id);
    let voice_category = category(ids.next(), guild.id, "Voice Channels", 1);
    let mut voice = Channel::new(
        ids.next(),
        kind::GUILD_VOICE,
        Some(guild.id),
        Some("General".into()),
    );
    voice.parent_id = Some(voice_category.id);
    guild.system_channel_id = Some(general.id);
    let blueprint = Blueprint {
        guild,
        roles: vec![everyone],
        channels: vec![text_category, general, voice_category, voice],
        overwrites: Vec::new(),
    };
    found(&state, &session.user, blueprint, body.icon).await
}

/// Everything a new guild starts with (its ids already given).
pub struct Blueprint {
    pub guild: Guild,
    /// @everyone (the guild's id) first.
    pub roles: Vec<Role>,
    /// Categories before the channels in them.
    pub channels: Vec<Channel>,
    pub overwrites: Vec<OverwriteRow>,
}

/// Founds the guild `blueprint` describes, owned by `user`, with `icon` (a data URL): all of
/// it in one transaction, then GUILD_CREATE to the owner's sessions. Answers 201 with the
/// guild.
pub async fn found(
    state: &AppState,
    user: &User,
    blueprint: Blueprint,
    icon: Option<String>,
) -> Result<HttpResponse, ApiError> {
    ApiError::require(user.rights, rights::CREATE_GUILDS)?;
    let mut conn = state.pool.get().await?;
    let joined = Guild::of_user(&mut conn, user.id).await?.len();
    if u64::try_from(joined).unwrap_or(u64::MAX) >= state.config().limits.user_max_guilds {
        return Err(ApiError::Plain {
            status: actix_web::http::StatusCode::BAD_REQUEST,
            code: 30001,
            message: "Maximum number of guilds reached",
        });
    }
    let Blueprint {
        mut guild,
        roles,
        channels,
        overwrites,
    } = blueprint;
    let owner = Member::new(guild.id, user.id);
    let guild_id = guild.id;
    let icon_key = |hash: &str| Key::image(ImageArea::Icon, guild_id, hash);
    let icon = state.cdn.image_field("icon", icon.map(Some), icon_key);
    let (icon, mut conn) = state.unheld(conn, icon).await?;
    guild.icon = icon.flatten();
    let saved = conn
        .transaction(async |conn| {
            guild.insert(conn).await?;
            Role::insert_all(conn, &roles).await?;
            Channel::insert_all(conn, &channels).await?;
            OverwriteRow::insert_all(conn, &overwrites).await?;
            owner.insert(conn).await
        })
        .await;
    if saved.is_err() {
        let icon = guild.icon.as_deref();
        state.cdn.settle_image(false, None, icon, icon_key).await;
    }
    saved?;

    let access = GuildAccess::load(&mut conn, guild.id, user.id).await?;
    state.publish(&snapshot::guild_create(state, &mut conn, &access).await?);
    Ok(HttpResponse::Created().json(guild::guild(&access.guild, &access.roles)))
}

fn category(id: i64, guild_id: i64, name: &str, position: i32) -> Channel {
    let mut channel = Channel::new(id, kind::GUILD_CATEGORY, Some(guild_id), Some(name.into()));
    channel.position = position;
    channel
}

/// Guild names are 2 to 100 characters.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let length = name.chars().count();
    if (2..=100).contains(&length) {
        Ok(())
    } else {
        Err(FormErrors::field(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 2 and 100 in length.",
        )
        .into())
    }
}
