//! `GET /rooms/ws?token=…`: the rooms service's signalling socket (docs/rooms.md). One actor per
//! socket: it verifies the room token, bounds what the client sends (frame size, messages per
//! window, silence), parses each message once, answers `ping` itself, and passes `join` to the
//! registry and everything after it to the room, which answers and enforces the grants.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::web::{self, Data};
use actix_web_actors::ws;
use serde_json::json;
use spacebar_actors::outlet::{self, Outlet};
use spacebar_actors::rooms::signal::{self, Rate, MAX_FRAME_BYTES, MAX_QUEUED_MESSAGES};
use spacebar_actors::rooms::{
    Code, Join, Joining, Left, Request, RoomError, Rooms, Seat, Signal, ToClient,
};

use super::RoomClaims;
use crate::cluster::Cluster;
use crate::http::websocket;
use crate::state::AppState;

/// The issuer of guests' tokens: a guest may only join a room that exists.
pub const GUEST_ISSUER: &str = "guest";

pub fn configure(cfg: &mut web::ServiceConfig) {
    websocket::route(cfg, "/rooms/ws", open);
}

/// The socket of an upgrade. A bad token still gets the socket, to be told why (4001) and
/// closed: a browser sees nothing of a refused upgrade.
async fn open(query: HashMap<String, String>, state: Data<AppState>) -> (RoomSocket, usize) {
    let claims = query
        .get("token")
        .and_then(|token| state.room_tokens.verify(token))
        .filter(|claims| claims.grants.join);
    let misplaced = match (&state.cluster, &claims) {
        (Some(cluster), Some(claims)) => misplaced(cluster, &claims.room).await,
        _ => None,
    };
    let socket = RoomSocket {
        rooms: state.tree.rooms.clone(),
        claims,
        misplaced,
        seat: None,
        joining: false,
        rate: Rate::default(),
        last_heard: Instant::now(),
        idle_timeout: Duration::from_secs(state.config().rooms.idle_timeout_secs),
        queued: Arc::default(),
    };
    (socket, MAX_FRAME_BYTES)
}

/// Why a socket's room is not joined on this node (cluster mode).
enum Misplaced {
    /// Another node serves it: the socket there.
    OnNode(String),
    /// It could not be placed (Redis or every node away).
    Unplaced,
}

/// Places `room` (`crate::cluster::placement`): `None` when it is served here.
async fn misplaced(cluster: &Cluster, room: &str) -> Option<Misplaced> {
    match cluster.placement.place_rooms(room).await {
        Ok(node) if node.here => None,
        Ok(node) => Some(Misplaced::OnNode(node.socket)),
        Err(error) => {
            tracing::warn!(%error, room, "a rooms-service room was not placed");
            Some(Misplaced::Unplaced)
        }
    }
}

pub struct RoomSocket {
    rooms: Addr<Rooms>,
    /// `None`: the token did not verify.
    claims: Option<RoomClaims>,
    /// The room is not joined here: told once, then closed.
    misplaced: Option<Misplaced>,
    seat: Option<Seat>,
    /// `join` was sent to the registry and is not answered yet.
    joining: bool,
    /// Messages in the current rate window.
    rate: Rate,
    last_heard: Instant,
    /// A socket silent this long is closed (`rooms.idle_timeout_secs`).
    idle_timeout: Duration,
    /// Bytes of messages in this socket's mailbox (see [`Outlet`]).
    queued: Arc<AtomicUsize>,
}

/// How often silence is checked for (at most).
const IDLE_CHECK: Duration = Duration::from_secs(5);

impl RoomSocket {
    fn send(ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        ctx.text(text.to_string());
    }

    /// Sends `error` with `code`, then closes with it.
    fn close(ctx: &mut ws::WebsocketContext<Self>, code: Code, message: &str) {
        Self::send(ctx, &signal::error(code, message, None));
        spacebar_actors::websocket::close(ctx, code.number(), message);
    }

    /// What the room sends this socket through: it bounds what waits for a client not reading.
    fn outlet(&self, ctx: &ws::WebsocketContext<Self>) -> Outlet<ToClient> {
        let span = tracing::Span::current();
        Outlet::new(ctx.address().recipient(), self.queued.clone(), span)
    }

