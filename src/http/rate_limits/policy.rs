//! The rate limits as Spacebar's instance policy describes them (`rate` in
//! `/policies/instance/limits`): clients such as chorus read it to pace their requests so they
//! never meet a 429. Spacebar's buckets are coarser than ours, so each is given the rule a
//! client must keep to stay within ours: a channel's requests the message-sending rule (the
//! strictest per channel), a guild's the per-route rule, a webhook's the webhook rule, and
//! `ip`, `global` and `error` the per-caller global rule (errors count against it like any
//! request). Windows are whole seconds there, rounded up.

use serde_json::{json, Value};

use crate::config::{RateLimitsConfig, RuleConfig};

pub fn policy(limits: &RateLimitsConfig) -> Value {
    json!({
        "enabled": limits.enabled,
        "ip": options(&limits.global),
        "global": options(&limits.global),
        "error": options(&limits.global),
        "routes": {
            "guild": options(&limits.routes),
            "webhook": options(&limits.webhook_execute),
            "channel": options(&limits.message_create),
            "auth": {
                "login": options(&limits.auth),
                "register": options(&limits.auth),
            },
        },
    })
}

/// Spacebar's `{count, window}` (seconds) of one rule.
fn options(rule: &RuleConfig) -> Value {
    json!({
        "count": rule.limit,
        "window": rule.window_ms.div_ceil(1000).max(1),
    })
}
