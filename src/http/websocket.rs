//! What the WebSocket endpoints beside the gateway (`/voice`, `/rooms/ws`) do alike: a `GET`
//! route whose upgrade starts one actor per socket, bounded to the endpoint's largest frame.

use std::collections::HashMap;
use std::future::Future;

use actix::{Actor, StreamHandler};
use actix_web::web::{self, Data, Payload, Query};
use actix_web::HttpRequest;
use actix_web_actors::ws;

use crate::state::AppState;

/// Serves WebSocket upgrades at `path`: `open` makes each socket's actor from the query string
/// and the state, with the largest frame it takes.
pub fn route<A, F, Fut>(cfg: &mut web::ServiceConfig, path: &str, open: F)
where
    A: Actor<Context = ws::WebsocketContext<A>>
        + StreamHandler<Result<ws::Message, ws::ProtocolError>>,
    F: Fn(HashMap<String, String>, Data<AppState>) -> Fut + Clone + 'static,
    Fut: Future<Output = (A, usize)> + 'static,
{
    let upgrade = move |req: HttpRequest,
                        stream: Payload,
                        query: Query<HashMap<String, String>>,
                        state: Data<AppState>| {
        let socket = open(query.into_inner(), state);
        async move {
            let (actor, max_frame_bytes) = socket.await;
            ws::WsResponseBuilder::new(actor, &req, stream)
                .frame_size(max_frame_bytes)
                .start()
        }
    };
    cfg.service(web::resource(path).route(web::get().to(upgrade)));
}
