//! `GET/PATCH /users/@me`: the account itself.
//!
//! Changing the username, e-mail or password needs the current password (bots excepted). A new
//! password ends every login session and answers with a fresh `token`. After the commit, every
//! gateway session of the user gets USER_UPDATE; when what others see changed (avatar, names,
//! banner), each guild they are in gets GUILD_MEMBER_UPDATE and their friends PRESENCE_UPDATE
//! with the new user, as Discord does. `avatar` and `banner` take a data URL (or null); the
//! file stored and the old one removed only once the change is saved.

use actix_web::HttpResponse;
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::{validate_username, Discriminators};
use crate::credentials::password;
use crate::db::members::Member;
use crate::db::relationships::{kind, Relationship};
use crate::db::users::{User, UserChanges};
use crate::db::{auth_sessions, Connection};
use crate::events::{Event, ToUser};
use crate::http::auth::{check_password, normalise_email, plausible_email};
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::rights;
use crate::state::AppState;
use crate::storage::{ImageArea, Key};
use crate::wire::user::{PrivateUser, PublicUser};

/// Longest pronouns text, as Discord allows.
const MAX_PRONOUNS: usize = 40;

pub async fn get(Authenticated { session, .. }: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(PrivateUser::from(&session.user))
}

#[derive(Debug, Default, Deserialize)]
pub struct PatchMe {
    username: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    global_name: Option<Option<String>>,
    email: Option<String>,
    password: Option<String>,
    new_password: Option<String>,
    bio: Option<String>,
    pronouns: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    accent_color: Option<Option<i32>>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    avatar: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    banner: Option<Option<String>>,
}

impl PatchMe {
    /// A change of the profile's fields alone (`PATCH /users/@me/profile`).
    pub fn profile(
        bio: Option<String>,
        pronouns: Option<String>,
        accent_color: Option<Option<i32>>,
        banner: Option<Option<String>>,
    ) -> Self {
        Self {
            bio,
            pronouns,
            accent_color,
            banner,
            ..Self::default()
        }
    }
}

pub async fn patch(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<PatchMe>,
) -> Result<HttpResponse, ApiError> {
    let (user, token) = update(&state, &session.user, body).await?;
    let mut body = serde_json::to_value(PrivateUser::from(&user))?;
    if let Some(token) = token {
        body["token"] = token.into();
    }
    Ok(HttpResponse::Ok().json(body))
}

