//! `PATCH /guilds/{guild_id}` (MANAGE_GUILD): settings; ownership moves only by the owner.
//! GUILD_UPDATE to every member. `icon`, `banner` and `splash` take a data URL (or null); a
//! replaced image's file is removed once the change is saved.

use actix_web::HttpResponse;
use serde::Deserialize;

use super::guild_create::check_name;
use crate::audit::{action, changes as diff, Audit};
use crate::db::channels::Channel;
use crate::db::members::Member;
use crate::events::{Change, Event};
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::extractors::InGuild;
use crate::http::json::Json;
use crate::http::limits;
use crate::permissions::bits;
use crate::storage::{ImageArea, Key};
use crate::wire::guild;

#[derive(Debug, Deserialize)]
pub struct ModifyGuild {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::ids::nullable")]
    afk_channel_id: Option<Option<i64>>,
    afk_timeout: Option<i32>,
    #[serde(default, deserialize_with = "crate::http::ids::nullable")]
    system_channel_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::http::ids::nullable")]
    rules_channel_id: Option<Option<i64>>,
    verification_level: Option<i32>,
    default_message_notifications: Option<i32>,
    explicit_content_filter: Option<i32>,
    preferred_locale: Option<String>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    owner_id: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    icon: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    banner: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    splash: Option<Option<String>>,
}

pub async fn modify(
    caller: InGuild<Audit>,
    Json(body): Json<ModifyGuild>,
) -> Result<HttpResponse, ApiError> {
    let (session, access, conn) = (caller.session, caller.access, caller.conn);
    let guild_id = access.guild.id;
    let mut conn = conn.get().await?;
    access.require(bits::MANAGE_GUILD)?;
    let mut changed = access.guild.clone();
    if let Some(name) = body.name {
        check_name(name.trim())?;
        changed.name = name.trim().to_string();
    }
    if let Some(description) = body.description {
        if let Some(description) = &description {
            limits::guild_description(description)?;
        }
        changed.description = description;
    }
    let channels = Channel::of_guilds(&mut conn, &[guild_id]).await?;
    let in_guild =
        |id: Option<i64>, field: &str| match id {
            Some(id) if !channels.iter().any(|c| c.id == id) => Err(ApiError::from(
                FormErrors::field(field, "CHANNEL_INVALID", "Unknown channel in this guild."),
            )),
            _ => Ok(id),
        };
    if let Some(id) = body.afk_channel_id {
        changed.afk_channel_id = in_guild(id, "afk_channel_id")?;
    }
    if let Some(id) = body.system_channel_id {
        changed.system_channel_id = in_guild(id, "system_channel_id")?;
    }
    if let Some(id) = body.rules_channel_id {
        changed.rules_channel_id = in_guild(id, "rules_channel_id")?;
    }
    changed.afk_timeout = body.afk_timeout.unwrap_or(changed.afk_timeout);
    changed.verification_level = body
        .verification_level
        .unwrap_or(changed.verification_level);
    changed.default_message_notifications = body
        .default_message_notifications
        .unwrap_or(changed.default_message_notifications);
    changed.explicit_content_filter = body
        .explicit_content_filter
        .unwrap_or(changed.explicit_content_filter);
    if let Some(locale) = body.preferred_locale {
        limits::locale("preferred_locale", &locale)?;
        changed.preferred_locale = locale;
    }
    if let Some(owner_id) = body.owner_id.filter(|id| *id != changed.owner_id) {
        if !access.is_owner() {
            return Err(ApiError::MissingPermissions);
        }
        Member::find(&mut conn, guild_id, owner_id)
            .await?
            .ok_or(ApiError::Unknown(Unknown::Member))?;
        changed.owner_id = owner_id;
    }
    let images = [
        (ImageArea::Icon, "icon", body.icon),
        (ImageArea::Banner, "banner", body.banner),
        (ImageArea::Splash, "splash", body.splash),
    ];
    let mut stored: Vec<(ImageArea, Option<String>, Option<String>)> = Vec::new();
    let mut failed = None;
    let store = async {
        for (area, field, value) in images {
            let key = |hash: &str| Key::image(area, guild_id, hash);
            match caller.state.cdn.image_field(field, value, key).await {
                Ok(Some(new)) => {
                    let slot = match area {
                        ImageArea::Icon => &mut changed.icon,
                        ImageArea::Banner => &mut changed.banner,
                        _ => &mut changed.splash,
                    };
                    stored.push((area, slot.clone(), new.clone()));
                    *slot = new;
                }
                Ok(None) => {}
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        Ok::<_, ApiError>(())
    };
    let ((), mut conn) = caller.state.unheld(conn, store).await?;
    let (before, after) = (
        guild::properties(&access.guild),
        guild::properties(&changed),
    );
    let body = guild::guild(&changed, &access.roles);
    let mut change = Change::new(&caller.state);
    let kind = action::GUILD_UPDATE;
    let entry = caller.audit.entry(
        &caller.state,
        guild_id,
        session.user.id,
        kind,
        Some(guild_id),
    );
    change.audit(entry.changes(diff(Some(&before), Some(&after), &[])));
    change.emit(Event::GuildUpdate {
        guild_id,
        new_owner: (changed.owner_id != access.guild.owner_id).then_some(changed.owner_id),
        guild: body.clone(),
    });
    let saved = match failed {
        Some(error) => Err(ApiError::from(error)),
        None => {
            change
                .commit(&mut conn, async |conn| Ok(changed.save(conn).await?))
                .await
        }
    };
    for (area, old, new) in &stored {
        let key = |hash: &str| Key::image(*area, guild_id, hash);
        caller
            .state
            .cdn
            .settle_image(saved.is_ok(), old.as_deref(), new.as_deref(), key)
            .await;
    }
    saved?;
    Ok(HttpResponse::Ok().json(body))
}
