//! A DM or group DM call's ringing. `POST /channels/{channel_id}/call/ring` rings recipients
//! again (all who are not in the call, or the `recipients` listed); `…/call/stop-ringing`
//! stops ringing the caller (declining) or, from someone in the call, the `recipients` listed.
//! Any recipient may ask; what is done is the calls actor's to decide (see `call::Ring`). The
//! body is optional, and `recipients` absent, `null` or `[]` all mean the default. Both answer
//! 204, also when there is no call: a decline racing the call's end is no error.

use actix_web::web::{Bytes, Data, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use spacebar_actors::call::Ring;

use crate::db::channels::kind;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::parse;
use crate::http::snowflake;
use crate::server::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct RingBody {
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    recipients: Option<Vec<i64>>,
}

pub async fn ring(
    state: Data<AppState>,
    session: Authenticated,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    ask(&state, session, &path, body, true).await
}

pub async fn stop_ringing(
    state: Data<AppState>,
    session: Authenticated,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    ask(&state, session, &path, body, false).await
}

async fn ask(
    state: &AppState,
    Authenticated(session): Authenticated,
    channel_id: &str,
    body: Bytes,
    ring: bool,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", channel_id)?;
    let body: RingBody = if body.is_empty() {
        RingBody::default()
    } else {
        parse(&body)?
    };
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    if kind::is_guild(access.channel.kind) {
        return Err(ApiError::wrong_channel_type());
    }
    state.tree.calls.do_send(Ring {
        channel_id,
        user_id: session.user.id,
        recipients: body.recipients.filter(|listed| !listed.is_empty()),
        ring,
        channel_recipients: access.recipients,
    });
    Ok(HttpResponse::NoContent().finish())
}
