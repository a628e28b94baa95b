//! Instance rights: per-account permissions over the instance itself (not a guild), as Spacebar
//! defines them. OPERATOR grants every right.

/// One right: its bit and its name (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Right {
    pub bit: u8,
    pub name: &'static str,
}

macro_rules! rights {
    ($($name:ident = $bit:literal),* $(,)?) => {
        $(pub const $name: Right = Right { bit: $bit, name: stringify!($name) };)*
        /// Every right, by bit.
        pub const ALL: &[Right] = &[$($name),*];
    };
}

rights! {
    OPERATOR = 0,
    MANAGE_APPLICATIONS = 1,
    MANAGE_GUILDS = 2,
    MANAGE_MESSAGES = 3,
    MANAGE_RATE_LIMITS = 4,
    MANAGE_ROUTING = 5,
    MANAGE_TICKETS = 6,
    MANAGE_USERS = 7,
    ADD_MEMBERS = 8,
    BYPASS_RATE_LIMITS = 9,
    CREATE_APPLICATIONS = 10,
    CREATE_CHANNELS = 11,
    CREATE_DMS = 12,
    CREATE_DM_GROUPS = 13,
    CREATE_GUILDS = 14,
    CREATE_INVITES = 15,
    CREATE_ROLES = 16,
    CREATE_TEMPLATES = 17,
    CREATE_WEBHOOKS = 18,
    JOIN_GUILDS = 19,
    PIN_MESSAGES = 20,
    SELF_ADD_REACTIONS = 21,
    SELF_DELETE_MESSAGES = 22,
    SELF_EDIT_MESSAGES = 23,
    SELF_EDIT_NAME = 24,
    SEND_MESSAGES = 25,
    USE_ACTIVITIES = 26,
    USE_VIDEO = 27,
    USE_VOICE = 28,
    INVITE_USERS = 29,
    SELF_DELETE_DISABLE = 30,
    DEBTABLE = 31,
    CREDITABLE = 32,
    KICK_BAN_MEMBERS = 33,
    SELF_LEAVE_GROUPS = 34,
    PRESENCE = 35,
    SELF_ADD_DISCOVERABLE = 36,
    MANAGE_GUILD_DIRECTORY = 37,
    POGGERS = 38,
    USE_ACHIEVEMENTS = 39,
    INITIATE_INTERACTIONS = 40,
    RESPOND_TO_INTERACTIONS = 41,
    SEND_BACKDATED_EVENTS = 42,
    USE_MASS_INVITES = 43,
    ACCEPT_INVITES = 44,
    SELF_EDIT_FLAGS = 45,
    EDIT_FLAGS = 46,
    MANAGE_GROUPS = 47,
    VIEW_SERVER_STATS = 48,
    RESEND_VERIFICATION_EMAIL = 49,
    CREATE_REGISTRATION_TOKENS = 50,
}

/// Whether an account's `rights` include `right` (OPERATOR includes all).
pub fn has(rights: i64, right: Right) -> bool {
    let rights = rights as u64; // the column is BIGINT; the bits are what count
    rights & 1 != 0 || rights & (1u64 << right.bit) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_grants_everything_and_other_rights_only_themselves() {
        assert!(has(1, SELF_EDIT_NAME) && has(1, CREATE_REGISTRATION_TOKENS));
        let name_only = 1i64 << SELF_EDIT_NAME.bit;
        assert!(has(name_only, SELF_EDIT_NAME));
        assert!(!has(name_only, SEND_MESSAGES) && !has(name_only, OPERATOR));
        assert!(!has(0, SELF_EDIT_NAME));
        // The configured default gives what Discord users may do, and not OPERATOR.
        let default = 648_540_060_672;
        assert!(
            has(default, SEND_MESSAGES)
                && has(default, CREATE_GUILDS)
                && has(default, SELF_EDIT_NAME)
        );
        assert!(!has(default, MANAGE_USERS) && !has(default, BYPASS_RATE_LIMITS));
    }
}
