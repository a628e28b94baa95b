//! What a room token lets its holder do. Every field defaults to "no", so a token that leaves
//! one out grants less, never more; `Grants::participant()` is what a guest gets.

use serde::{Deserialize, Serialize};

/// A kind of published track, as a token's `publish_sources` limits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Microphone,
    Camera,
    ScreenShare,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    /// May join the room the token names.
    pub join: bool,
    /// May publish tracks.
    pub publish: bool,
    /// Which kinds of track, when `publish`; `None` = any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_sources: Option<Vec<Source>>,
    /// May receive others' tracks.
    pub subscribe: bool,
    /// May send data messages.
    pub publish_data: bool,
    /// Not announced to others and not listed among the room's participants.
    pub hidden: bool,
    /// May manage the room: remove and mute others, change their grants.
    pub room_admin: bool,
}

impl Grants {
    /// An ordinary participant's: join, publish any source, subscribe and send data.
    pub fn participant() -> Self {
        Self {
            join: true,
            publish: true,
            publish_sources: None,
            subscribe: true,
            publish_data: true,
            hidden: false,
            room_admin: false,
        }
    }

    /// Whether a track of `source` may be published.
    pub fn may_publish(&self, source: Source) -> bool {
        self.publish
            && self
                .publish_sources
                .as_ref()
                .is_none_or(|sources| sources.contains(&source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_grant_is_a_refusal() {
        let grants: Grants = serde_json::from_str(r#"{"join": true}"#).unwrap_or_default();
        assert!(grants.join && !grants.publish && !grants.subscribe && !grants.room_admin);
        assert!(!grants.may_publish(Source::Microphone));
    }

    #[test]
    fn sources_limit_what_may_be_published() {
        let grants: Grants =
            serde_json::from_str(r#"{"publish": true, "publish_sources": ["microphone"]}"#)
                .unwrap_or_default();
        assert!(grants.may_publish(Source::Microphone));
        assert!(!grants.may_publish(Source::Camera));
        assert!(Grants::participant().may_publish(Source::ScreenShare));
    }
}
