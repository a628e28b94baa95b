//! Discord's permission algorithm, as a pure module: base permissions from the owner rule, the
//! @everyone role and the member's roles (ADMINISTRATOR grants all); channel permissions by
//! applying overwrites in order (@everyone, then roles together, then the member); then the
//! implicit denials (no VIEW_CHANNEL means nothing, no SEND_MESSAGES means no message extras);
//! last, a timed-out member keeps only [`TIMED_OUT`] (owner and administrators excepted).
//! And the role hierarchy that decides who may manage whom.

/// Permission bits, as Discord numbers them.
pub mod bits {
    pub const CREATE_INSTANT_INVITE: u64 = 1 << 0;
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_CHANNELS: u64 = 1 << 4;
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const ADD_REACTIONS: u64 = 1 << 6;
    pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub const PRIORITY_SPEAKER: u64 = 1 << 8;
    pub const STREAM: u64 = 1 << 9;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const SEND_TTS_MESSAGES: u64 = 1 << 12;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const ATTACH_FILES: u64 = 1 << 15;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const MENTION_EVERYONE: u64 = 1 << 17;
    pub const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
    pub const VIEW_GUILD_INSIGHTS: u64 = 1 << 19;
    pub const CONNECT: u64 = 1 << 20;
    pub const SPEAK: u64 = 1 << 21;
    pub const MUTE_MEMBERS: u64 = 1 << 22;
    pub const DEAFEN_MEMBERS: u64 = 1 << 23;
    pub const MOVE_MEMBERS: u64 = 1 << 24;
    pub const USE_VAD: u64 = 1 << 25;
    pub const CHANGE_NICKNAME: u64 = 1 << 26;
    pub const MANAGE_NICKNAMES: u64 = 1 << 27;
    pub const MANAGE_ROLES: u64 = 1 << 28;
    pub const MANAGE_WEBHOOKS: u64 = 1 << 29;
    pub const MANAGE_GUILD_EXPRESSIONS: u64 = 1 << 30;
    pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
    pub const REQUEST_TO_SPEAK: u64 = 1 << 32;
    pub const MANAGE_EVENTS: u64 = 1 << 33;
    pub const MANAGE_THREADS: u64 = 1 << 34;
    pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
    pub const CREATE_PRIVATE_THREADS: u64 = 1 << 36;
    pub const USE_EXTERNAL_STICKERS: u64 = 1 << 37;
    pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
    pub const USE_EMBEDDED_ACTIVITIES: u64 = 1 << 39;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    pub const VIEW_CREATOR_MONETIZATION_ANALYTICS: u64 = 1 << 41;
    pub const USE_SOUNDBOARD: u64 = 1 << 42;
    pub const CREATE_GUILD_EXPRESSIONS: u64 = 1 << 43;
    pub const CREATE_EVENTS: u64 = 1 << 44;
    pub const USE_EXTERNAL_SOUNDS: u64 = 1 << 45;
    pub const SEND_VOICE_MESSAGES: u64 = 1 << 46;
    pub const SEND_POLLS: u64 = 1 << 49;
    pub const USE_EXTERNAL_APPS: u64 = 1 << 50;
}

use bits::*;

/// Every permission there is.
pub const ALL: u64 = (1 << 51) - 1;

/// What @everyone may do in a new guild.
pub const DEFAULT_EVERYONE: u64 = CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | STREAM
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | SEND_TTS_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MENTION_EVERYONE
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | USE_VAD
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | REQUEST_TO_SPEAK
    | CREATE_PUBLIC_THREADS
    | CREATE_PRIVATE_THREADS
    | USE_EXTERNAL_STICKERS
    | SEND_MESSAGES_IN_THREADS
    | USE_EMBEDDED_ACTIVITIES
    | SEND_VOICE_MESSAGES
    | SEND_POLLS;

/// All a timed-out member may do while the timeout lasts: read.
pub const TIMED_OUT: u64 = VIEW_CHANNEL | READ_MESSAGE_HISTORY;

/// Who an overwrite is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OverwriteKind {
    Role = 0,
    Member = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Overwrite {
    pub id: i64,
    pub kind: OverwriteKind,
    pub allow: u64,
    pub deny: u64,
}

/// A guild's roles as the algorithm needs them: id, permissions, position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleRank {
    pub id: i64,
    pub permissions: u64,
    pub position: i32,
}

/// A member of a guild, resolved against the guild's roles.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub user_id: i64,
    pub guild_id: i64,
    pub owner_id: i64,
    /// The @everyone role's permissions.
    pub everyone: u64,
    /// The member's roles (not @everyone).
    pub roles: &'a [RoleRank],
    /// Whether a timeout (`communication_disabled_until`) lasts now.
    pub timed_out: bool,
}

