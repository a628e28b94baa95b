//! `/policies/instance`, `/domains`, `/limits`, `/config`: the instance's public policies, in
//! the camelCase shapes Spacebar clients (Fermi, chorus) read.

use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::http::rate_limits;
use crate::http::urls::PublicUrls;
use crate::http::DEFAULT_API_VERSION;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/policies/instance", web::get().to(general))
        .route("/policies/instance/domains", web::get().to(domains))
        .route("/policies/instance/limits", web::get().to(limits))
        .route("/policies/instance/config", web::get().to(flattened));
}

/// Spacebar's general configuration, field by field (chorus's `GeneralConfiguration` reads
/// it): `instanceId` a snowflake, and what is not configured `null`, not an empty string.
async fn general(state: Data<AppState>) -> HttpResponse {
    let instance = &state.config().instance;
    let set = |text: &str| (!text.is_empty()).then(|| text.to_string());
    HttpResponse::Ok().json(json!({
        "instanceId": state.tokens.instance_id(),
        "instanceName": instance.name,
        "serverName": null,
        "instanceDescription": set(&instance.description),
        "frontPage": set(&instance.front_page),
        "tosPage": set(&instance.tos_page),
        "correspondenceEmail": set(&instance.correspondence_email),
        "correspondenceUserID": set(&instance.correspondence_user_id),
        "image": set(&instance.image),
        "autoCreateBotUsers": false,
    }))
}

/// chorus needs all of `cdn`, `gateway`, `apiEndpoint`, `defaultApiVersion`.
async fn domains(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let urls = PublicUrls::of(&req, &state.config());
    HttpResponse::Ok().json(json!({
        "api": urls.api(),
        "apiEndpoint": urls.api_endpoint(),
        "cdn": urls.base,
        "gateway": urls.gateway,
        "defaultApiVersion": DEFAULT_API_VERSION.to_string(),
        "admin": urls.base,
    }))
}

async fn limits(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(limits_object(&state))
}

/// The public configuration flattened to `section_key_subkey` names (`limits_user_maxGuilds`,
/// `register_dateOfBirth_required`, …), as Fermi reads it.
async fn flattened(state: Data<AppState>) -> HttpResponse {
    let register = &state.config().register;
    let public = json!({
        "limits": limits_object(&state),
        "register": {
            "allowNewRegistration": register.allow_new_registration,
            "requireInvite": register.require_invite,
            "requireCaptcha": false,
            "email": { "required": register.email_required },
            "password": { "required": register.password_required, "minLength": register.password_min_length },
            "dateOfBirth": { "required": register.date_of_birth_required, "minimum": register.date_of_birth_minimum_age },
        },
    });
    let mut flat = Map::new();
    flatten("", &public, &mut flat);
    HttpResponse::Ok().json(flat)
}

/// Spacebar's limits configuration (chorus's `LimitsConfiguration`): what a client may send,
/// and the rate limits it must keep to (`rate`). This server has no instance-wide limits
/// (`absoluteRate`).
fn limits_object(state: &AppState) -> Value {
    let config = state.config();
    let l = &config.limits;
    let no_limit = json!({ "limit": 0, "window": 0, "enabled": false });
    json!({
        "user": {
            "maxGuilds": l.user_max_guilds,
            "maxUsername": l.user_max_username,
            "maxFriends": l.user_max_friends,
            "maxBio": l.user_max_bio,
        },
        "guild": {
            "maxRoles": l.guild_max_roles,
            "maxEmojis": l.guild_max_emojis,
            "maxMembers": l.guild_max_members,
            "maxChannels": l.guild_max_channels,
            "maxChannelsInCategory": l.guild_max_channels_in_category,
        },
        "message": {
            "maxCharacters": l.message_max_characters,
            "maxTTSCharacters": l.message_max_tts_characters,
            "maxReactions": l.message_max_reactions,
            "maxAttachmentSize": l.message_max_attachment_size,
            "maxBulkDelete": l.message_max_bulk_delete,
            "maxEmbedDownloadSize": l.message_max_embed_download_size,
        },
        "channel": {
            "maxPins": l.channel_max_pins,
            "maxTopic": l.channel_max_topic,
            "maxWebhooks": l.channel_max_webhooks,
        },
        "rate": rate_limits::policy(&config.rate_limits),
        "absoluteRate": { "register": no_limit, "sendMessage": no_limit },
    })
}

fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}_{key}")
                };
                flatten(&name, child, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}
