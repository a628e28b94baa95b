//! Rate limits on the REST API, Discord's way: each route has buckets keyed by its major
//! parameter (see [`routes`]), each caller a global bucket; callers are accounts (by their
//! token) or, without one and on the login routes, addresses. Every limited answer carries
//! `X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`; a refusal is a 429 with `Retry-After`,
//! `X-RateLimit-Global`, `X-RateLimit-Scope` and `{message, retry_after, global}`. Accounts with
//! the BYPASS_RATE_LIMITS right are not limited. The rules come from the `[rate_limits]`
//! configuration, read per request (operators may change them at run time). In a cluster the
//! buckets are every node's, kept in Redis ([`shared`]); this node's own stand in while Redis
//! does not answer.

pub mod buckets;
mod policy;
mod routes;
mod shared;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpResponse};
use serde_json::json;
use spacebar_actors::expiring::Expiring;
use spacebar_actors::sync::lock;

use crate::cluster::Cluster;
use crate::config::{RateLimitsConfig, RuleConfig};
use crate::db::users::User;
use crate::http::client_address::{client_address, limit_key};
use crate::rights;
use crate::state::AppState;
use buckets::{Buckets, Rule, Taken, Verdict};
pub use policy::policy;
use routes::Class;
use shared::Shared;

/// How long an account's rights are trusted before they are read again.
const RIGHTS_TTL: Duration = Duration::from_secs(30);
/// Accounts whose rights are kept at once.
const RIGHTS_KEPT: usize = 65_536;
/// Buckets are swept of ended windows every this many requests.
const SWEEP_EVERY: u64 = 4096;

/// Who a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Account(i64),
    /// Its [`limit_key`]: an IPv6 /64 is one caller.
    Address(IpAddr),
}

impl std::fmt::Display for Caller {
    /// The caller's part of a shared bucket's name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(id) => write!(f, "a{id}"),
            Self::Address(ip) => write!(f, "ip{ip}"),
        }
    }
}

/// The buckets of every caller: this node's, and in a cluster every node's in Redis (this
/// node's then stand in while Redis does not answer).
pub struct RateLimiter {
    /// By caller and route; a caller's global bucket has no route.
    buckets: Mutex<Buckets<(Caller, Option<String>)>>,
    shared: Shared,
    /// Accounts' rights, for BYPASS_RATE_LIMITS without a query per request.
    rights: Expiring<i64, i64>,
    requests: AtomicU64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            buckets: Mutex::default(),
            shared: Shared::default(),
            rights: Expiring::new(RIGHTS_TTL, RIGHTS_KEPT),
            requests: AtomicU64::default(),
        }
    }
}

impl RateLimiter {
    /// Counts a request against the caller's global bucket (unless `global` is `None`), then
    /// the route's (`bucket` is its name for clients): shared by every node when `cluster` is
    /// given and Redis answers, this node's otherwise.
    async fn take(
        &self,
        cluster: Option<&Cluster>,
        caller: Caller,
        (route, bucket): (String, &str),
        rule: Rule,
        global: Option<Rule>,
        longest: Duration,
    ) -> Taken {
        if let Some(cluster) = cluster {
            // Named by the route's hash, not the route: webhook tokens stay out of Redis.
            let overall = caller.to_string();
            let route = format!("{caller}:{bucket}");
            let shared = self.shared.take(
                &cluster.redis,
                global.map(|rule| (overall.as_str(), rule)),
                (route.as_str(), rule),
            );
            if let Some(taken) = shared.await {
                return taken;
            }
        }
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if self
            .requests
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            buckets.sweep(now, longest);
        }
        buckets.take_in_turn(
            global.map(|rule| ((caller, None), rule)),
            ((caller, Some(route)), rule),
            now,
        )
    }

    /// Whether the account may skip the limits (its rights read at most every 30 s).
    async fn bypasses(&self, state: &AppState, user_id: i64) -> bool {
        let rights = match self.rights.get(&user_id) {
            Some(rights) => rights,
            None => {
                let Ok(mut conn) = state.pool.get().await else {
                    return false;
                };
                let rights = User::rights_of(&mut conn, user_id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                self.rights.insert(user_id, rights);
                rights
            }
        };
        rights::has(rights, rights::BYPASS_RATE_LIMITS)
    }
}

pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let config = state.config();
    if !config.rate_limits.enabled || !routes::limited(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let (route, class) = routes::route(req.method().as_str(), req.path());
    let account = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|token| state.tokens.verify(bare(token)))
        .map(|claims| claims.user_id);
    let address = client_address(&req, &config).map(limit_key);
    let caller = match (class, account, address) {
        (Class::Auth | Class::RoomGuests, _, Some(ip)) | (_, None, Some(ip)) => Caller::Address(ip),
        (_, Some(user_id), _) => Caller::Account(user_id),
        (_, None, None) => return Ok(next.call(req).await?.map_into_left_body()),
    };
    if let Caller::Account(user_id) = caller {
        if state.rate_limiter.bypasses(&state, user_id).await {
            return Ok(next.call(req).await?.map_into_left_body());
        }
    }
    let limits = &config.rate_limits;
    let rule = rule(match class {
        Class::Default => &limits.routes,
        Class::MessageCreate => &limits.message_create,
        Class::WebhookExecute => &limits.webhook_execute,
        Class::Search => &limits.search,
        Class::Auth => &limits.auth,
        Class::Discovery => &limits.discovery,
        Class::RoomGuests => &limits.room_guests,
    });
    let global = (class != Class::Discovery).then(|| self::rule(&limits.global));
    let bucket = bucket_id(&route);
    let taken = state.rate_limiter.take(
        state.cluster.as_ref(),
        caller,
        (route, &bucket),
        rule,
        global,
        longest(limits),
    );
    match taken.await {
        Err((verdict, global)) => {
            let mut refusal = too_many(&verdict, &bucket, global);
            if !global {
                describe(refusal.headers_mut(), &verdict, &bucket);
            }
            Ok(req.into_response(refusal).map_into_right_body())
        }
        Ok(verdict) => {
            let mut response = next.call(req).await?;
            describe(response.headers_mut(), &verdict, &bucket);
            Ok(response.map_into_left_body())
        }
    }
}

/// The token without its `Bot `/`Bearer ` prefix.
fn bare(token: &str) -> &str {
    let token = token.trim();
    token
        .strip_prefix("Bot ")
        .or_else(|| token.strip_prefix("Bearer "))
        .unwrap_or(token)
}

fn rule(config: &RuleConfig) -> Rule {
    Rule {
        limit: config.limit,
        window: Duration::from_millis(config.window_ms),
    }
}

/// The longest window of any rule: buckets older than that are done.
fn longest(limits: &RateLimitsConfig) -> Duration {
    [
        &limits.global,
        &limits.routes,
        &limits.message_create,
        &limits.webhook_execute,
        &limits.search,
        &limits.auth,
        &limits.discovery,
        &limits.room_guests,
    ]
    .iter()
    .map(|rule| Duration::from_millis(rule.window_ms))
    .max()
    .unwrap_or_default()
}

/// A bucket's name for clients: a hash of the route (the same for every caller).
fn bucket_id(route: &str) -> String {
    let hash = route.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The `X-RateLimit-*` headers of a bucket after this request.
fn describe(headers: &mut HeaderMap, verdict: &Verdict, bucket: &str) {
    let reset_at = SystemTime::now() + verdict.reset_after;
    let reset = reset_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-ratelimit-limit", verdict.limit.to_string());
    set("x-ratelimit-remaining", verdict.remaining.to_string());
    set("x-ratelimit-reset", format!("{reset:.3}"));
    set(
        "x-ratelimit-reset-after",
        format!("{:.3}", verdict.reset_after.as_secs_f64()),
    );
    set("x-ratelimit-bucket", bucket.to_string());
}

/// Discord's 429.
fn too_many(verdict: &Verdict, bucket: &str, global: bool) -> HttpResponse {
    let retry_after = verdict.reset_after.as_secs_f64();
    let mut response = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS);
    response
        .insert_header(("Retry-After", retry_after.ceil().max(1.0).to_string()))
        .insert_header(("X-RateLimit-Scope", if global { "global" } else { "user" }));
    if global {
        response.insert_header(("X-RateLimit-Global", "true"));
    } else {
        response.insert_header(("X-RateLimit-Bucket", bucket));
    }
    response.json(json!({
        "message": "You are being rate limited.",
        "retry_after": (retry_after * 1000.0).ceil() / 1000.0,
        "global": global,
        "code": 0,
    }))
}
