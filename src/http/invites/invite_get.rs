//! `GET /invites/{code}`: the invite, to anyone (no login needed, so a link can be previewed
//! before signing in). `with_counts=true` adds the guild's approximate member and presence
//! counts. A spent invite answers 10006 and is deleted.

use actix_web::web::{Data, Path, Query};
use actix_web::HttpResponse;
use serde::Deserialize;

use super::{describe, find_usable};
use crate::db::members::Member;
use crate::http::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct GetInvite {
    with_counts: Option<bool>,
}

pub async fn get(
    state: Data<AppState>,
    path: Path<String>,
    query: Query<GetInvite>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let invite = find_usable(&mut conn, &path).await?;
    let mut body = describe(&mut conn, &invite).await?;
    if query.with_counts == Some(true) {
        let members = Member::counts(&mut conn, &[invite.guild_id])
            .await?
            .first()
            .map_or(0, |(_, n)| *n);
        body["approximate_member_count"] = members.into();
        // Presences are not tracked per guild yet.
        body["approximate_presence_count"] = 0.into();
    }
    Ok(HttpResponse::Ok().json(body))
}
