//! A DM or group DM call's ringing. `POST /channels/{channel_id}/call/ring` rings recipients
//! again (all who are not in the call, or the `recipients` listed); `…/call/stop-ringing`
//! stops ringing the caller (declining) or, from someone in the call, the `recipients` listed.
//! Any recipient may ask; what is done is the calls actor's to decide (see `call::Ring`). The
//! body is optional, and `recipients` absent, `null` or `[]` all mean the default. Both answer
//! 204, also when there is no call: a decline racing the call's end is no error.

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde::Deserialize;
use spacebar_actors::call::Ring;

use crate::db::channels::kind;
use crate::http::error::ApiError;
use crate::http::extractors::InChannel;
use crate::http::json::parse;

#[derive(Debug, Default, Deserialize)]
pub struct RingBody {
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    recipients: Option<Vec<i64>>,
}

/// `…/call/ring` (`RING`) and `…/call/stop-ringing`.
pub async fn ask<const RING: bool>(
    caller: InChannel,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: RingBody = if body.is_empty() {
        RingBody::default()
    } else {
        parse(&body)?
    };
    let access = caller.access;
    if kind::is_guild(access.channel.kind) {
        return Err(ApiError::wrong_channel_type());
    }
    caller.state.tree.calls.do_send(Ring {
        channel_id: access.channel.id,
        user_id: caller.session.user.id,
        recipients: body.recipients.filter(|listed| !listed.is_empty()),
        ring: RING,
        channel_recipients: access.recipients,
    });
    Ok(HttpResponse::NoContent().finish())
}
