//! `GET /guilds/{guild_id}`: the guild, for its members; `with_counts` adds member counts.

use actix_web::web::Query;
use actix_web::HttpResponse;
use serde::Deserialize;

use super::expressions;
use crate::db::emojis::Emoji;
use crate::db::members::Member;
use crate::db::stickers::Sticker;
use crate::http::error::ApiError;
use crate::http::extractors::InGuild;
use crate::wire::guild;

#[derive(Debug, Deserialize)]
pub struct GetGuild {
    with_counts: Option<bool>,
}

pub async fn get(caller: InGuild, query: Query<GetGuild>) -> Result<HttpResponse, ApiError> {
    let InGuild { access, conn, .. } = caller;
    let guild_id = access.guild.id;
    let mut conn = conn.get().await?;
    let mut body = guild::guild(&access.guild, &access.roles);
    body["emojis"] = expressions::rendered::<Emoji>(&mut conn, guild_id)
        .await?
        .into();
    body["stickers"] = expressions::rendered::<Sticker>(&mut conn, guild_id)
        .await?
        .into();
    if query.with_counts == Some(true) {
        let count = Member::counts(&mut conn, &[guild_id])
            .await?
            .first()
            .map_or(0, |(_, n)| *n);
        body["approximate_member_count"] = count.into();
        body["approximate_presence_count"] = 0.into();
    }
    Ok(HttpResponse::Ok().json(body))
}
