//! Object keys. A [`Key`] is a relative path whose every segment is a snowflake, a hex hash or
//! token, a fixed area name, or a cleaned file name: nothing a client sends reaches a key
//! without passing one of the checks here.

use std::fmt;

/// Longest file name kept (longer ones are cut, keeping the extension).
const MAX_FILENAME: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

/// The image areas of Discord's CDN: `/avatars/{user_id}/{hash}` and the like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageArea {
    Avatar,
    Banner,
    Icon,
    Splash,
    RoleIcon,
}

impl ImageArea {
    pub fn path(self) -> &'static str {
        match self {
            Self::Avatar => "avatars",
            Self::Banner => "banners",
            Self::Icon => "icons",
            Self::Splash => "splashes",
            Self::RoleIcon => "role-icons",
        }
    }
}

impl Key {
    /// An attachment: `attachments/{channel_id}/{attachment_id}/{filename}`; `None` unless the
    /// file name is already clean (see [`clean_filename`]).
    pub fn attachment(channel_id: i64, attachment_id: i64, filename: &str) -> Option<Self> {
        (channel_id >= 0 && attachment_id >= 0 && is_clean(filename)).then(|| {
            Self(format!(
                "attachments/{channel_id}/{attachment_id}/{filename}"
            ))
        })
    }

    /// A pre-upload waiting for its message: `uploads/{token}` (32 hex digits).
    pub fn upload(token: &str) -> Option<Self> {
        (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(format!("uploads/{}", token.to_ascii_lowercase())))
    }

    /// A profile or guild image: `{area}/{owner_id}/{hash}`.
    pub fn image(area: ImageArea, owner_id: i64, hash: &str) -> Option<Self> {
        (owner_id >= 0 && is_hash(hash)).then(|| Self(format!("{}/{owner_id}/{hash}", area.path())))
    }

    /// A member's guild avatar: `guilds/{guild_id}/users/{user_id}/avatars/{hash}`.
    pub fn member_avatar(guild_id: i64, user_id: i64, hash: &str) -> Option<Self> {
        (guild_id >= 0 && user_id >= 0 && is_hash(hash))
            .then(|| Self(format!("guilds/{guild_id}/users/{user_id}/avatars/{hash}")))
    }

    pub fn emoji(emoji_id: i64) -> Option<Self> {
        (emoji_id >= 0).then(|| Self(format!("emojis/{emoji_id}")))
    }

    pub fn sticker(sticker_id: i64) -> Option<Self> {
        (sticker_id >= 0).then(|| Self(format!("stickers/{sticker_id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image hash as Discord makes them: 32 lower-case hex digits, `a_` before animated ones.
pub fn is_hash(hash: &str) -> bool {
    let digits = hash.strip_prefix("a_").unwrap_or(hash);
    digits.len() == 32
        && digits
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A file name as stored and served: its last path component, with every character but ASCII
/// letters, digits, `.`, `-` and `_` made `_`, no leading dots, at most 100 characters.
pub fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut cleaned: String = last
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            ' ' => '_',
            _ => '_',
        })
        .collect();
    while cleaned.starts_with('.') {
        cleaned.remove(0);
    }
    if cleaned.len() > MAX_FILENAME {
        let extension = cleaned
            .rfind('.')
            .map(|dot| cleaned[dot..].to_string())
            .filter(|ext| ext.len() <= 16)
            .unwrap_or_default();
        cleaned.truncate(MAX_FILENAME - extension.len());
        cleaned.push_str(&extension);
    }
    if cleaned.trim_matches(['_', '.']).is_empty() {
        return "unknown".into();
    }
    cleaned
}

/// Whether a file name is one [`clean_filename`] leaves as it is.
fn is_clean(name: &str) -> bool {
    !name.is_empty() && clean_filename(name) == name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_paths_and_odd_characters() {
        assert_eq!(clean_filename("cat.png"), "cat.png");
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(clean_filename("my photo (1).jpg"), "my_photo__1_.jpg");
        assert_eq!(clean_filename("..."), "unknown");
        assert_eq!(clean_filename(".hidden"), "hidden");
        assert_eq!(clean_filename("%2e%2e%2fx"), "_2e_2e_2fx");
        let long = format!("{}.txt", "a".repeat(300));
        assert_eq!(clean_filename(&long).len(), MAX_FILENAME);
        assert!(clean_filename(&long).ends_with(".txt"));
    }

    #[test]
    fn keys_refuse_unchecked_parts() {
        assert!(Key::attachment(1, 2, "a.png").is_some());
        assert!(Key::attachment(1, 2, "../a.png").is_none());
        assert!(Key::attachment(1, 2, "..").is_none());
        assert!(Key::attachment(1, 2, "").is_none());
        assert!(Key::attachment(-1, 2, "a.png").is_none());
        assert!(Key::upload("0123456789abcdef0123456789abcdef").is_some());
        assert!(Key::upload("../0123456789abcdef0123456789abc").is_none());
        assert!(Key::image(ImageArea::Avatar, 5, "a_0123456789abcdef0123456789abcdef").is_some());
        assert!(Key::image(ImageArea::Avatar, 5, "0123456789ABCDEF0123456789abcdef").is_none());
        assert!(Key::image(ImageArea::Avatar, 5, "..").is_none());
    }
}
