//! `DELETE /channels/{channel_id}`: deletes a guild channel (MANAGE_CHANNELS); for a group DM
//! the caller leaves it; a DM is closed for the caller only (it stays, with its history, and
//! opening it again finds the same channel). CHANNEL_DELETE to those who could see it.

use actix_web::HttpResponse;
use serde_json::Value;

use crate::audit::{action, changes, Audit};
use crate::db::channels::{kind, Channel};
use crate::db::messages::Message;
use crate::db::Connection;
use crate::events::{Change, ChannelChange, ChannelScope, Event};
use crate::http::error::ApiError;
use crate::http::extractors::InChannel;
use crate::permissions::bits;
use crate::wire::guild;

pub async fn delete(caller: InChannel<Audit>) -> Result<HttpResponse, ApiError> {
    let InChannel {
        session,
        access,
        conn,
        ..
    } = caller;
    let mut conn = conn.get().await?;
    let Some(guild_id) = access.channel.guild_id else {
        let body = super::body(&mut conn, &access, session.user.id).await?;
        if access.channel.kind == kind::GROUP_DM {
            super::recipients::remove(&caller.state, &mut conn, &access, session.user.id).await?;
        } else {
            let closed = ChannelChange {
                scope: ChannelScope {
                    recipients: vec![session.user.id],
                    ..access.scope()
                },
                overwrites: None,
                channel: body.clone(),
            };
            caller.state.publish(&Event::ChannelDelete(closed));
        }
        return Ok(HttpResponse::Ok().json(body));
    };
    access.require(bits::MANAGE_CHANNELS)?;
    let body = guild::channel(&access.channel, &access.overwrites);
    let change = Change::audited(
        &caller.state,
        caller
            .audit
            .entry(
                &caller.state,
                guild_id,
                session.user.id,
                action::CHANNEL_DELETE,
                Some(access.channel.id),
            )
            .changes(changes(
                Some(&body),
                None,
                crate::http::guilds::CHANNEL_NOISE,
            )),
    );
    let scope = access.scope();
    deleted(change, &mut conn, scope, body.clone()).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Deletes a channel with its messages and their files, and tells CHANNEL_DELETE (`body`) to
/// those who could see it: the one way a channel goes, for its managers and for operators.
pub async fn deleted(
    mut change: Change<'_>,
    conn: &mut Connection,
    scope: ChannelScope,
    body: Value,
) -> Result<(), ApiError> {
    let channel_id = scope.channel_id;
    let files = Message::attachments_in_channel(conn, channel_id).await?;
    change.remove_files(super::messages::files::keys(files));
    change.emit(Event::ChannelDelete(ChannelChange {
        scope,
        overwrites: None,
        channel: body,
    }));
    change
        .commit(conn, async |conn| {
            Ok(Channel::delete(conn, channel_id).await?)
        })
        .await
}
