//! Who a message mentions: `<@id>`, `<@!id>`, `<@&role>`, `@everyone` and `@here` in its
//! content, narrowed by the sender's `allowed_mentions` and by what they may mention (roles that
//! are not mentionable and @everyone need MENTION_EVERYONE; otherwise they stay plain text).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::db::messages::Message;
use crate::db::users::User;
use crate::db::Connection;
use crate::http::access::ChannelAccess;
use crate::http::error::{ApiError, FormErrors};
use crate::permissions::bits;

/// Discord's `allowed_mentions`. When a message carries one, only what it allows pings.
#[derive(Debug, Default, Deserialize)]
pub struct AllowedMentions {
    #[serde(default)]
    pub parse: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    pub users: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    pub roles: Option<Vec<i64>>,
    #[serde(default)]
    pub replied_user: Option<bool>,
}

const PARSE_CHOICES: [&str; 3] = ["users", "roles", "everyone"];
/// At most this many explicitly allowed users or roles.
const MAX_ALLOWED: usize = 100;

impl AllowedMentions {
    /// 50035 for unknown `parse` kinds, over-long lists, or a kind both parsed and listed.
    pub fn check(&self) -> Result<(), ApiError> {
        let mut errors = FormErrors::default();
        for (index, kind) in self.parse.iter().flatten().enumerate() {
            if !PARSE_CHOICES.contains(&kind.as_str()) {
                errors.add(
                    &format!("allowed_mentions.parse.{index}"),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of ('users', 'roles', 'everyone').",
                );
            }
        }
        for (kind, listed) in [("users", &self.users), ("roles", &self.roles)] {
            let listed = listed.as_deref().unwrap_or_default();
            if listed.len() > MAX_ALLOWED {
                errors.add(
                    &format!("allowed_mentions.{kind}"),
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {MAX_ALLOWED} or fewer in length."),
                );
            }
            if self.parses(kind) && !listed.is_empty() {
                errors.add(
                    "allowed_mentions",
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    format!("parse:[\"{kind}\"] and {kind}: [ids...] are mutually exclusive."),
                );
            }
        }
        errors.into_result()
    }

    fn parses(&self, kind: &str) -> bool {
        self.parse.iter().flatten().any(|k| k == kind)
    }

    fn allows(&self, kind: &str, listed: &Option<Vec<i64>>, id: i64) -> bool {
        self.parses(kind) || listed.as_ref().is_some_and(|ids| ids.contains(&id))
    }
}

/// What the content names, before anyone decides what it may ping.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub users: Vec<i64>,
    pub roles: Vec<i64>,
    pub everyone: bool,
}

pub fn named(content: &str) -> Named {
    let mut named = Named {
        everyone: content.contains("@everyone") || content.contains("@here"),
        ..Named::default()
    };
    let mut seen = HashSet::new();
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = rest.get(start + 2..).unwrap_or_default();
        let (is_role, tail) = match rest.strip_prefix('&') {
            Some(tail) => (true, tail),
            None => (false, rest.strip_prefix('!').unwrap_or(rest)),
        };
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || tail.as_bytes().get(digits) != Some(&b'>') {
            continue;
        }
        let Some(id) = tail.get(..digits).and_then(|d| d.parse::<i64>().ok()) else {
            continue;
        };
        let list = if is_role {
            &mut named.roles
        } else {
            &mut named.users
        };
        if seen.insert((is_role, id)) {
            list.push(id);
        }
    }
    named
}

/// The mentions a message stores.
pub struct Mentions {
    pub users: Vec<User>,
    pub roles: Vec<i64>,
    pub everyone: bool,
}

