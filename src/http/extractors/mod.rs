//! What nearly every route starts with, done once: who asks ([`InGuild`], [`InChannel`]
//! authenticate and load the caller's access on one pool connection) and which objects the path
//! names ([`Id`], parsed once with Discord's error). A handler is then its validation and its
//! write.
//!
//! The caller carries the request's context too: the server state it was checked against (the
//! extractor fetches it anyway) and, for a route that writes the audit log, the request's reason
//! ([`Audit`], as `InGuild<Audit>`). The context travels in one value, so a handler takes one
//! parameter for it rather than three, and code that carries the caller on (a message's
//! `Target`, for one) carries the state with it.

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
use crate::audit::Audit;
use crate::credentials::{authenticate, Session};
use crate::db::{Connection, Pool, Pooled};
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
/// are not one). `InGuild<Audit>` also reads the audit log reason.
pub type InGuild<A = ()> = In<GuildAccess, A>;

/// Someone who can see the channel the path's `channel_id` names, with their access to it
/// (10003, or 50001 if they cannot see it). `InChannel<Audit>` also reads the audit log reason.
pub type InChannel<A = ()> = In<ChannelAccess, A>;

/// The caller and their access `P` to what the path names, checked on one pool connection.
/// It carries the state it was checked against and, as `A`, the request's audit reason
/// ([`Audit`], for routes that write the audit log; `()` elsewhere): the request's context in
/// one value, so a handler needs no separate `Data<AppState>` or `Audit` parameter.
pub struct In<P, A = ()> {
    pub state: Data<AppState>,
    pub session: Session,
    pub access: P,
    pub conn: Conn,
    pub audit: A,
}

/// What a caller can be checked against: the object one path segment names.
pub trait Place: Sized + Send + 'static {
    type Segment: Segment + 'static;

    /// `user_id`'s access to the object `id` (Discord's error when they have none).
    fn load(
        conn: &mut Connection,
        id: i64,
        user_id: i64,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send;
}

/// `Place` for an access type whose inherent `load` has the trait's signature.
macro_rules! places {
    ($($access:ty = $segment:ty,)*) => {
        $(
            impl Place for $access {
                type Segment = $segment;

                fn load(
                    conn: &mut Connection,
                    id: i64,
                    user_id: i64,
                ) -> impl Future<Output = Result<Self, ApiError>> + Send {
                    <$access>::load(conn, id, user_id)
                }
            }
        )*
    };
}

places! {
    GuildAccess = path::Guild,
    ChannelAccess = path::Channel,
}

/// What a route reads from its request beside its caller: nothing (`()`), or the audit log's
/// reason ([`Audit`]). Only routes that write the audit log read `X-Audit-Log-Reason`, so a bad
/// one is refused there and nowhere else.
pub trait Reason: Sized + 'static {
    fn read(req: &HttpRequest) -> Result<Self, ApiError>;
}

impl Reason for () {
    fn read(_: &HttpRequest) -> Result<Self, ApiError> {
        Ok(())
    }
}

impl Reason for Audit {
    fn read(req: &HttpRequest) -> Result<Self, ApiError> {
        Audit::of(req)
    }
}

impl<P: Place, A: Reason> FromRequest for In<P, A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = Caller::of(req);
        let audit = A::read(req);
        let place_id = Id::<P::Segment>::of(req);
        Box::pin(async move {
            let caller = caller?;
            // A bad reason is refused before the token is checked against the database.
            let audit = audit?;
            let place_id = place_id?.get();
            let state = caller.state.clone();
            let (session, access, conn) = state
                .request_threads
                .run(async move {
                    let (session, mut conn, held) = caller.authenticate().await?;
                    let access = P::load(&mut conn, place_id, session.user.id).await?;
                    Ok::<_, ApiError>((session, access, held.keep(conn)))
                })
                .await?;
            Ok(Self {
                state,
                session,
                access,
                conn,
                audit,
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
    async fn authenticate(&self) -> Result<(Session, Pooled, Keep), ApiError> {
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
