//! `/users/@me/relationships`: friends, friend requests and blocks, stored from both sides
//! (1 friend, 2 blocked, 3 incoming request, 4 outgoing request).
//!
//! - `GET` lists the caller's relationships `[{id, type, nickname, user, since}]`.
//! - `PUT /{user_id}` `{type?}`: no type or 1 sends a friend request, or accepts the incoming
//!   one (both become friends); 2 blocks, ending any friendship or request (the other side's
//!   row goes, unless they block the caller too).
//! - `POST` `{username, discriminator}`: a friend request by tag (80004 when nobody has it).
//! - `DELETE /{user_id}`: unfriend, cancel, decline or unblock.
//!
//! Each affected user hears RELATIONSHIP_ADD `{id, type, nickname, user, since}` or
//! RELATIONSHIP_REMOVE `{id, type, nickname}` on every session. Bots have no relationships
//! (20001), nobody has one with themselves (80003), and someone who blocked the caller refuses
//! their requests (80000, as Discord words it, without saying why).

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::relationships::{kind, Relationship};
use crate::db::users::User;
use crate::db::Connection;
use crate::events::{Change, Event, ToUser};
use crate::http::applications::human_only;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::{self, Json};
use crate::http::snowflake;
use crate::state::AppState;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

#[derive(Debug, Default, Deserialize)]
pub struct PutBody {
    #[serde(
        default,
        rename = "type",
        deserialize_with = "crate::http::ids::optional"
    )]
    kind: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ByTag {
    username: String,
    /// A number or a string; absent or null for names without a tag.
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    discriminator: Option<i64>,
}

/// A relationship as its owner sees it.
pub fn relationship(row: &Relationship, other: &User) -> Value {
    json!({
        "id": id(row.other_id),
        "type": row.kind,
        "nickname": row.nickname,
        "user": PublicUser::from(other),
        "since": row.since,
    })
}