impl Member<'_> {
    pub fn is_owner(&self) -> bool {
        self.user_id == self.owner_id
    }

    /// Guild-wide permissions.
    pub fn base(&self) -> u64 {
        if self.is_owner() {
            return ALL;
        }
        let permissions = self
            .roles
            .iter()
            .fold(self.everyone, |p, role| p | role.permissions);
        if permissions & ADMINISTRATOR != 0 {
            ALL
        } else {
            self.timeout_mask(permissions)
        }
    }

    /// What a timeout leaves of `permissions` (the owner and administrators are never reached
    /// here: they have everything).
    fn timeout_mask(&self, permissions: u64) -> u64 {
        if self.timed_out {
            permissions & TIMED_OUT
        } else {
            permissions
        }
    }

    /// Permissions in a channel with `overwrites`.
    pub fn in_channel(&self, overwrites: &[Overwrite]) -> u64 {
        let base = self.base();
        if base & ADMINISTRATOR != 0 {
            return ALL;
        }
        let mut permissions = base;
        if let Some(everyone) = overwrites
            .iter()
            .find(|o| o.kind == OverwriteKind::Role && o.id == self.guild_id)
        {
            permissions = (permissions & !everyone.deny) | everyone.allow;
        }
        let (allow, deny) = overwrites
            .iter()
            .filter(|o| o.kind == OverwriteKind::Role && self.roles.iter().any(|r| r.id == o.id))
            .fold((0, 0), |(allow, deny), o| (allow | o.allow, deny | o.deny));
        permissions = (permissions & !deny) | allow;
        if let Some(member) = overwrites
            .iter()
            .find(|o| o.kind == OverwriteKind::Member && o.id == self.user_id)
        {
            permissions = (permissions & !member.deny) | member.allow;
        }
        // An overwrite's allow cannot lift a timeout.
        self.timeout_mask(implicit(permissions))
    }

    /// The position of the member's highest role (@everyone is 0).
    pub fn highest_position(&self) -> i32 {
        self.roles.iter().map(|r| r.position).max().unwrap_or(0)
    }

    /// Whether this member outranks a role at `position` (the owner outranks everything).
    pub fn outranks_role(&self, position: i32) -> bool {
        self.is_owner() || self.highest_position() > position
    }

    /// Whether this member outranks `other` (nobody outranks the owner; the owner outranks all).
    pub fn outranks(&self, other: &Member<'_>) -> bool {
        !other.is_owner() && (self.is_owner() || self.highest_position() > other.highest_position())
    }
}

/// Discord's implicit denials: without VIEW_CHANNEL nothing else counts; without SEND_MESSAGES
/// the message extras go too.
fn implicit(permissions: u64) -> u64 {
    if permissions & VIEW_CHANNEL == 0 {
        return 0;
    }
    if permissions & SEND_MESSAGES == 0 {
        return permissions & !(SEND_TTS_MESSAGES | MENTION_EVERYONE | EMBED_LINKS | ATTACH_FILES);
    }
    permissions
}

