//! What the main gateway and the voice gateway do alike with their WebSockets.

use actix::{Actor, ActorContext};
use actix_web_actors::ws;

/// Closes the socket with `code` and `reason` (the client reads both) and stops its actor.
pub fn close<A>(ctx: &mut ws::WebsocketContext<A>, code: u16, reason: &str)
where
    A: Actor<Context = ws::WebsocketContext<A>>,
{
    ctx.close(Some(ws::CloseReason {
        code: ws::CloseCode::Other(code),
        description: Some(reason.to_string()),
    }));
    ctx.stop();
}