pub async fn list(
    Authenticated { state, session }: Authenticated,
) -> Result<HttpResponse, ApiError> {
    human_only(&session.user)?;
    let mut conn = state.pool.get().await?;
    let rows = Relationship::of_user(&mut conn, session.user.id).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.other_id).collect();
    let users = User::find_many(&mut conn, &ids).await?;
    let list: Vec<Value> = rows
        .iter()
        .filter_map(|row| {
            let other = users.iter().find(|u| u.id == row.other_id)?;
            Some(relationship(row, other))
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /users/{user_id}/relationships`: the friends the caller and that user share, as
/// public users (Discord's mutual friends).
pub async fn mutual(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    human_only(&session.user)?;
    let other = super::user::find(&state, &path).await?;
    let mut conn = state.pool.get().await?;
    let friends: Vec<i64> = Relationship::of_user(&mut conn, session.user.id)
        .await?
        .into_iter()
        .filter(|row| row.kind == kind::FRIEND)
        .map(|row| row.other_id)
        .collect();
    let shared = Relationship::friends_among(&mut conn, other.id, &friends).await?;
    let users = User::find_many(&mut conn, &shared).await?;
    let users: Vec<PublicUser> = users.iter().map(PublicUser::from).collect();
    Ok(HttpResponse::Ok().json(users))
}

pub async fn put(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let me = &session.user;
    human_only(me)?;
    let other_id = snowflake("user_id", &path)?;
    // Clients send `{}`, `{"type": 1}` or no body at all.
    let body: PutBody = if body.iter().all(u8::is_ascii_whitespace) {
        PutBody::default()
    } else {
        json::parse(&body)?
    };
    let mut conn = state.pool.get().await?;
    let other = User::find(&mut conn, other_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::User))?;
    match body.kind {
        None | Some(1) => {
            Between::load(&state, &mut conn, me, &other)
                .await?
                .befriend(&mut conn)
                .await?
        }
        Some(2) => {
            Between::load(&state, &mut conn, me, &other)
                .await?
                .block(&mut conn)
                .await?
        }
        Some(_) => {
            return Err(FormErrors::field(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of (1, 2).",
            )
            .into())
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn post(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<ByTag>,
) -> Result<HttpResponse, ApiError> {
    let me = &session.user;
    human_only(me)?;
    let discriminator = body
        .discriminator
        .filter(|d| *d != 0)
        .map(|d| format!("{d:04}"));
    let mut conn = state.pool.get().await?;
    let mut candidates =
        Relationship::tag_candidates(&mut conn, body.username.trim(), discriminator.as_deref())
            .await?;
    // Without a discriminator the name alone must say who is meant.
    let other = match candidates.len() {
        1 => candidates.swap_remove(0),
        _ => {
            return Err(ApiError::Plain {
                status: StatusCode::BAD_REQUEST,
                code: 80004,
                message: "No users with DiscordTag exist.",
            })
        }
    };
    Between::load(&state, &mut conn, me, &other)
        .await?
        .befriend(&mut conn)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let me = &session.user;
    human_only(me)?;
    let other_id = snowflake("user_id", &path)?;
    let mut conn = state.pool.get().await?;
    let (mine, theirs) = Relationship::pair(&mut conn, me.id, other_id).await?;
    let Some(mine) = mine else {
        // Nothing to end: the outcome the caller wanted already holds.
        return Ok(HttpResponse::NoContent().finish());
    };
    // Unblocking is one-sided; ending a friendship or a request ends both sides (but never
    // the other's block).
    let theirs = theirs.filter(|t| mine.kind != kind::BLOCKED && t.kind != kind::BLOCKED);
    let mut change = Change::new(&state);
    change.emit(removed(&mine));
    if let Some(theirs) = &theirs {
        change.emit(removed(theirs));
    }
    change
        .commit(&mut conn, async |conn| {
            Relationship::delete(conn, me.id, other_id).await?;
            if theirs.is_some() {
                Relationship::delete(conn, other_id, me.id).await?;
            }
            Ok(())
        })
        .await?;
    if mine.kind == kind::FRIEND {
        state.friendship(me.id, other_id, false);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Two users and each one's side of what is between them, about to change.
struct Between<'a> {
    state: &'a AppState,
    me: &'a User,
    other: &'a User,
    mine: Option<Relationship>,
    theirs: Option<Relationship>,
}

impl<'a> Between<'a> {
    /// 80003 if they are the same user.
    async fn load(
        state: &'a AppState,
        conn: &mut Connection,
        me: &'a User,
        other: &'a User,
    ) -> Result<Self, ApiError> {
        if me.id == other.id {
            return Err(ApiError::Plain {
                status: StatusCode::BAD_REQUEST,
                code: 80003,
                message: "Cannot send friend request to self.",
            });
        }
        let (mine, theirs) = Relationship::pair(conn, me.id, other.id).await?;
        Ok(Self {
            state,
            me,
            other,
            mine,
            theirs,
        })
    }

    /// Sends a friend request from `me` to `other`, or accepts theirs. Repeating a request or
    /// befriending a friend changes nothing.
    async fn befriend(self, conn: &mut Connection) -> Result<(), ApiError> {
        if self.other.bot {
            return Err(ApiError::Plain {
                status: StatusCode::BAD_REQUEST,
                code: 80002,
                message: "Bots cannot have friends.",
            });
        }
        if self
            .theirs
            .as_ref()
            .is_some_and(|t| t.kind == kind::BLOCKED)
        {
            return Err(ApiError::Plain {
                status: StatusCode::BAD_REQUEST,
                code: 80000,
                message: "Incoming friend requests disabled.",
            });
        }
        let (my_kind, their_kind) = match self.mine.map(|m| m.kind) {
            Some(kind::FRIEND | kind::OUTGOING) => return Ok(()),
            Some(kind::INCOMING) => (kind::FRIEND, kind::FRIEND),
            // A new request; one to someone the caller blocked replaces the block.
            _ => {
                let max =
                    i64::try_from(self.state.config().limits.user_max_friends).unwrap_or(i64::MAX);
                if Relationship::count_social(conn, self.me.id).await? >= max {
                    return Err(ApiError::Plain {
                        status: StatusCode::BAD_REQUEST,
                        code: 30002,
                        message: "Maximum number of friends reached",
                    });
                }
                (kind::OUTGOING, kind::INCOMING)
            }
        };
        let mine = Relationship::new(self.me.id, self.other.id, my_kind);
        let theirs = Relationship::new(self.other.id, self.me.id, their_kind);
        let mut incoming = relationship(&theirs, self.me);
        incoming["should_notify"] = (their_kind == kind::INCOMING).into();
        let mut change = Change::new(self.state);
        change.emit(added(&mine, self.other));
        change.emit(Event::RelationshipAdd(ToUser {
            user_id: self.other.id,
            data: incoming,
        }));
        change
            .commit(conn, async |conn| {
                mine.upsert(conn).await?;
                Ok(theirs.upsert(conn).await?)
            })
            .await?;
        if my_kind == kind::FRIEND {
            self.state.friendship(self.me.id, self.other.id, true);
        }
        Ok(())
    }

    /// `me` blocks `other`: any friendship or request between them ends.
    async fn block(self, conn: &mut Connection) -> Result<(), ApiError> {
        if self.mine.as_ref().is_some_and(|m| m.kind == kind::BLOCKED) {
            return Ok(());
        }
        let were_friends = self.mine.is_some_and(|m| m.kind == kind::FRIEND);
        let blocked = Relationship::new(self.me.id, self.other.id, kind::BLOCKED);
        let theirs = self.theirs.filter(|t| t.kind != kind::BLOCKED);
        let mut change = Change::new(self.state);
        change.emit(added(&blocked, self.other));
        if let Some(theirs) = &theirs {
            change.emit(removed(theirs));
        }
        change
            .commit(conn, async |conn| {
                blocked.upsert(conn).await?;
                if theirs.is_some() {
                    Relationship::delete(conn, self.other.id, self.me.id).await?;
                }
                Ok(())
            })
            .await?;
        if were_friends {
            self.state.friendship(self.me.id, self.other.id, false);
        }
        Ok(())
    }
}

/// RELATIONSHIP_ADD to the owner of a side that is new or changed.
fn added(row: &Relationship, other: &User) -> Event {
    Event::RelationshipAdd(ToUser {
        user_id: row.user_id,
        data: relationship(row, other),
    })
}

/// RELATIONSHIP_REMOVE to the owner of a side that is gone.
pub fn removed(row: &Relationship) -> Event {
    Event::RelationshipRemove(ToUser {
        user_id: row.user_id,
        data: json!({ "id": id(row.other_id), "type": row.kind, "nickname": row.nickname }),
    })
}
