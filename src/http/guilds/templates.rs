//! Guild templates, as Discord has them: one per guild, made and managed with MANAGE_GUILD
//! (`GET/POST /guilds/{guild_id}/templates`, `PUT` to sync it with the guild as it is now,
//! `PATCH` and `DELETE /guilds/{guild_id}/templates/{code}`), read by anyone logged in
//! (`GET /guilds/templates/{code}`), and used to found a new guild
//! (`POST /guilds/templates/{code}` with `{name, icon}`).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use chrono::Utc;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::guild_create::{check_name, found};
use super::template_source::Source;
use crate::db::channels::{Channel, OverwriteRow};
use crate::db::guild_templates::Template;
use crate::db::users::User;
use crate::db::{Connection, Pooled};
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::extractors::InGuild;
use crate::http::json::Json;
use crate::rights;
use crate::state::AppState;
use crate::wire::guild::{id, opt_id};
use crate::wire::user::PublicUser;

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 120;
/// Discord's limits of a guild, and so of a template.
const MAX_CHANNELS: usize = 500;
const MAX_ROLES: usize = 250;
/// Discord's template codes are 12 letters and digits.
const CODE_LENGTH: usize = 12;

fn unknown_template() -> ApiError {
    ApiError::Plain {
        status: StatusCode::NOT_FOUND,
        code: 10057,
        message: "Unknown Guild Template",
    }
}

/// The template object: with its creator and its source guild.
async fn wire(conn: &mut Connection, template: &Template) -> Result<Value, ApiError> {
    let creator = match template.creator_id {
        Some(creator_id) => User::find(conn, creator_id).await?,
        None => None,
    };
    Ok(json!({
        "code": template.code,
        "name": template.name,
        "description": template.description,
        "usage_count": template.usage_count,
        "creator_id": opt_id(template.creator_id),
        "creator": creator.as_ref().map(PublicUser::from),
        "created_at": template.created_at,
        "updated_at": template.updated_at,
        "source_guild_id": id(template.guild_id),
        "serialized_source_guild": template.source,
        "is_dirty": null,
    }))
}

/// The guild as a template source now. A guild past Discord's 500 channels or 250 roles is
/// refused with Discord's errors for those limits (30013, 30005): each use of its template
/// would found a guild as large again.
async fn source_of(conn: &mut Connection, access: &GuildAccess) -> Result<Value, ApiError> {
    let guild_id = access.guild.id;
    if access.roles.len() > MAX_ROLES {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30005,
            message: "Maximum number of guild roles reached (250)",
        });
    }
    let channels = Channel::of_guilds(conn, &[guild_id]).await?;
    if channels.len() > MAX_CHANNELS {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30013,
            message: "Maximum number of guild channels reached (500)",
        });
    }
    let ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
    let overwrites = OverwriteRow::of_channels(conn, &ids).await?;
    Source::of(&access.guild, &access.roles, &channels, &overwrites).to_json()
}

/// The `{code}` of `/guilds/{guild_id}/templates/{code}`.
#[derive(Debug, Deserialize)]
pub struct CodePath {
    code: String,
}

/// The caller's guild and its template that `/guilds/{guild_id}/templates/{code}` names
/// (10057 if it has no such one), once MANAGE_GUILD is checked.
async fn managed_template(
    caller: InGuild,
    code: &str,
) -> Result<(GuildAccess, Pooled, Template), ApiError> {
    let (access, mut conn) = super::managed(caller).await?;
    let template = Template::find(&mut conn, code)
        .await?
        .filter(|t| t.guild_id == access.guild.id)
        .ok_or_else(unknown_template)?;
    Ok((access, conn, template))
}

pub async fn list(caller: InGuild) -> Result<HttpResponse, ApiError> {
    let (access, mut conn) = super::managed(caller).await?;
    let mut templates = Vec::new();
    for template in Template::of_guild(&mut conn, access.guild.id).await? {
        templates.push(wire(&mut conn, &template).await?);
    }
    Ok(HttpResponse::Ok().json(templates))
}

#[derive(Debug, Deserialize)]
pub struct TemplateBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    description: Option<Option<String>>,
}

