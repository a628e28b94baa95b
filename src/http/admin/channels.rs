//! `DELETE /_spacebar/admin/channels/{channel_id}`: any channel, guild or private, with its
//! messages' files, and CHANNEL_DELETE to those who could see it (the same path as the REST
//! delete).

use actix_web::web;
use actix_web::HttpResponse;

use super::Operator;
use crate::db::channels::{Channel, OverwriteRow};
use crate::events::{Change, ChannelScope};
use crate::http::channels::deleted;
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::{path, Id};
use crate::wire::guild as wire;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/channels/{channel_id}", web::delete().to(delete));
}

async fn delete(
    operator: Operator,
    channel_id: Id<path::Channel>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = channel_id.get();
    let mut conn = operator.state.pool.get().await?;
    let channel = Channel::find(&mut conn, channel_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Channel))?;
    let overwrites = OverwriteRow::of_channels(&mut conn, &[channel_id]).await?;
    let recipients = Channel::recipients(&mut conn, &[channel_id]).await?;
    let body = wire::channel(&channel, &overwrites);
    let scope = ChannelScope {
        guild_id: channel.guild_id,
        channel_id,
        recipients: recipients.into_iter().map(|(_, user)| user).collect(),
    };
    deleted(Change::new(&operator.state), &mut conn, scope, body.clone()).await?;
    operator.log("delete channel", channel_id);
    Ok(HttpResponse::Ok().json(body))
}
