//! `GET /_spacebar/admin/nodes`: the live nodes of the instance (a single process: itself).

use actix_web::web::{self, Data};
use actix_web::HttpResponse;

use super::Operator;
use crate::cluster::nodes::Load;
use crate::http::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/nodes", web::get().to(list));
}

async fn list(state: Data<AppState>, _: Operator) -> Result<HttpResponse, ApiError> {
    let nodes = match &state.cluster {
        Some(cluster) => cluster
            .nodes()
            .await
            .map_err(|error| ApiError::Unavailable {
                source: error.into(),
            })?,
        None => vec![state.node.entry(Load::of(&state.tree).await)],
    };
    Ok(HttpResponse::Ok().json(nodes))
}