    /// Counts a message; false once the client sent more than the window allows.
    fn within_rate(&mut self) -> bool {
        self.last_heard = Instant::now();
        self.rate.admit()
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.within_rate() {
            return Self::close(ctx, Code::RateLimited, "too many messages");
        }
        let request: Request = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(error) => {
                let message = format!("bad message: {error}");
                return Self::send(ctx, &signal::error(Code::BadMessage, &message, None));
            }
        };
        match (request, &self.seat) {
            (Request::Ping { ts }, _) => {
                Self::send(ctx, &signal::message("pong", json!({ "ts": ts })));
            }
            (Request::Join { auto_subscribe }, None) if !self.joining => {
                self.join(auto_subscribe, ctx);
            }
            (request, None) => {
                let refusal = signal::error(Code::WrongState, "join first", Some(request.name()));
                Self::send(ctx, &refusal);
            }
            (Request::Leave {}, Some(_)) => {
                // `stopped` tells the room.
                ctx.close(Some(ws::CloseCode::Normal.into()));
                ctx.stop();
            }
            (request, Some(seat)) => seat.room.do_send(Signal {
                member: seat.member,
                request,
            }),
        }
    }

    fn join(&mut self, auto_subscribe: bool, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(claims) = &self.claims else {
            return;
        };
        self.joining = true;
        let join = Join {
            room: claims.room.clone(),
            may_create: claims.issuer != GUEST_ISSUER,
            participant: Joining {
                identity: claims.identity.clone(),
                name: claims.name.clone(),
                metadata: claims.metadata.clone(),
                grants: claims.grants.clone(),
            },
            client: self.outlet(ctx),
            auto_subscribe,
        };
        ctx.wait(
            self.rooms
                .send(join)
                .into_actor(self)
                .map(|joined, socket, ctx| {
                    socket.joining = false;
                    match joined {
                        Ok(Ok(seat)) => socket.seat = Some(seat),
                        Ok(Err(error)) => {
                            let code = match error {
                                RoomError::Full | RoomError::TooManyRooms => Code::RoomFull,
                                RoomError::NoRoom => Code::NoRoom,
                                _ => Code::RoomClosed,
                            };
                            Self::close(ctx, code, &error.to_string());
                        }
                        Err(_) => Self::close(ctx, Code::RoomClosed, "the rooms are gone"),
                    }
                }),
        );
    }
}

impl Actor for RoomSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.claims.is_none() {
            return Self::close(ctx, Code::Unauthorized, "the token is invalid or expired");
        }
        match self.misplaced.take() {
            Some(Misplaced::OnNode(url)) => {
                let message = "the room is on another node";
                let fields =
                    json!({ "code": Code::OtherNode.number(), "message": message, "url": url });
                Self::send(ctx, &signal::message("error", fields));
                return spacebar_actors::websocket::close(ctx, Code::OtherNode.number(), message);
            }
            Some(Misplaced::Unplaced) => {
                return Self::close(ctx, Code::RoomClosed, "the room could not be placed");
            }
            None => {}
        }
        // Past it, the room closes this socket (4013) rather than queue more.
        ctx.set_mailbox_capacity(MAX_QUEUED_MESSAGES);
        ctx.run_interval(IDLE_CHECK.min(self.idle_timeout), |socket, ctx| {
            if socket.last_heard.elapsed() >= socket.idle_timeout {
                let silence = format!("nothing heard for {} s", socket.idle_timeout.as_secs());
                Self::close(ctx, Code::RateLimited, &silence);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(seat) = self.seat.take() {
            seat.room.do_send(Left {
                member: seat.member,
            });
        }
    }
}

impl Handler<ToClient> for RoomSocket {
    type Result = ();

    fn handle(&mut self, message: ToClient, ctx: &mut Self::Context) {
        outlet::taken(&self.queued, &message);
        match message {
            ToClient::Text(text) => Self::send(ctx, &text),
            ToClient::Close(code, message) => {
                // The room already let go of this seat.
                self.seat = None;
                Self::close(ctx, code, &message);
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for RoomSocket {
    fn handle(&mut self, frame: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match frame {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(payload)) => {
                if self.within_rate() {
                    ctx.pong(&payload);
                } else {
                    Self::close(ctx, Code::RateLimited, "too many messages");
                }
            }
            Ok(ws::Message::Pong(_) | ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Binary(_) | ws::Message::Continuation(_)) => {
                if self.within_rate() {
                    let refusal =
                        signal::error(Code::BadMessage, "binary frames are not spoken", None);
                    Self::send(ctx, &refusal);
                } else {
                    Self::close(ctx, Code::RateLimited, "too many messages");
                }
            }
            Err(ws::ProtocolError::Overflow) => {
                Self::close(ctx, Code::TooLarge, "the frame is over 64 KiB")
            }
            Err(_) => Self::close(ctx, Code::BadMessage, "not a WebSocket frame"),
        }
    }
}
