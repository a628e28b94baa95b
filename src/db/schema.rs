// @generated automatically by Diesel CLI.

diesel::table! {
    auth_sessions (id) {
        id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
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

diesel::joinable!(auth_sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(auth_sessions, users,);