/// The mentions of `content` sent by the caller of `access` (`author_id`, none for a webhook). `replied` is the
/// author of the message replied to, when the reply is to ping them.
pub async fn resolve(
    conn: &mut Connection,
    access: &ChannelAccess,
    author_id: Option<i64>,
    content: &str,
    allowed: Option<&AllowedMentions>,
    replied: Option<i64>,
) -> Result<Mentions, ApiError> {
    let named = named(content);
    let may_ping_all = access.permissions & bits::MENTION_EVERYONE != 0;

    let mut user_ids: Vec<i64> = named
        .users
        .into_iter()
        .filter(|id| allowed.is_none_or(|a| a.allows("users", &a.users, *id)))
        .collect();
    if let Some(replied) = replied.filter(|r| Some(*r) != author_id && !user_ids.contains(r)) {
        user_ids.push(replied);
    }
    let mut users = if user_ids.is_empty() {
        Vec::new()
    } else {
        Message::mentionable(conn, access.channel.guild_id, access.channel.id, &user_ids).await?
    };
    let order: HashMap<i64, usize> = user_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    users.sort_by_key(|u| order.get(&u.id).copied());

    let roles = match &access.guild {
        Some(guild) => {
            let pingable: HashSet<i64> = guild
                .roles
                .iter()
                .filter(|role| role.id != guild.guild.id && (role.mentionable || may_ping_all))
                .map(|role| role.id)
                .collect();
            named
                .roles
                .into_iter()
                .filter(|id| allowed.is_none_or(|a| a.allows("roles", &a.roles, *id)))
                .filter(|id| pingable.contains(id))
                .collect()
        }
        None => Vec::new(),
    };

    let everyone = named.everyone && may_ping_all && allowed.is_none_or(|a| a.parses("everyone"));
    Ok(Mentions {
        users,
        roles,
        everyone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_names_users_roles_and_everyone() {
        let found = named("hi <@12> and <@!34>, <@&56>, <@12> again, <@x> <@> <@7 @here");
        assert_eq!(found.users, vec![12, 34]);
        assert_eq!(found.roles, vec![56]);
        assert!(found.everyone);
        assert_eq!(named("plain <@&> text"), Named::default());
        assert_eq!(named("ünïcödé <@1>").users, vec![1]);
    }

    /// 50,000 mentions, half of them repeats, through `allowed_mentions` at its limits: the
    /// work stays linear (a quadratic de-duplication would take minutes here).
    #[test]
    fn many_mentions_are_linear() {
        let mut content = String::new();
        for id in 1..=25_000 {
            content.push_str(&format!("<@{id}><@&{}>", id % 500 + 1));
        }
        let started = std::time::Instant::now();
        let found = named(&content);
        let allowed = AllowedMentions {
            users: Some((1..=MAX_ALLOWED as i64).collect()),
            roles: Some((1..=MAX_ALLOWED as i64).collect()),
            ..AllowedMentions::default()
        };
        assert!(allowed.check().is_ok());
        let users = found
            .users
            .iter()
            .filter(|id| allowed.allows("users", &allowed.users, **id))
            .count();
        let roles = found
            .roles
            .iter()
            .filter(|id| allowed.allows("roles", &allowed.roles, **id))
            .count();
        let elapsed = started.elapsed();
        assert_eq!(found.users, (1..=25_000).collect::<Vec<i64>>());
        assert_eq!(found.roles.len(), 500);
        assert_eq!((users, roles), (MAX_ALLOWED, MAX_ALLOWED));
        assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
    }

    #[test]
    fn allowed_mentions_are_checked() {
        let too_many = AllowedMentions {
            users: Some((0..101).collect()),
            ..AllowedMentions::default()
        };
        assert!(too_many.check().is_err());
        let fine = AllowedMentions {
            parse: Some(vec!["roles".into()]),
            users: Some(vec![1, 2]),
            ..AllowedMentions::default()
        };
        assert!(fine.check().is_ok());
        assert!(fine.allows("users", &fine.users, 2) && !fine.allows("users", &fine.users, 3));
        assert!(fine.allows("roles", &fine.roles, 9));
    }
}
