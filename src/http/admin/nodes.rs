//! `GET /_spacebar/admin/nodes`: the live nodes of the instance (a single process: itself);
//! `POST /_spacebar/admin/nodes/{id}/drain`: that node stops taking gateway connections, has its
//! sessions resume on the others, and stops (as SIGTERM does).

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;

use super::Operator;
use crate::cluster::nodes::Usage;
use crate::http::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/nodes", web::get().to(list))
        .route("/nodes/{id}/drain", web::post().to(drain));
}

async fn list(state: Data<AppState>, _: Operator) -> Result<HttpResponse, ApiError> {
    let nodes = match &state.cluster {
        Some(cluster) => cluster.nodes().await.map_err(unavailable)?,
        None => vec![state.node.entry(Usage::of(&state).await)],
    };
    Ok(HttpResponse::Ok().json(nodes))
}

fn unavailable(error: redis::RedisError) -> ApiError {
    ApiError::Unavailable {
        source: error.into(),
    }
}

/// 202: the node is draining (this one at once; another once it hears it over its channel).
async fn drain(operator: Operator, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let state = &operator.state;
    let id = id.into_inner();
    if *id == *state.node.id {
        state.node.ask_to_drain();
    } else {
        let Some(cluster) = &state.cluster else {
            return Err(ApiError::NotFound);
        };
        let nodes = cluster.nodes().await.map_err(unavailable)?;
        if !nodes.iter().any(|node| node.id == id) {
            return Err(ApiError::NotFound);
        }
        cluster.drain(&id);
    }
    operator.log("drain node", &id);
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "id": id, "draining": true })))
}