/// Checks and saves the changes, then tells whoever should hear of them: the user after it,
/// and a new token when the password changed.
pub async fn update(
    state: &AppState,
    me: &User,
    body: PatchMe,
) -> Result<(User, Option<String>), ApiError> {
    let limits = &state.config().limits;
    let mut errors = FormErrors::default();
    let mut changes = UserChanges::default();

    let username = body
        .username
        .map(|name| name.trim().to_string())
        .filter(|name| *name != me.username);
    let email = body
        .email
        .map(|email| normalise_email(&email))
        .filter(|email| me.email.as_ref() != Some(email));
    if (username.is_some() || email.is_some() || body.new_password.is_some()) && !me.bot {
        check_current_password(me, body.password, &mut errors).await?;
    }
    // Taken after bcrypt, not held through it.
    let mut conn = state.pool.get().await?;
    if let Some(username) = username {
        ApiError::require(me.rights, rights::SELF_EDIT_NAME)?;
        validate_username(&username, limits.user_max_username, &mut errors);
        if errors.is_empty() {
            changes.discriminator = Some(
                Discriminators::keep_or_pick(&mut conn, &username, &me.discriminator, me.id)
                    .await?,
            );
        }
        changes.username = Some(username);
    }
    if let Some(email) = email {
        if !plausible_email(&email) {
            errors.add(
                "email",
                "EMAIL_TYPE_INVALID_EMAIL",
                "Not a well formed email address.",
            );
        } else if User::find_by_email(&mut conn, &email).await?.is_some() {
            errors.add(
                "email",
                "EMAIL_ALREADY_REGISTERED",
                "Email is already registered.",
            );
        }
        changes.email = Some(Some(email));
    }
    if let Some(new_password) = &body.new_password {
        check_password(
            new_password,
            state.config().register.password_min_length,
            "new_password",
            &mut errors,
        );
    }
    if let Some(bio) = body.bio {
        if bio.chars().count() > limits.user_max_bio {
            errors.add(
                "bio",
                "BASE_TYPE_BAD_LENGTH",
                format!("Must be between 0 and {} in length.", limits.user_max_bio),
            );
        }
        changes.bio = Some(bio);
    }
    if let Some(pronouns) = body.pronouns {
        if pronouns.chars().count() > MAX_PRONOUNS {
            errors.add(
                "pronouns",
                "BASE_TYPE_BAD_LENGTH",
                format!("Must be between 0 and {MAX_PRONOUNS} in length."),
            );
        }
        changes.pronouns = Some(pronouns);
    }
    if let Some(Some(color)) = body.accent_color {
        if !(0..=0xFF_FFFF).contains(&color) {
            errors.add(
                "accent_color",
                "NUMBER_TYPE_MAX",
                "int value should be <= 16777215 and >= 0.",
            );
        }
    }
    changes.accent_color = body.accent_color;
    if let Some(Some(name)) = &body.global_name {
        // Discord's display names: at most 32 characters.
        crate::http::limits::chars("global_name", name.trim(), 0..=32)?;
    }
    changes.global_name = body
        .global_name
        .map(|name| name.filter(|n| !n.trim().is_empty()));
    errors.into_result()?;

    let cdn = &state.cdn;
    let avatar_key = |hash: &str| Key::image(ImageArea::Avatar, me.id, hash);
    let banner_key = |hash: &str| Key::image(ImageArea::Banner, me.id, hash);
    let slow_work = async {
        if let Some(new_password) = body.new_password {
            let cost = state.config().security.bcrypt_cost;
            changes.password_hash = Some(Some(password::hash(new_password, cost).await?));
        }
        changes.avatar = cdn.image_field("avatar", body.avatar, avatar_key).await?;
        changes.banner = match cdn.image_field("banner", body.banner, banner_key).await {
            Ok(banner) => banner,
            Err(error) => {
                let new_avatar = changes.avatar.clone().flatten();
                cdn.settle_image(
                    false,
                    me.avatar.as_deref(),
                    new_avatar.as_deref(),
                    avatar_key,
                )
                .await;
                return Err(error.into());
            }
        };
        Ok::<_, ApiError>(())
    };
    let ((), mut conn) = state.unheld(conn, slow_work).await?;
    let new_session = changes
        .password_hash
        .is_some()
        .then(|| state.snowflakes.next());
    let saved = save(&mut conn, me.id, &changes, new_session).await;
    for (old, new, key) in [
        (
            &me.avatar,
            &changes.avatar,
            &avatar_key as &dyn Fn(&str) -> Option<Key>,
        ),
        (&me.banner, &changes.banner, &banner_key),
    ] {
        if let Some(new) = new {
            cdn.settle_image(saved.is_ok(), old.as_deref(), new.as_deref(), key)
                .await;
        }
    }
    let user = saved?;
    let token = match new_session {
        Some(session_id) => {
            let token = state.tokens.issue(user.id, session_id)?;
            state.logins_ended(user.id, None, Some(session_id));
            Some(token)
        }
        None => None,
    };
    state.publish(&Event::UserUpdate(ToUser {
        user_id: user.id,
        data: serde_json::to_value(PrivateUser::from(&user))?,
    }));
    let public = serde_json::to_value(PublicUser::from(&user))?;
    if serde_json::to_value(PublicUser::from(me))? != public {
        tell_others(state, &mut conn, &user, public).await?;
    }
    Ok((user, token))
}

/// What others see of the user changed: GUILD_MEMBER_UPDATE in each of their guilds (to the
/// members who see them), PRESENCE_UPDATE carrying `public` to their friends.
async fn tell_others(
    state: &AppState,
    conn: &mut Connection,
    user: &User,
    public: serde_json::Value,
) -> Result<(), ApiError> {
    for member in Member::of_user(conn, user.id).await? {
        state.publish(&crate::http::guilds::members::updated(&member, user));
    }
    let friends = Relationship::of_user(conn, user.id)
        .await?
        .into_iter()
        .filter(|r| r.kind == kind::FRIEND)
        .map(|r| r.other_id)
        .collect();
    state.user_changed(user.id, public, friends);
    Ok(())
}

/// Applies the changes; with a new password, every login session ends and `new_session` opens.
async fn save(
    conn: &mut Connection,
    user_id: i64,
    changes: &UserChanges,
    new_session: Option<i64>,
) -> Result<User, ApiError> {
    let saved = conn
        .transaction(async |conn| {
            let user = User::update(conn, user_id, changes).await?;
            if let Some(session_id) = new_session {
                auth_sessions::delete_all(conn, user_id).await?;
                auth_sessions::create(conn, session_id, user_id).await?;
            }
            Ok::<_, diesel::result::Error>(user)
        })
        .await;
    match saved {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        )) => {
            let field = if info.constraint_name() == Some("users_email_key") {
                "email"
            } else {
                "username"
            };
            Err(FormErrors::field(
                field,
                "BASE_TYPE_ALREADY_EXISTS",
                "Already taken; try again.",
            )
            .into())
        }
        other => Ok(other?),
    }
}

pub(super) async fn check_current_password(
    me: &User,
    presented: Option<String>,
    errors: &mut FormErrors,
) -> Result<(), ApiError> {
    let Some(presented) = presented else {
        errors.add("password", "BASE_TYPE_REQUIRED", "This field is required");
        return Ok(());
    };
    let matches = match me.password_hash.clone() {
        Some(hash) => password::verify(presented, hash).await?,
        None => false,
    };
    if !matches {
        errors.add(
            "password",
            "PASSWORD_DOES_NOT_MATCH",
            "Password does not match.",
        );
    }
    Ok(())
}
