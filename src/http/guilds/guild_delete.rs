//! `DELETE /guilds/{guild_id}` (bots) and `POST /guilds/{guild_id}/delete` (clients): only the
//! owner; everything in the guild goes with it, files too (icons, emojis, stickers, role
//! icons, attachments). GUILD_DELETE to every member.

use actix_web::HttpResponse;

use crate::db::emojis::Emoji;
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::messages::Message;
use crate::db::roles::Role;
use crate::db::stickers::Sticker;
use crate::db::Connection;
use crate::events::{Change, Event};
use crate::http::channels::messages::files;
use crate::http::error::ApiError;
use crate::http::extractors::InGuild;
use crate::state::AppState;
use crate::storage::{ImageArea, Key};

pub async fn delete(caller: InGuild) -> Result<HttpResponse, ApiError> {
    if !caller.access.is_owner() {
        return Err(ApiError::MissingPermissions);
    }
    let mut conn = caller.conn.get().await?;
    delete_with_files(&caller.state, &mut conn, &caller.access.guild).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes a guild with everything in it and its files (icons, role icons, member avatars,
/// emojis, stickers, attachments), then tells its members. The operators' deletion uses it too.
pub async fn delete_with_files(
    state: &AppState,
    conn: &mut Connection,
    guild: &Guild,
) -> Result<(), ApiError> {
    let guild_id = guild.id;
    let mut keys = Vec::new();
    for (area, hash) in [
        (ImageArea::Icon, &guild.icon),
        (ImageArea::Banner, &guild.banner),
        (ImageArea::Splash, &guild.splash),
    ] {
        keys.extend(hash.as_deref().and_then(|h| Key::image(area, guild_id, h)));
    }
    for role in Role::of_guild(conn, guild_id).await? {
        keys.extend(
            role.icon
                .as_deref()
                .and_then(|h| Key::image(ImageArea::RoleIcon, role.id, h)),
        );
    }
    for (user_id, hash) in Member::avatars(conn, guild_id).await? {
        keys.extend(Key::member_avatar(guild_id, user_id, &hash));
    }
    let emojis = Emoji::of_guild(conn, guild_id).await?;
    keys.extend(emojis.iter().filter_map(|e| Key::emoji(e.id)));
    let stickers = Sticker::of_guild(conn, guild_id).await?;
    keys.extend(stickers.iter().filter_map(|s| Key::sticker(s.id)));
    keys.extend(files::keys(
        Message::attachments_in_guild(conn, guild_id).await?,
    ));
    let mut change = Change::new(state);
    change.remove_files(keys);
    change.emit(Event::GuildDelete { guild_id });
    // The cascade removes roles, channels, members, messages, invites and bans with it.
    change
        .commit(conn, async |conn| Ok(Guild::delete(conn, guild_id).await?))
        .await
}
