//! Webhooks as clients see them.

use serde_json::{json, Value};

use crate::db::users::User;
use crate::db::webhooks::{kind, Webhook};
use crate::wire::guild::{id, opt_id};
use crate::wire::user::PublicUser;

/// How much of a webhook the caller is shown.
pub enum Shown<'a> {
    /// To a member with MANAGE_WEBHOOKS: with its creator.
    Managed { creator: Option<&'a User> },
    /// To whoever holds its token: without the creator, as on Discord.
    ByToken,
    /// Named in the audit log, to those who may read it: neither the creator nor the token
    /// (reading the log is no licence to post as the webhook).
    Named,
}

/// Discord's webhook object; `api` is the API base its `url` is built on.
pub fn webhook(webhook: &Webhook, shown: Shown<'_>, api: &str) -> Value {
    let mut value = json!({
        "id": id(webhook.id),
        "type": webhook.kind,
        "guild_id": id(webhook.guild_id),
        "channel_id": id(webhook.channel_id),
        "name": webhook.name,
        "avatar": webhook.avatar,
        "application_id": opt_id(webhook.application_id),
    });
    if let Shown::Managed {
        creator: Some(creator),
    } = shown
    {
        value["user"] = json!(PublicUser::from(creator));
    }
    // Application webhooks are driven by their application; only incoming ones show a token.
    if webhook.kind == kind::INCOMING && !matches!(shown, Shown::Named) {
        value["token"] = webhook.token.clone().into();
        value["url"] = format!("{api}/webhooks/{}/{}", webhook.id, webhook.token).into();
    }
    value
}
