//! Every gateway dispatch's name, as one enum: a session decides what it hears from it (see
//! [`crate::intents::required`], an exhaustive `match`), so a new event cannot slip past the
//! intents by a misspelling: it does not compile until it says which intent it needs.

use serde::{Deserialize, Serialize};

macro_rules! event_names {
    ($($variant:ident = $name:literal,)*) => {
        /// A dispatch's `t`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventName {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl EventName {
            /// The name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

event_names! {
    Ready = "READY",
    ReadySupplemental = "READY_SUPPLEMENTAL",
    Resumed = "RESUMED",
    RateLimited = "RATE_LIMITED",
    GuildCreate = "GUILD_CREATE",
    GuildUpdate = "GUILD_UPDATE",
    GuildDelete = "GUILD_DELETE",
    GuildRoleCreate = "GUILD_ROLE_CREATE",
    GuildRoleUpdate = "GUILD_ROLE_UPDATE",
    GuildRoleDelete = "GUILD_ROLE_DELETE",
    GuildMemberAdd = "GUILD_MEMBER_ADD",
    GuildMemberUpdate = "GUILD_MEMBER_UPDATE",
    GuildMemberRemove = "GUILD_MEMBER_REMOVE",
    GuildMembersChunk = "GUILD_MEMBERS_CHUNK",
    GuildMemberListUpdate = "GUILD_MEMBER_LIST_UPDATE",
    GuildAuditLogEntryCreate = "GUILD_AUDIT_LOG_ENTRY_CREATE",
    GuildBanAdd = "GUILD_BAN_ADD",
    GuildBanRemove = "GUILD_BAN_REMOVE",
    GuildEmojisUpdate = "GUILD_EMOJIS_UPDATE",
    GuildStickersUpdate = "GUILD_STICKERS_UPDATE",
    ChannelCreate = "CHANNEL_CREATE",
    ChannelUpdate = "CHANNEL_UPDATE",
    ChannelDelete = "CHANNEL_DELETE",
    ChannelPinsUpdate = "CHANNEL_PINS_UPDATE",
    ChannelRecipientAdd = "CHANNEL_RECIPIENT_ADD",
    ChannelRecipientRemove = "CHANNEL_RECIPIENT_REMOVE",
    WebhooksUpdate = "WEBHOOKS_UPDATE",
    InviteCreate = "INVITE_CREATE",
    InviteDelete = "INVITE_DELETE",
    MessageCreate = "MESSAGE_CREATE",
    MessageUpdate = "MESSAGE_UPDATE",
    MessageDelete = "MESSAGE_DELETE",
    MessageDeleteBulk = "MESSAGE_DELETE_BULK",
    MessageAck = "MESSAGE_ACK",
    MessageReactionAdd = "MESSAGE_REACTION_ADD",
    MessageReactionRemove = "MESSAGE_REACTION_REMOVE",
    MessageReactionRemoveAll = "MESSAGE_REACTION_REMOVE_ALL",
    MessageReactionRemoveEmoji = "MESSAGE_REACTION_REMOVE_EMOJI",
    TypingStart = "TYPING_START",
    PresenceUpdate = "PRESENCE_UPDATE",
    VoiceStateUpdate = "VOICE_STATE_UPDATE",
    VoiceServerUpdate = "VOICE_SERVER_UPDATE",
    StreamCreate = "STREAM_CREATE",
    StreamUpdate = "STREAM_UPDATE",
    StreamDelete = "STREAM_DELETE",
    StreamServerUpdate = "STREAM_SERVER_UPDATE",
    CallCreate = "CALL_CREATE",
    CallUpdate = "CALL_UPDATE",
    CallDelete = "CALL_DELETE",
    RelationshipAdd = "RELATIONSHIP_ADD",
    RelationshipRemove = "RELATIONSHIP_REMOVE",
    UserUpdate = "USER_UPDATE",
    UserSettingsUpdate = "USER_SETTINGS_UPDATE",
    UserSettingsProtoUpdate = "USER_SETTINGS_PROTO_UPDATE",
    InteractionCreate = "INTERACTION_CREATE",
    InteractionSuccess = "INTERACTION_SUCCESS",
    InteractionFailure = "INTERACTION_FAILURE",
    ApplicationCommandCreate = "APPLICATION_COMMAND_CREATE",
    ApplicationCommandUpdate = "APPLICATION_COMMAND_UPDATE",
    ApplicationCommandDelete = "APPLICATION_COMMAND_DELETE",
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
