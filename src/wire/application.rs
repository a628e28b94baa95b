//! Applications as clients see them: the developer portal, `GET /oauth2/applications/@me`
//! (discord.py reads `id, name, description, icon, bot_public, bot_require_code_grant, owner,
//! verify_key` at login) and the OAuth2 authorize screen.

use serde_json::{json, Value};

use crate::db::applications::Application;
use crate::db::users::User;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

/// The application object, with its owner and, once it has one, its bot user.
pub fn application(app: &Application, owner: &User, bot: Option<&User>) -> Value {
    json!({
        "id": id(app.id),
        "name": app.name,
        "icon": app.icon,
        "description": app.description,
        "summary": "",
        "type": null,
        "hook": true,
        "bot_public": app.bot_public,
        "bot_require_code_grant": app.bot_require_code_grant,
        "verify_key": app.verify_key,
        "flags": app.flags,
        "owner": PublicUser::from(owner),
        "team": null,
        "guild_id": null,
        "rpc_origins": [],
        "redirect_uris": [],
        "tags": [],
        "interactions_endpoint_url": null,
        "terms_of_service_url": null,
        "privacy_policy_url": null,
        "approximate_guild_count": 0,
        "bot": bot.map(PublicUser::from),
    })
}
