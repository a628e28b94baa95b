//! IDENTIFY → READY: authenticates the token and builds READY and READY_SUPPLEMENTAL for the
//! account, in a constant number of queries.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use spacebar_actors::session::{Identified, IdentifyError, IdentifyRequest, SessionBackend};
use spacebar_actors::Dispatch;

use crate::credentials::authenticate;
use crate::db::users::User;
use crate::server::AppState;
use crate::wire::settings;
use crate::wire::user::PrivateUser;

/// The version of the client API this server's READY follows, as Discord reports it.
const API_CODE_VERSION: u32 = 1;

impl SessionBackend for AppState {
    fn identify(
        &self,
        request: IdentifyRequest,
    ) -> BoxFuture<'static, Result<Identified, IdentifyError>> {
        let pool = self.pool.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let internal =
                |error: &dyn std::fmt::Display| IdentifyError::Internal(error.to_string());
            let mut conn = pool.get().await.map_err(|e| internal(&e))?;
            let session = authenticate(&mut conn, &tokens, &request.token)
                .await
                .map_err(|e| internal(&e))?
                .ok_or(IdentifyError::AuthenticationFailed)?;
            let supplemental = json!({
                "guilds": [],
                "merged_members": [],
                "merged_presences": { "guilds": [], "friends": [] },
                "lazy_private_channels": [],
                "disclose": [],
            });
            Ok(Identified {
                user_id: session.user.id,
                ready: ready(&session.user, session.session_id, &request),
                followups: vec![
                    Dispatch::new("READY_SUPPLEMENTAL", &supplemental).map_err(|e| internal(&e))?
                ],
            })
        })
    }
}

fn ready(user: &User, auth_session_id: i64, request: &IdentifyRequest) -> Value {
    let user_settings = settings::merged(&user.settings);
    let status = request
        .presence
        .as_ref()
        .and_then(|presence| presence.get("status").cloned())
        .unwrap_or_else(|| user_settings["status"].clone());
    let property = |name: &str| request.properties.get(name).cloned().unwrap_or(Value::Null);
    let mut ready = json!({
        "v": request.api_version,
        "user": PrivateUser::from(user),
        "user_settings": user_settings,
        "user_settings_proto": null,
        "relationships": [],
        "private_channels": [],
        "guilds": [],
        "guild_join_requests": [],
        "merged_members": [],
        "users": [],
        "presences": [],
        "session_id": request.session_id,
        "session_type": "normal",
        "resume_gateway_url": request.gateway_url,
        "read_state": { "entries": [], "partial": false, "version": 0 },
        "user_guild_settings": { "entries": [], "partial": false, "version": 0 },
        "sessions": [{
            "session_id": request.session_id,
            "status": status,
            "activities": [],
            "client_info": { "client": property("browser"), "os": property("os"), "version": 0 },
        }],
        "country_code": "US",
        "analytics_token": "",
        "auth_session_id_hash": auth_session_hash(auth_session_id),
        "friend_suggestion_count": 0,
        "api_code_version": API_CODE_VERSION,
        "experiments": [],
        "guild_experiments": [],
        "connected_accounts": [],
        "consents": { "personalization": { "consented": false } },
        "geo_ordered_rtc_regions": [],
        "tutorial": null,
    });
    if user.bot {
        // discord.js reads the application from READY; a bot's application shares its id.
        ready["application"] = json!({ "id": user.id.to_string(), "flags": 0 });
    }
    ready
}

/// An opaque, stable name for the login session (clients compare it, never decode it).
fn auth_session_hash(auth_session_id: i64) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    auth_session_id.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
