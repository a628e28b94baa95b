//! Presences: what each gateway session says about its user (op 3 PRESENCE_UPDATE, or
//! IDENTIFY's `presence`), and the one presence others see for a user with several sessions.
//!
//! The registry keeps every live session's [`Presence`]; when a user's [`Aggregate`] changes it
//! tells the guilds they are in (one PRESENCE_UPDATE per guild, with its `guild_id`) and their
//! friends (one without). Aggregation: a session that is invisible (or says offline) counts as
//! offline; of the others, online beats dnd beats idle (an active session wins over idle ones,
//! as on Discord), and the activities are those of the session that changed most recently.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::interest::{Alone, Topic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    Offline,
    Invisible,
    Idle,
    Dnd,
    Online,
}

impl Status {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "online" => Self::Online,
            "idle" => Self::Idle,
            "dnd" => Self::Dnd,
            "invisible" => Self::Invisible,
            "offline" => Self::Offline,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Idle => "idle",
            Self::Dnd => "dnd",
            Self::Invisible => "invisible",
            Self::Offline => "offline",
        }
    }

    /// Whether others see this session at all.
    fn shown(self) -> bool {
        !matches!(self, Self::Invisible | Self::Offline)
    }
}

/// Where a session runs, for `client_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Platform {
    Desktop,
    Mobile,
    Web,
}

impl Platform {
    /// From IDENTIFY's `properties`: Discord's desktop app, a phone, or else the web.
    pub fn from_properties(properties: &Value) -> Self {
        let field = |name: &str| {
            properties
                .get(name)
                .or_else(|| properties.get(format!("${name}")))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let (browser, os) = (field("browser"), field("os"));
        if browser.contains("android") || browser.contains("ios") || os == "android" || os == "ios"
        {
            Self::Mobile
        } else if browser == "discord client" {
            Self::Desktop
        } else {
            Self::Web
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
            Self::Web => "web",
        }
    }
}

/// One session's presence.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    pub status: Status,
    pub activities: Vec<Value>,
    pub platform: Platform,
}

/// Op 3's `d` (or IDENTIFY's `presence`): `{since, activities, status, afk}`. `status` must be
/// one of Discord's; `activities` an array of objects (or null); `since` a number or null;
/// `afk` a boolean or null. Anything else is `None` (op 3 closes with 4002).
pub fn parse_update(d: &Value) -> Option<(Status, Vec<Value>)> {
    let d = d.as_object()?;
    let status = Status::parse(d.get("status")?.as_str()?)?;
    let activities = match d.get("activities") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) if list.iter().all(Value::is_object) => list.clone(),
        Some(_) => return None,
    };
    let since_ok = matches!(d.get("since"), None | Some(Value::Null | Value::Number(_)));
    let afk_ok = matches!(d.get("afk"), None | Some(Value::Null | Value::Bool(_)));
    (since_ok && afk_ok).then_some((status, activities))
}

/// What others see of a user across their sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub status: Status,
    pub activities: Vec<Value>,
    pub client_status: BTreeMap<Platform, Status>,
}

impl Aggregate {
    pub fn offline() -> Self {
        Self {
            status: Status::Offline,
            activities: Vec::new(),
            client_status: BTreeMap::new(),
        }
    }

    /// Of sessions given with when each last changed (larger is more recent).
    pub fn of<'a>(sessions: impl IntoIterator<Item = (&'a Presence, u64)>) -> Self {
        let each: Vec<(Self, u64)> = sessions
            .into_iter()
            .map(|(presence, changed)| (Self::one(presence), changed))
            .collect();
        Self::merge(each.iter().map(|(one, changed)| (one, *changed)))
    }

    /// What one session shows.
    fn one(presence: &Presence) -> Self {
        if !presence.status.shown() {
            return Self::offline();
        }
        Self {
            status: presence.status,
            activities: presence.activities.clone(),
            client_status: BTreeMap::from([(presence.platform, presence.status)]),
        }
    }

    /// Of several aggregates (each node's, or each session's) given with when each last
    /// changed: the most present status of each platform, the latest shown one's activities.
    pub fn merge<'a>(parts: impl IntoIterator<Item = (&'a Self, u64)>) -> Self {
        let mut aggregate = Self::offline();
        let mut latest = None;
        for (part, changed) in parts {
            if part.is_offline() {
                continue;
            }
            aggregate.status = aggregate.status.max(part.status);
            for (&platform, &status) in &part.client_status {
                let shown = aggregate.client_status.entry(platform).or_insert(status);
                *shown = (*shown).max(status);
            }
            if latest.is_none_or(|latest| changed > latest) {
                latest = Some(changed);
                aggregate.activities = part.activities.clone();
            }
        }
        aggregate
    }

    pub fn is_offline(&self) -> bool {
        self.status == Status::Offline
    }

    /// A PRESENCE_UPDATE's `d` (or a presence in READY) for `user_id`, in `guild_id` if any.
    pub fn to_json(&self, user_id: i64, guild_id: Option<i64>) -> Value {
        let client_status: Map<String, Value> = self
            .client_status
            .iter()
            .map(|(platform, status)| (platform.as_str().to_string(), status.as_str().into()))
            .collect();
        let mut d = json!({
            "user": { "id": user_id.to_string() },
            "status": self.status.as_str(),
            "activities": self.activities,
            "client_status": client_status,
        });
        if let Some(guild_id) = guild_id {
            d["guild_id"] = guild_id.to_string().into();
        }
        d
    }
}

