//! REQUEST_GUILD_MEMBERS (op 8) answered from the database: one guild's members, by name prefix
//! or by user id, as GUILD_MEMBERS_CHUNK dispatches of up to 1,000 members each. Two queries:
//! the asker's membership, then the members asked for with their users; with `presences`, the
//! session registry says who of them is online.

use spacebar_actors::EventName;
use std::collections::HashSet;
use std::sync::Arc;

use actix::Addr;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use spacebar_actors::registry::{GetPresences, Presences};
use spacebar_actors::session::backend::{BackendError, MemberSelection, MembersRequest};
use spacebar_actors::Dispatch;
use spacebar_actors::SessionRegistry;

use crate::db::members::Member;
use crate::db::users::User;
use crate::db::Pool;
use crate::wire::guild::{self, id};

/// Most members in one GUILD_MEMBERS_CHUNK.
const CHUNK: usize = 1000;

/// The chunks answering `request` from `user_id`; none when they are not in the guild.
pub fn request_members(
    pool: Pool,
    registry: Addr<SessionRegistry>,
    user_id: i64,
    request: MembersRequest,
) -> BoxFuture<'static, Result<Vec<Arc<Dispatch>>, BackendError>> {
    Box::pin(async move {
        let mut conn = pool.get().await.map_err(BackendError::new)?;
        let guild_id = request.guild_id;
        if Member::find(&mut conn, guild_id, user_id)
            .await
            .map_err(BackendError::new)?
            .is_none()
        {
            return Ok(Vec::new());
        }
        let (members, not_found) = match &request.selection {
            MemberSelection::Query { prefix, limit } => {
                let limit = limit.map(i64::from);
                let members = Member::with_name_prefix(&mut conn, guild_id, prefix, limit).await;
                (members.map_err(BackendError::new)?, Vec::new())
            }
            MemberSelection::UserIds(user_ids) => {
                let members = Member::of_guild_by_ids(&mut conn, guild_id, user_ids)
                    .await
                    .map_err(BackendError::new)?;
                let not_found: Vec<String> = user_ids
                    .iter()
                    .filter(|asked| !members.iter().any(|(m, _)| m.user_id == **asked))
                    .map(|asked| id(*asked))
                    .collect();
                (members, not_found)
            }
        };
        let online = if request.presences && !members.is_empty() {
            let of = members.iter().map(|(m, _)| m.user_id).collect();
            registry
                .send(GetPresences { user_id: 0, of })
                .await
                .map_err(BackendError::new)?
        } else {
            Presences::default()
        };
        chunks(&request, &members, not_found, &online).map_err(BackendError::new)
    })
}

/// GUILD_MEMBERS_CHUNK dispatches for `members` (one, empty, when nothing matched). Each
/// carries `not_found`, the nonce if any, and, when asked for, the presences of its members who
/// are online.
fn chunks(
    request: &MembersRequest,
    members: &[(Member, User)],
    not_found: Vec<String>,
    online: &Presences,
) -> Result<Vec<Arc<Dispatch>>, serde_json::Error> {
    let pieces: Vec<&[(Member, User)]> = if members.is_empty() {
        vec![&[]]
    } else {
        members.chunks(CHUNK).collect()
    };
    let count = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(index, piece)| {
            let mut d = json!({
                "guild_id": id(request.guild_id),
                "members": piece.iter().map(|(m, u)| guild::member(m, Some(u))).collect::<Vec<_>>(),
                "chunk_index": index,
                "chunk_count": count,
                "not_found": not_found,
            });
            if request.presences {
                let here: HashSet<i64> = piece.iter().map(|(m, _)| m.user_id).collect();
                d["presences"] = online
                    .others
                    .iter()
                    .filter(|(user_id, _)| here.contains(user_id))
                    .map(|(user_id, presence)| presence.to_json(*user_id, Some(request.guild_id)))
                    .collect();
            }
            if let Some(nonce) = &request.nonce {
                d["nonce"] = Value::String(nonce.clone());
            }
            // Of the guild: a sharded session hears it on the guild's shard only, as Discord
            // answers only for the shard's guilds.
            Dispatch::json(EventName::GuildMembersChunk, &d)
                .map(|chunk| Arc::new(chunk.in_guild(request.guild_id)))
        })
        .collect()
}
