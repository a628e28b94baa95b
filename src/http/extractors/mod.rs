//! What nearly every route starts with, done once: who asks ([`InGuild`], [`InChannel`]
//! authenticate and load the caller's access on one pool connection) and which objects the path
//! names ([`Id`], parsed once with Discord's error). A handler is then its validation and its
//! write.

mod id;

pub use id::{path, Id, Segment};

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};

use super::access::{ChannelAccess, GuildAccess};
use super::error::ApiError;
use crate::credentials::{authenticate, Session};
use crate::db::{Pool, Pooled};
use crate::state::AppState;

/// The connection a request checked its caller on, kept for the handler when the request has
/// no body to wait for; otherwise given back (no connection is held while a client sends) and
/// taken again when the handler asks.
pub struct Conn {
    held: Option<Pooled>,
    pool: Pool,
}

impl Conn {
    /// The connection: the one kept, or a fresh one.
    pub async fn get(self) -> Result<Pooled, ApiError> {
        match self.held {
            Some(conn) => Ok(conn),
            None => Ok(self.pool.get().await?),
        }
    }
}

/// A member of the guild the path's `guild_id` names, with their access to it (10004 if they
/// are not one).
pub struct InGuild {
    pub session: Session,
    pub access: GuildAccess,
    pub conn: Conn,
}

/// Someone who can see the channel the path's `channel_id` names, with their access to it
/// (10003, or 50001 if they cannot see it).
pub struct InChannel {
    pub session: Session,
    pub access: ChannelAccess,
    pub conn: Conn,
}

impl FromRequest for InGuild {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = Caller::of(req);
        let guild_id = Id::<path::Guild>::of(req);
        Box::pin(async move {
            let (session, mut conn, held) = caller?.authenticate().await?;
            let access = GuildAccess::load(&mut conn, guild_id?.get(), session.user.id).await?;
            Ok(Self {
                session,
                access,
                conn: held.keep(conn),
            })
        })
    }
}

impl FromRequest for InChannel {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = Caller::of(req);
        let channel_id = Id::<path::Channel>::of(req);
        Box::pin(async move {
            let (session, mut conn, held) = caller?.authenticate().await?;
            let access = ChannelAccess::load(&mut conn, channel_id?.get(), session.user.id).await?;
            Ok(Self {
                session,
                access,
                conn: held.keep(conn),
            })
        })
    }
}

/// What authenticating a request needs from it, taken before its future runs.
struct Caller {
    state: Data<AppState>,
    token: String,
    has_body: bool,
}

/// Whether to keep the connection for the handler.
struct Keep {
    pool: Pool,
    keep: bool,
}

impl Keep {
    fn keep(self, conn: Pooled) -> Conn {
        Conn {
            held: self.keep.then_some(conn),
            pool: self.pool,
        }
    }
}

impl Caller {
    /// 401 without a token.
    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = req
            .app_data::<Data<AppState>>()
            .cloned()
            .ok_or(ApiError::Unauthorized)?;
        let token = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(ApiError::Unauthorized)?
            .to_owned();
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let has_body =
            declared.is_some_and(|len| len > 0) || req.headers().contains_key(TRANSFER_ENCODING);
        Ok(Self {
            state,
            token,
            has_body,
        })
    }

    /// The session the token names (401 if none), on a connection from the pool.
    async fn authenticate(self) -> Result<(Session, Pooled, Keep), ApiError> {
        let mut conn = self.state.pool.get().await?;
        let session = authenticate(&mut conn, &self.state.tokens, &self.token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // Into the request's span (`request_span`): what is logged from here names them.
        tracing::Span::current().record("user_id", session.user.id);
        let keep = Keep {
            pool: self.state.pool.clone(),
            keep: !self.has_body,
        };
        Ok((session, conn, keep))
    }
}