/// A user's presence over every node, numbered: a larger version is a later state.
#[derive(Debug, Clone)]
pub struct Shown {
    pub presence: Aggregate,
    /// When it was recorded, in milliseconds (each change numbered above the one before).
    pub version: u64,
    /// Whether recording this node's part changed it (then the others are to hear it).
    pub changed: bool,
}

/// Where a node shares its users' presences with the other nodes (the server's cluster module
/// implements it); a single process shares nothing ([`Alone`]).
pub trait Board: Send + Sync + 'static {
    /// Whether other nodes exist.
    fn shared(&self) -> bool;

    /// Records what this node's sessions of `user_id` show (`None`: nothing, none of them being
    /// here or shown); resolves to the user's presence over every node once recorded, `None`
    /// if it could not be.
    fn record(&self, user_id: i64, here: Option<Aggregate>) -> BoxFuture<'static, Option<Shown>>;

    /// Tells the other nodes' sessions that hear `topics` the user's presence.
    fn tell(&self, user_id: i64, presence: &Aggregate, version: u64, topics: Vec<Topic>);

    /// What other nodes' sessions of `users` show, for those shown somewhere.
    fn elsewhere(&self, users: Vec<i64>) -> BoxFuture<'static, Vec<(i64, Aggregate)>>;
}

impl Board for Alone {
    fn shared(&self) -> bool {
        false
    }

    fn record(&self, _: i64, _: Option<Aggregate>) -> BoxFuture<'static, Option<Shown>> {
        Box::pin(std::future::ready(None))
    }

    fn tell(&self, _: i64, _: &Aggregate, _: u64, _: Vec<Topic>) {}

    fn elsewhere(&self, _: Vec<i64>) -> BoxFuture<'static, Vec<(i64, Aggregate)>> {
        Box::pin(std::future::ready(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(status: Status, platform: Platform, game: &str) -> Presence {
        Presence {
            status,
            activities: vec![json!({ "name": game, "type": 0 })],
            platform,
        }
    }

    #[test]
    fn op3_payloads_are_checked() {
        let ok = json!({ "since": 0, "activities": [], "status": "idle", "afk": false });
        assert_eq!(parse_update(&ok), Some((Status::Idle, Vec::new())));
        let nulls = json!({ "since": null, "activities": null, "status": "dnd", "afk": null });
        assert_eq!(parse_update(&nulls), Some((Status::Dnd, Vec::new())));
        for bad in [
            json!(null),
            json!({ "status": "sleepy" }),
            json!({ "activities": [] }),
            json!({ "status": "online", "activities": "x" }),
            json!({ "status": "online", "activities": [1] }),
            json!({ "status": "online", "afk": "yes" }),
            json!({ "status": "online", "since": "now" }),
        ] {
            assert_eq!(parse_update(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_most_present_session_wins_and_invisible_is_offline() {
        let idle = presence(Status::Idle, Platform::Mobile, "old");
        let dnd = presence(Status::Dnd, Platform::Desktop, "new");
        let hidden = presence(Status::Invisible, Platform::Web, "secret");
        let both = Aggregate::of([(&idle, 1), (&dnd, 2), (&hidden, 3)]);
        assert_eq!(both.status, Status::Dnd);
        assert_eq!(
            both.activities, dnd.activities,
            "the latest shown session's"
        );
        assert_eq!(
            both.client_status.into_iter().collect::<Vec<_>>(),
            vec![
                (Platform::Desktop, Status::Dnd),
                (Platform::Mobile, Status::Idle)
            ]
        );
        let online = presence(Status::Online, Platform::Web, "x");
        assert_eq!(
            Aggregate::of([(&dnd, 1), (&online, 0)]).status,
            Status::Online
        );
        assert!(Aggregate::of([(&hidden, 1)]).is_offline());
        assert!(Aggregate::of([]).is_offline());
        let d = Aggregate::of([(&idle, 1)]).to_json(5, Some(9));
        assert_eq!(d["guild_id"], "9");
        assert_eq!(d["user"]["id"], "5");
        assert_eq!(d["client_status"]["mobile"], "idle");
    }

    #[test]
    fn nodes_merge_as_sessions_do() {
        let idle = Aggregate::of([(&presence(Status::Idle, Platform::Web, "a"), 1)]);
        let online = Aggregate::of([(&presence(Status::Online, Platform::Web, "b"), 1)]);
        let both = Aggregate::merge([(&idle, 7), (&online, 5), (&Aggregate::offline(), 9)]);
        assert_eq!(both.status, Status::Online);
        assert_eq!(both.activities, idle.activities, "the latest shown node's");
        assert_eq!(both.client_status[&Platform::Web], Status::Online);
        assert!(Aggregate::merge([(&Aggregate::offline(), 1)]).is_offline());
    }

    #[test]
    fn platforms_come_from_identify_properties() {
        let of = |p: Value| Platform::from_properties(&p);
        assert_eq!(
            of(json!({ "browser": "Discord Client", "os": "Linux" })),
            Platform::Desktop
        );
        assert_eq!(
            of(json!({ "browser": "Discord Android", "os": "Android" })),
            Platform::Mobile
        );
        assert_eq!(of(json!({ "$browser": "discord.py" })), Platform::Web);
        assert_eq!(of(json!({ "browser": "Firefox" })), Platform::Web);
    }
}
