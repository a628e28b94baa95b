//! `PUT` and `DELETE /_spacebar/admin/users/{user_id}/rights/{right}`: grant or revoke one
//! instance right, named (`MANAGE_USERS`) or by bit number (`7`). Answers the account.

use actix_web::web::{self, Path};
use actix_web::HttpResponse;

use super::{users, Operator};
use crate::db::users::{User, UserChanges};
use crate::http::error::{ApiError, FormErrors};
use crate::rights::{self, Right};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/{user_id}/rights/{right}", web::put().to(grant))
        .route("/users/{user_id}/rights/{right}", web::delete().to(revoke));
}

async fn grant(operator: Operator, path: Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    change(&operator.state, &operator, &path, true).await
}

async fn revoke(
    operator: Operator,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    change(&operator.state, &operator, &path, false).await
}

async fn change(
    state: &AppState,
    operator: &Operator,
    (user_id, right): &(String, String),
    granted: bool,
) -> Result<HttpResponse, ApiError> {
    let right = parse(right)?;
    let user = users::find(state, user_id).await?;
    let bit = 1i64 << right.bit;
    let new_rights = if granted {
        user.rights | bit
    } else {
        user.rights & !bit
    };
    let mut conn = state.pool.get().await?;
    let changes = UserChanges {
        rights: Some(new_rights),
        ..UserChanges::default()
    };
    let user = User::update(&mut conn, user.id, &changes).await?;
    let action = if granted {
        "grant right"
    } else {
        "revoke right"
    };
    operator.log(action, format!("{} to user {}", right.name, user.id));
    Ok(HttpResponse::Ok().json(users::view(&user)))
}

fn parse(text: &str) -> Result<Right, ApiError> {
    let found = match text.parse::<u8>() {
        Ok(bit) => rights::ALL.iter().find(|r| r.bit == bit),
        Err(_) => rights::ALL
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(text)),
    };
    found.copied().ok_or_else(|| {
        FormErrors::field(
            "right",
            "BASE_TYPE_CHOICES",
            format!("Unknown right {text}."),
        )
        .into()
    })
}
