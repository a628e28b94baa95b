//! User objects: the public shape anyone may see and the private one for the account itself.

use serde::Serialize;

use crate::db::users::User;

#[derive(Debug, Serialize)]
pub struct PublicUser {
    pub id: String,
    pub username: String,
    pub discriminator: String,
    pub global_name: Option<String>,
    pub avatar: Option<String>,
    pub avatar_decoration_data: Option<()>,
    pub banner: Option<String>,
    pub accent_color: Option<i32>,
    pub bot: bool,
    pub system: bool,
    pub public_flags: i64,
    pub premium_type: i32,
}

#[derive(Debug, Serialize)]
pub struct PrivateUser {
    #[serde(flatten)]
    pub public: PublicUser,
    pub email: Option<String>,
    pub verified: bool,
    pub mfa_enabled: bool,
    pub flags: i64,
    pub bio: String,
    pub pronouns: String,
    pub phone: Option<String>,
    pub nsfw_allowed: bool,
    pub premium: bool,
    pub purchased_flags: i64,
    pub premium_usage_flags: i64,
    pub desktop: bool,
    pub mobile: bool,
    pub locale: String,
}

impl From<&User> for PublicUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username.clone(),
            discriminator: user.discriminator.clone(),
            global_name: user.global_name.clone(),
            avatar: user.avatar.clone(),
            avatar_decoration_data: None,
            banner: user.banner.clone(),
            accent_color: user.accent_color,
            bot: user.bot,
            system: user.system,
            public_flags: user.public_flags,
            premium_type: user.premium_type,
        }
    }
}

impl From<&User> for PrivateUser {
    fn from(user: &User) -> Self {
        let locale = super::settings::merged(&user.settings)
            .get("locale")
            .and_then(|locale| locale.as_str().map(str::to_owned))
            .unwrap_or_else(|| "en-US".into());
        Self {
            public: PublicUser::from(user),
            email: user.email.clone(),
            verified: user.verified,
            mfa_enabled: user.mfa_enabled,
            flags: user.flags,
            bio: user.bio.clone(),
            pronouns: user.pronouns.clone(),
            phone: None,
            nsfw_allowed: adult(user),
            premium: user.premium_type != 0,
            purchased_flags: 0,
            premium_usage_flags: 0,
            desktop: false,
            mobile: false,
            locale,
        }
    }
}

/// Whether the account's date of birth says 18 or older (bots and accounts without one: yes).
fn adult(user: &User) -> bool {
    let Some(born) = user.date_of_birth else {
        return true;
    };
    chrono::Utc::now()
        .date_naive()
        .years_since(born)
        .is_some_and(|age| age >= 18)
}
