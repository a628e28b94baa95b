//! The admin API at `/_spacebar/admin`, for the instance's operators: every route but `/ping`
//! and `/whoami` needs the OPERATOR right (403 otherwise, and nothing changes), and every
//! change an operator makes is written to the log (target `spacebar::admin`).
//!
//! One file per area, mirroring the URL: `users` and `user_rights`, `guilds`, `channels`,
//! `config`, `registration_tokens`, `bans`; `progress` streams long deletions.

mod bans;
mod channels;
mod config;
mod guilds;
pub(super) mod progress;
mod registration_tokens;
mod user_rights;
pub(super) mod users;
mod whoami;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web;
use actix_web::{FromRequest, HttpRequest};
use serde::Deserialize;

use crate::db::users::{Order, User};
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::rights;

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
            .configure(bans::configure),
    );
}

/// The caller, an operator; any other caller is refused with 401 or 403 before the route runs.
pub struct Operator(pub User);

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let Authenticated(session) = authenticated.await?;
            ApiError::require(session.user.rights, rights::OPERATOR)?;
            Ok(Operator(session.user))
        })
    }
}

impl Operator {
    /// Writes what the operator did to the log.
    pub fn log(&self, action: &str, target: impl std::fmt::Display) {
        tracing::info!(
            target: "spacebar::admin",
            operator_id = self.0.id,
            operator = %self.0.username,
            action,
            %target,
            "operator action"
        );
    }
}

/// `?limit=&after=&before=&order=asc|desc`: a page of rows by id (100 by default, 1 to 1,000).
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
    before: Option<String>,
    order: Option<String>,
}

impl PageQuery {
    /// (after, before, limit, order), checked.
    fn parse(&self) -> Result<(Option<i64>, Option<i64>, i64, Order), ApiError> {
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
        Ok((
            id("after", &self.after)?,
            id("before", &self.before)?,
            limit,
            order,
        ))
    }
}