/// Whether `permissions` include every bit of `wanted`.
pub fn has(permissions: u64, wanted: u64) -> bool {
    permissions & wanted == wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUILD: i64 = 100;
    const OWNER: i64 = 1;
    const USER: i64 = 2;
    const MODS: RoleRank = RoleRank {
        id: 10,
        permissions: KICK_MEMBERS | MANAGE_MESSAGES,
        position: 2,
    };
    const MUTED: RoleRank = RoleRank {
        id: 11,
        permissions: 0,
        position: 1,
    };
    const ADMINS: RoleRank = RoleRank {
        id: 12,
        permissions: ADMINISTRATOR,
        position: 3,
    };

    fn member(user_id: i64, roles: &[RoleRank]) -> Member<'_> {
        Member {
            user_id,
            guild_id: GUILD,
            owner_id: OWNER,
            everyone: VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS,
            roles,
            timed_out: false,
        }
    }

    fn timed_out(user_id: i64, roles: &[RoleRank]) -> Member<'_> {
        Member {
            timed_out: true,
            ..member(user_id, roles)
        }
    }

    fn role(id: i64, allow: u64, deny: u64) -> Overwrite {
        Overwrite {
            id,
            kind: OverwriteKind::Role,
            allow,
            deny,
        }
    }

    fn user(id: i64, allow: u64, deny: u64) -> Overwrite {
        Overwrite {
            id,
            kind: OverwriteKind::Member,
            allow,
            deny,
        }
    }

    #[test]
    fn the_algorithm_layer_by_layer() {
        let none: &[RoleRank] = &[];
        let everyone = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS;
        let cases: Vec<(&str, Member<'_>, Vec<Overwrite>, u64)> = vec![
            (
                "owner gets all, even denied",
                member(OWNER, none),
                vec![role(GUILD, 0, VIEW_CHANNEL)],
                ALL,
            ),
            (
                "administrator gets all, even denied",
                member(USER, &[ADMINS]),
                vec![user(USER, 0, ALL)],
                ALL,
            ),
            ("@everyone alone", member(USER, none), vec![], everyone),
            (
                "roles add to @everyone",
                member(USER, &[MODS]),
                vec![],
                everyone | KICK_MEMBERS | MANAGE_MESSAGES,
            ),
            (
                "@everyone overwrite denies",
                member(USER, none),
                vec![role(GUILD, 0, EMBED_LINKS)],
                VIEW_CHANNEL | SEND_MESSAGES,
            ),
            (
                "@everyone overwrite allows",
                member(USER, none),
                vec![role(GUILD, ADD_REACTIONS, 0)],
                everyone | ADD_REACTIONS,
            ),
            (
                "a role overwrite beats @everyone's",
                member(USER, &[MODS]),
                vec![
                    role(GUILD, 0, SEND_MESSAGES),
                    role(MODS.id, SEND_MESSAGES, 0),
                ],
                everyone | KICK_MEMBERS | MANAGE_MESSAGES,
            ),
            (
                "role allows win over other roles' denies",
                member(USER, &[MODS, MUTED]),
                vec![
                    role(MUTED.id, 0, ADD_REACTIONS),
                    role(MODS.id, ADD_REACTIONS, 0),
                ],
                everyone | KICK_MEMBERS | MANAGE_MESSAGES | ADD_REACTIONS,
            ),
            (
                "a role overwrite for a role the member lacks is ignored",
                member(USER, none),
                vec![role(MODS.id, 0, VIEW_CHANNEL)],
                everyone,
            ),
            (
                "the member overwrite comes last",
                member(USER, &[MUTED]),
                vec![
                    role(MUTED.id, 0, SEND_MESSAGES),
                    user(USER, SEND_MESSAGES, 0),
                ],
                everyone,
            ),
            (
                "another member's overwrite is ignored",
                member(USER, none),
                vec![user(3, 0, VIEW_CHANNEL)],
                everyone,
            ),
            (
                "no VIEW_CHANNEL means nothing",
                member(USER, &[MODS]),
                vec![role(GUILD, 0, VIEW_CHANNEL)],
                0,
            ),
            (
                "no SEND_MESSAGES drops the extras",
                member(USER, none),
                vec![role(GUILD, MENTION_EVERYONE, SEND_MESSAGES)],
                VIEW_CHANNEL,
            ),
        ];
        for (name, member, overwrites, expected) in cases {
            assert_eq!(member.in_channel(&overwrites), expected, "{name}");
        }
    }

    #[test]
    fn a_timeout_leaves_reading_only() {
        let none: &[RoleRank] = &[];
        let history = VIEW_CHANNEL | READ_MESSAGE_HISTORY;
        let cases: Vec<(&str, Member<'_>, Vec<Overwrite>, u64, u64)> = vec![
            (
                "@everyone's sending goes",
                timed_out(USER, none),
                vec![role(GUILD, READ_MESSAGE_HISTORY, 0)],
                VIEW_CHANNEL,
                history,
            ),
            (
                "roles' moderation goes",
                timed_out(USER, &[MODS]),
                vec![],
                VIEW_CHANNEL,
                VIEW_CHANNEL,
            ),
            (
                "a member overwrite's allow cannot lift it",
                timed_out(USER, none),
                vec![user(
                    USER,
                    SEND_MESSAGES | ADD_REACTIONS | CONNECT | READ_MESSAGE_HISTORY,
                    0,
                )],
                VIEW_CHANNEL,
                history,
            ),
            (
                "a channel it cannot see stays unseen",
                timed_out(USER, none),
                vec![role(GUILD, 0, VIEW_CHANNEL)],
                VIEW_CHANNEL,
                0,
            ),
            (
                "an administrator is exempt",
                timed_out(USER, &[ADMINS]),
                vec![],
                ALL,
                ALL,
            ),
            (
                "the owner is exempt",
                timed_out(OWNER, none),
                vec![],
                ALL,
                ALL,
            ),
        ];
        for (name, member, overwrites, base, in_channel) in cases {
            assert_eq!(member.base(), base, "{name}: guild-wide");
            assert_eq!(
                member.in_channel(&overwrites),
                in_channel,
                "{name}: in the channel"
            );
        }
    }

    #[test]
    fn the_role_hierarchy() {
        let owner = member(OWNER, &[]);
        let admin = member(USER, &[ADMINS]);
        let moderator = member(3, &[MODS]);
        let muted = member(4, &[MUTED]);
        assert!(owner.outranks(&admin) && !admin.outranks(&owner));
        assert!(
            admin.outranks(&moderator) && moderator.outranks(&muted) && !muted.outranks(&moderator)
        );
        assert!(
            !moderator.outranks(&member(5, &[MODS])),
            "equal rank is not outranking"
        );
        assert!(moderator.outranks_role(MUTED.position) && !moderator.outranks_role(MODS.position));
        assert!(owner.outranks_role(i32::MAX));
        assert_eq!(admin.base(), ALL);
    }
}
