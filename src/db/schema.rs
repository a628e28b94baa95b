// @generated automatically by Diesel CLI.

diesel::table! {
    application_commands (id) {
        id -> Int8,
        application_id -> Int8,
        guild_id -> Nullable<Int8>,
        #[sql_name = "type"]
        kind -> Int4,
        name -> Text,
        description -> Text,
        options -> Jsonb,
        default_member_permissions -> Nullable<Text>,
        dm_permission -> Bool,
        nsfw -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    applications (id) {
        id -> Int8,
        name -> Text,
        description -> Text,
        icon -> Nullable<Text>,
        owner_id -> Int8,
        bot_user_id -> Nullable<Int8>,
        bot_public -> Bool,
        bot_require_code_grant -> Bool,
        verify_key -> Text,
        flags -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    bans (guild_id, user_id) {
        guild_id -> Int8,
        user_id -> Int8,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    channel_recipients (channel_id, user_id) {
        channel_id -> Int8,
        user_id -> Int8,
    }
}

diesel::table! {
    channels (id) {
        id -> Int8,
        #[sql_name = "type"]
        kind -> Int4,
        guild_id -> Nullable<Int8>,
        name -> Nullable<Text>,
        topic -> Nullable<Text>,
        position -> Int4,
        parent_id -> Nullable<Int8>,
        nsfw -> Bool,
        bitrate -> Nullable<Int4>,
        user_limit -> Nullable<Int4>,
        rate_limit_per_user -> Int4,
        owner_id -> Nullable<Int8>,
        icon -> Nullable<Text>,
        last_message_id -> Nullable<Int8>,
        last_pin_timestamp -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    guilds (id) {
        id -> Int8,
        name -> Text,
        icon -> Nullable<Text>,
        banner -> Nullable<Text>,
        splash -> Nullable<Text>,
        description -> Nullable<Text>,
        owner_id -> Int8,
        afk_channel_id -> Nullable<Int8>,
        afk_timeout -> Int4,
        system_channel_id -> Nullable<Int8>,
        rules_channel_id -> Nullable<Int8>,
        verification_level -> Int4,
        default_message_notifications -> Int4,
        explicit_content_filter -> Int4,
        mfa_level -> Int4,
        nsfw_level -> Int4,
        premium_tier -> Int4,
        preferred_locale -> Text,
        features -> Array<Text>,
        created_at -> Timestamptz,
        member_count -> Int8,
    }
}

diesel::table! {
    interactions (id) {
        id -> Int8,
        application_id -> Int8,
        #[sql_name = "type"]
        kind -> Int4,
        token -> Text,
        user_id -> Int8,
        guild_id -> Nullable<Int8>,
        channel_id -> Int8,
        data -> Jsonb,
        message_id -> Nullable<Int8>,
        nonce -> Nullable<Text>,
        response_type -> Nullable<Int4>,
        original_message_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    invites (code) {
        code -> Text,
        guild_id -> Int8,
        channel_id -> Int8,
        inviter_id -> Nullable<Int8>,
        max_age -> Int4,
        max_uses -> Int4,
        uses -> Int4,
        temporary -> Bool,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    members (guild_id, user_id) {
        guild_id -> Int8,
        user_id -> Int8,
        nick -> Nullable<Text>,
        avatar -> Nullable<Text>,
        roles -> Array<Int8>,
        joined_at -> Timestamptz,
        premium_since -> Nullable<Timestamptz>,
        deaf -> Bool,
        mute -> Bool,
        pending -> Bool,
        flags -> Int4,
        communication_disabled_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    messages (id) {
        id -> Int8,
        channel_id -> Int8,
        guild_id -> Nullable<Int8>,
        author_id -> Nullable<Int8>,
        content -> Text,
        #[sql_name = "type"]
        kind -> Int4,
        tts -> Bool,
        mention_everyone -> Bool,
        mentions -> Array<Int8>,
        mention_roles -> Array<Int8>,
        embeds -> Jsonb,
        attachments -> Jsonb,
        components -> Jsonb,
        message_reference -> Nullable<Jsonb>,
        flags -> Int4,
        pinned -> Bool,
        edited_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        interaction_id -> Nullable<Int8>,
        interaction_metadata -> Nullable<Jsonb>,
        webhook_id -> Nullable<Int8>,
        webhook_name -> Nullable<Text>,
        webhook_avatar -> Nullable<Text>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Int8,
        #[sql_name = "type"]
        kind -> Int4,
        guild_id -> Int8,
        channel_id -> Int8,
        user_id -> Nullable<Int8>,
        name -> Text,
        avatar -> Nullable<Text>,
        token -> Text,
        application_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    emojis (id) {
        id -> Int8,
        guild_id -> Int8,
        name -> Text,
        user_id -> Nullable<Int8>,
        animated -> Bool,
        available -> Bool,
        roles -> Array<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    pending_uploads (token) {
        token -> Text,
        channel_id -> Int8,
        user_id -> Int8,
        filename -> Text,
        size -> Int8,
        uploaded -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stickers (id) {
        id -> Int8,
        guild_id -> Int8,
        name -> Text,
        description -> Nullable<Text>,
        tags -> Text,
        format_type -> Int4,
        available -> Bool,
        user_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    permission_overwrites (channel_id, target_id) {
        channel_id -> Int8,
        target_id -> Int8,
        kind -> Int4,
        allow -> Int8,
        deny -> Int8,
    }
}

diesel::table! {
    reactions (message_id, emoji_key, user_id) {
        message_id -> Int8,
        user_id -> Int8,
        emoji_key -> Text,
        emoji_id -> Nullable<Int8>,
        emoji_name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    read_states (user_id, channel_id) {
        user_id -> Int8,
        channel_id -> Int8,
        last_message_id -> Nullable<Int8>,
        mention_count -> Int4,
    }
}

diesel::table! {
    relationships (user_id, other_id) {
        user_id -> Int8,
        other_id -> Int8,
        #[sql_name = "type"]
        kind -> Int4,
        nickname -> Nullable<Text>,
        since -> Timestamptz,
    }
}

diesel::table! {
    roles (id) {
        id -> Int8,
        guild_id -> Int8,
        name -> Text,
        color -> Int4,
        hoist -> Bool,
        position -> Int4,
        permissions -> Int8,
        managed -> Bool,
        mentionable -> Bool,
        icon -> Nullable<Text>,
        unicode_emoji -> Nullable<Text>,
        bot_id -> Nullable<Int8>,
    }
}

diesel::table! {
    audit_log_entries (id) {
        id -> Int8,
        guild_id -> Int8,
        user_id -> Nullable<Int8>,
        target_id -> Nullable<Int8>,
        action_type -> Int4,
        changes -> Jsonb,
        options -> Nullable<Jsonb>,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    auth_sessions (id) {
        id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    user_settings_protos (user_id, kind) {
        user_id -> Int8,
        kind -> Int2,
        proto -> Text,
        json -> Jsonb,
    }
}

diesel::table! {
    guild_welcome_screens (guild_id) {
        guild_id -> Int8,
        enabled -> Bool,
        description -> Nullable<Text>,
        welcome_channels -> Jsonb,
    }
}

diesel::table! {
    guild_widgets (guild_id) {
        guild_id -> Int8,
        enabled -> Bool,
        channel_id -> Nullable<Int8>,
    }
}

diesel::table! {
    guild_templates (code) {
        code -> Text,
        guild_id -> Int8,
        name -> Text,
        description -> Nullable<Text>,
        usage_count -> Int4,
        creator_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        source -> Jsonb,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        discriminator -> Text,
        global_name -> Nullable<Text>,
        email -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        avatar -> Nullable<Text>,
        banner -> Nullable<Text>,
        bio -> Text,
        pronouns -> Text,
        accent_color -> Nullable<Int4>,
        bot -> Bool,
        system -> Bool,
        verified -> Bool,
        mfa_enabled -> Bool,
        flags -> Int8,
        public_flags -> Int8,
        premium_type -> Int4,
        rights -> Int8,
        disabled -> Bool,
        deleted -> Bool,
        date_of_birth -> Nullable<Date>,
        settings -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    instance_config (key) {
        key -> Text,
        value -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    registration_tokens (token) {
        token -> Text,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    instance_bans (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        ip -> Nullable<Text>,
        reason -> Nullable<Text>,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    room_api_keys (id) {
        id -> Text,
        name -> Text,
        secret_sha256 -> Bytea,
        webhook_url -> Nullable<Text>,
        webhook_secret -> Text,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    rooms (id) {
        id -> Text,
        name -> Text,
        public -> Bool,
        guests -> Bool,
        max_participants -> Int4,
        empty_timeout_secs -> Int4,
        metadata -> Text,
        api_key -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    room_events (id) {
        id -> Int8,
        room_id -> Text,
        api_key -> Nullable<Text>,
        event -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(audit_log_entries -> guilds (guild_id));
diesel::joinable!(auth_sessions -> users (user_id));
diesel::joinable!(bans -> users (user_id));
diesel::joinable!(channel_recipients -> channels (channel_id));
diesel::joinable!(channel_recipients -> users (user_id));
diesel::joinable!(channels -> guilds (guild_id));
diesel::joinable!(members -> users (user_id));
diesel::joinable!(members -> guilds (guild_id));
diesel::joinable!(messages -> channels (channel_id));
diesel::joinable!(permission_overwrites -> channels (channel_id));
diesel::joinable!(reactions -> messages (message_id));
diesel::joinable!(roles -> guilds (guild_id));
diesel::joinable!(emojis -> guilds (guild_id));
diesel::joinable!(stickers -> guilds (guild_id));
diesel::joinable!(pending_uploads -> channels (channel_id));
diesel::joinable!(rooms -> room_api_keys (api_key));

diesel::allow_tables_to_appear_in_same_query!(
    application_commands,
    applications,
    audit_log_entries,
    auth_sessions,
    bans,
    channel_recipients,
    channels,
    emojis,
    guilds,
    instance_bans,
    instance_config,
    interactions,
    invites,
    members,
    messages,
    pending_uploads,
    permission_overwrites,
    reactions,
    read_states,
    registration_tokens,
    relationships,
    roles,
    room_api_keys,
    room_events,
    rooms,
    stickers,
    users,
    webhooks,
);
