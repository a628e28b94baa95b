//! `POST /auth/register`: creates an account and answers `{token}`. While registration is
//! closed, a registration token from an operator (`?token=` or `registration_token` in the
//! body) still lets one account in, and is used up with it.
//!
//! Usernames are not unique: each account gets a free discriminator for its name. Nullable
//! fields (`password`, `email`, `invite`, `fingerprint`) may arrive as `null`. The account and
//! its first login session are written in one transaction.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use chrono::NaiveDate;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::json;

use crate::credentials::password::{self, MAX_PASSWORD_BYTES};
use crate::db::registration_tokens::RegistrationToken;
use crate::db::users::{NewUser, User};
use crate::db::{auth_sessions, Connection};
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::Json;
use crate::http::users::{validate_username, Discriminators};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct RegisterBody {
    username: String,
    password: Option<String>,
    email: Option<String>,
    consent: Option<bool>,
    date_of_birth: Option<String>,
    invite: Option<String>,
    global_name: Option<String>,
    registration_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RegisterQuery {
    token: Option<String>,
}

pub async fn register(
    state: Data<AppState>,
    query: Query<RegisterQuery>,
    Json(body): Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let rules = &state.config().register;
    // Closed registration lets in only the holder of a registration token.
    let token = match rules.allow_new_registration {
        true => None,
        false => Some(
            query
                .into_inner()
                .token
                .or(body.registration_token.clone())
                .ok_or(ApiError::Plain {
                    status: StatusCode::BAD_REQUEST,
                    code: 0,
                    message: "New user registration is disabled",
                })?,
        ),
    };
    let mut errors = FormErrors::default();
    let username = body.username.trim().to_string();
    validate_username(
        &username,
        state.config().limits.user_max_username,
        &mut errors,
    );
    if body.consent != Some(true) {
        errors.add(
            "consent",
            "CONSENT_REQUIRED",
            "You need to agree to the Terms of Service and Privacy Policy.",
        );
    }
    let email = body
        .email
        .as_deref()
        .map(normalise_email)
        .filter(|e| !e.is_empty());
    match &email {
        None if rules.email_required => {
            errors.add("email", "BASE_TYPE_REQUIRED", "This field is required")
        }
        Some(email) if !plausible_email(email) => errors.add(
            "email",
            "EMAIL_TYPE_INVALID_EMAIL",
            "Not a well formed email address.",
        ),
        _ => {}
    }
    match &body.password {
        None if rules.password_required => {
            errors.add("password", "BASE_TYPE_REQUIRED", "This field is required")
        }
        Some(password) => {
            check_password(password, rules.password_min_length, "password", &mut errors)
        }
        None => {}
    }
    let date_of_birth = check_date_of_birth(&state, body.date_of_birth.as_deref(), &mut errors);
    if rules.require_invite && body.invite.is_none() {
        errors.add("invite", "BASE_TYPE_REQUIRED", "This field is required");
    }
    errors.into_result()?;
    if body.invite.is_some() {
        // Invites arrive with guilds; until one exists, no code names a real invite.
        return Err(ApiError::Unknown(Unknown::Invite));
    }

    let password_hash = match body.password {
        Some(password) => {
            Some(password::hash(password, state.config().security.bcrypt_cost).await?)
        }
        None => None,
    };
    let mut conn = state.pool.get().await?;
    if let Some(email) = &email {
        if User::find_by_email(&mut conn, email).await?.is_some() {
            return Err(email_taken());
        }
    }
    let discriminator = Discriminators::pick(&mut conn, &username).await?;
    let user = NewUser {
        id: state.snowflakes.next(),
        username,
        discriminator,
        global_name: body.global_name.filter(|name| !name.trim().is_empty()),
        email,
        password_hash,
        rights: i64::try_from(state.config().security.default_rights).unwrap_or(0),
        date_of_birth,
    };
    let session_id = state.snowflakes.next();
    let created = create_account(&mut conn, &user, session_id, token.as_deref()).await;
    match created {
        Ok(()) => {}
        Err(diesel::result::Error::NotFound) => {
            return Err(ApiError::Plain {
                status: StatusCode::BAD_REQUEST,
                code: 0,
                message: "Invalid registration token",
            })
        }
        // Another registration took the same e-mail or tag between the check and the insert.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        )) => {
            return Err(if info.constraint_name() == Some("users_email_key") {
                email_taken()
            } else {
                crate::http::users::too_many_users()
            })
        }
        Err(error) => return Err(error.into()),
    }
    let token = state.tokens.issue(user.id, session_id)?;
    Ok(HttpResponse::Ok().json(json!({ "token": token })))
}

/// The account and its first login, and the registration token used up, all or nothing; an
/// unknown or expired token is `NotFound`.
async fn create_account(
    conn: &mut Connection,
    user: &NewUser,
    session_id: i64,
    token: Option<&str>,
) -> diesel::QueryResult<()> {
    conn.transaction(async |conn| {
        if let Some(token) = token {
            if !RegistrationToken::consume(conn, token).await? {
                return Err(diesel::result::Error::NotFound);
            }
        }
        User::insert(conn, user).await?;
        auth_sessions::create(conn, session_id, user.id).await
    })
    .await
}

fn email_taken() -> ApiError {
    FormErrors::field(
        "email",
        "EMAIL_ALREADY_REGISTERED",
        "Email is already registered.",
    )
    .into()
}

pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
        && email.len() <= 254
}

/// Adds the password rules' errors under `field`.
pub fn check_password(password: &str, min_length: usize, field: &str, errors: &mut FormErrors) {
    if password.chars().count() < min_length {
        errors.add(
            field,
            "PASSWORD_REQUIREMENTS_MIN_LENGTH",
            format!("Must be at least {min_length} characters long."),
        );
    } else if password.len() > MAX_PASSWORD_BYTES {
        errors.add(
            field,
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between {min_length} and {MAX_PASSWORD_BYTES} in length."),
        );
    }
}

fn check_date_of_birth(
    state: &AppState,
    text: Option<&str>,
    errors: &mut FormErrors,
) -> Option<NaiveDate> {
    let rules = &state.config().register;
    let Some(text) = text else {
        if rules.date_of_birth_required {
            errors.add(
                "date_of_birth",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            );
        }
        return None;
    };
    // Clients send a date, some a full timestamp; the date part is what counts.
    let date = text
        .get(..10)
        .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok());
    let Some(date) = date else {
        errors.add(
            "date_of_birth",
            "DATE_TYPE_PARSE",
            format!("Could not parse \"{text}\". Should be ISO8601."),
        );
        return None;
    };
    let age = chrono::Utc::now().date_naive().years_since(date);
    if age.is_none_or(|age| age < rules.date_of_birth_minimum_age) {
        errors.add(
            "date_of_birth",
            "DATE_OF_BIRTH_UNDERAGE",
            format!(
                "You need to be {} or older in order to use this instance.",
                rules.date_of_birth_minimum_age
            ),
        );
        return None;
    }
    Some(date)
}
