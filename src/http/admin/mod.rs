//! The admin API at `/_spacebar/admin`, for the instance's operators: every route but `/ping`
//! and `/whoami` needs the OPERATOR right (403 otherwise, and nothing changes), and every
//! change an operator makes is written to the log (target `spacebar::admin`).
//!
//! One file per area, mirroring the URL: `users` and `user_rights`, `guilds`, `channels`,
//! `config`, `registration_tokens`, `bans`, `nodes`, `room_keys` (`/rooms/keys`); `progress` streams long deletions.

mod bans;
mod channels;
mod config;
mod guilds;
mod nodes;
pub(super) mod progress;
mod registration_tokens;
mod room_keys;
mod user_rights;
pub(super) mod users;
mod whoami;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::{self, Data};
use actix_web::{FromRequest, HttpRequest};
use serde::Deserialize;

use crate::db::users::{Order, User};
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::rights;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_spacebar/admin")
            .route("/ping", web::get().to(whoami::ping))
            .route("/whoami", web::get().to(whoami::whoami))
            .configure(users::configure)
            .configure(user_rights::configure)
            .configure(guilds::configure)
            .configure(channels::configure)
            .configure(config::configure)
            .configure(registration_tokens::configure)
            .configure(room_keys::configure)
            .configure(bans::configure)
            .configure(nodes::configure),
    );
}

/// The caller, an operator; any other caller is refused with 401 or 403 before the route runs.
///
/// It carries the state it was checked against: the request's context in one value, so a
/// handler needs no separate `Data<AppState>` parameter.
pub struct Operator {
    pub state: Data<AppState>,
    pub user: User,
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let Authenticated { state, session } = authenticated.await?;
            ApiError::require(session.user.rights, rights::OPERATOR)?;
            Ok(Operator {
                state,
                user: session.user,
            })
        })
    }
}

impl Operator {
    /// Writes what the operator did to the log.
    pub fn log(&self, action: &str, target: impl std::fmt::Display) {
        tracing::info!(
            target: "spacebar::admin",
            operator_id = self.user.id,
            operator = %self.user.username,
            action,
            %target,
            "operator action"
        );
    }
}

/// An operator asking for a page of rows by id with `?limit=&after=&before=&order=asc|desc`
/// (100 by default, 1 to 1,000), checked before the route runs.
pub struct Page {
    after: Option<i64>,
    before: Option<i64>,
    limit: i64,
    order: Order,
}

impl FromRequest for Page {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let operator = Operator::from_request(req, payload);
        let query = web::Query::<PageQuery>::from_query(req.query_string());
        Box::pin(async move {
            operator.await?;
            Ok(query?.parse()?)
        })
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
    before: Option<String>,
    order: Option<String>,
}

impl PageQuery {
    fn parse(&self) -> Result<Page, ApiError> {
        let id = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|text| crate::http::snowflake(field, text))
                .transpose()
        };
        let limit = match self.limit.as_deref() {
            None => 100,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    FormErrors::field(
                        "limit",
                        "NUMBER_TYPE_MAX",
                        "Must be a number from 1 to 1000.",
                    )
                })?,
        };
        let order = match self.order.as_deref() {
            None | Some("asc") => Order::Ascending,
            Some("desc") => Order::Descending,
            Some(_) => {
                return Err(
                    FormErrors::field("order", "BASE_TYPE_CHOICES", "Must be asc or desc.").into(),
                )
            }
        };
        Ok(Page {
            after: id("after", &self.after)?,
            before: id("before", &self.before)?,
            limit,
            order,
        })
    }
}
