//! `DELETE /_spacebar/admin/channels/{channel_id}`: any channel, guild or private, with
//! CHANNEL_DELETE to those who could see it.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use spacebar_actors::guild::{Audience, StateChange};
use spacebar_actors::EventName;

use super::Operator;
use crate::db::channels::{Channel, OverwriteRow};
use crate::http::error::{ApiError, Unknown};
use crate::http::snowflake;
use crate::server::AppState;
use crate::wire::guild as wire;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/channels/{channel_id}", web::delete().to(delete));
}

async fn delete(
    state: Data<AppState>,
    operator: Operator,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path)?;
    let mut conn = state.pool.get().await?;
    let channel = Channel::find(&mut conn, channel_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Channel))?;
    let overwrites = OverwriteRow::of_channels(&mut conn, &[channel_id]).await?;
    let recipients = Channel::recipients(&mut conn, &[channel_id]).await?;
    Channel::delete(&mut conn, channel_id).await?;
    let body = wire::channel(&channel, &overwrites);
    match channel.guild_id {
        Some(guild_id) => {
            state.guild_event(
                guild_id,
                EventName::ChannelDelete,
                &body,
                Audience::Channel(channel_id),
                Vec::new(),
            )?;
            state.guild_changed(guild_id, vec![StateChange::ChannelRemoved { channel_id }]);
        }
        None => {
            for (_, recipient) in recipients {
                state.user_event(recipient, EventName::ChannelDelete, &body)?;
            }
        }
    }
    operator.log("delete channel", channel_id);
    Ok(HttpResponse::Ok().json(body))
}