impl TemplateBody {
    /// Checks the fields given against Discord's limits (name 1–100, description 0–120).
    fn check(&self) -> Result<(), ApiError> {
        let mut errors = FormErrors::default();
        if let Some(name) = &self.name {
            if !(1..=MAX_NAME).contains(&name.trim().chars().count()) {
                errors.add(
                    "name",
                    "BASE_TYPE_BAD_LENGTH",
                    format!("Must be between 1 and {MAX_NAME} in length."),
                );
            }
        }
        if let Some(Some(description)) = &self.description {
            if description.chars().count() > MAX_DESCRIPTION {
                errors.add(
                    "description",
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {MAX_DESCRIPTION} or fewer in length."),
                );
            }
        }
        errors.into_result()
    }
}

pub async fn create(
    caller: InGuild,
    Json(body): Json<TemplateBody>,
) -> Result<HttpResponse, ApiError> {
    let Some(name) = body.name.as_deref().map(str::trim) else {
        return Err(
            FormErrors::field("name", "BASE_TYPE_REQUIRED", "This field is required").into(),
        );
    };
    body.check()?;
    let user_id = caller.session.user.id;
    let (access, mut conn) = super::managed(caller).await?;
    let now = Utc::now();
    let template = Template {
        code: Alphanumeric.sample_string(&mut rand::rng(), CODE_LENGTH),
        guild_id: access.guild.id,
        name: name.to_string(),
        description: body.description.clone().flatten(),
        usage_count: 0,
        creator_id: Some(user_id),
        created_at: now,
        updated_at: now,
        source: source_of(&mut conn, &access).await?,
    };
    if !template.insert_new(&mut conn).await? {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30031,
            message: "A server template already exists for this guild",
        });
    }
    Ok(HttpResponse::Ok().json(wire(&mut conn, &template).await?))
}

/// `PUT`: the template now describes the guild as it is.
pub async fn sync(caller: InGuild, path: Path<CodePath>) -> Result<HttpResponse, ApiError> {
    let (access, mut conn, mut template) = managed_template(caller, &path.code).await?;
    template.source = source_of(&mut conn, &access).await?;
    template.updated_at = Utc::now();
    template.save(&mut conn).await?;
    Ok(HttpResponse::Ok().json(wire(&mut conn, &template).await?))
}

pub async fn modify(
    caller: InGuild,
    path: Path<CodePath>,
    Json(body): Json<TemplateBody>,
) -> Result<HttpResponse, ApiError> {
    body.check()?;
    let (_, mut conn, mut template) = managed_template(caller, &path.code).await?;
    if let Some(name) = body.name {
        template.name = name.trim().to_string();
    }
    if let Some(description) = body.description {
        template.description = description;
    }
    template.updated_at = Utc::now();
    template.save(&mut conn).await?;
    Ok(HttpResponse::Ok().json(wire(&mut conn, &template).await?))
}

pub async fn delete(caller: InGuild, path: Path<CodePath>) -> Result<HttpResponse, ApiError> {
    let (_, mut conn, template) = managed_template(caller, &path.code).await?;
    Template::delete(&mut conn, &template.code).await?;
    Ok(HttpResponse::Ok().json(wire(&mut conn, &template).await?))
}

/// `GET /guilds/templates/{code}`: anyone logged in may look before using it.
pub async fn get(
    state: Data<AppState>,
    _: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let template = Template::find(&mut conn, &path)
        .await?
        .ok_or_else(unknown_template)?;
    Ok(HttpResponse::Ok().json(wire(&mut conn, &template).await?))
}

#[derive(Debug, Deserialize)]
pub struct UseTemplate {
    name: String,
    /// A data URL.
    icon: Option<String>,
}

/// `POST /guilds/templates/{code}`: a new guild laid out as the template says (201).
pub async fn use_template(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
    Json(body): Json<UseTemplate>,
) -> Result<HttpResponse, ApiError> {
    ApiError::require(session.user.rights, rights::CREATE_GUILDS)?;
    let name = body.name.trim().to_string();
    check_name(&name)?;
    let blueprint = {
        let mut conn = state.pool.get().await?;
        let template = Template::find(&mut conn, &path)
            .await?
            .ok_or_else(unknown_template)?;
        Source::from_json(&template.source)?.blueprint(&state.snowflakes, name, session.user.id)
    };
    let created = found(&state, &session.user, blueprint, body.icon).await?;
    let mut conn = state.pool.get().await?;
    Template::count_use(&mut conn, &path).await?;
    Ok(created)
}
