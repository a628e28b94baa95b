//! Discord's length and count limits on what clients write: one function per field, called by
//! every route that writes that field (create and modify alike), each failing with Discord's
//! 50035 naming the field.

use std::ops::RangeInclusive;

use super::error::{ApiError, FormErrors};

/// `text` is `range` characters long (Discord counts characters, not bytes).
pub fn chars(field: &str, text: &str, range: RangeInclusive<usize>) -> Result<(), ApiError> {
    let length = text.chars().count();
    if range.contains(&length) {
        return Ok(());
    }
    let (min, max) = (*range.start(), *range.end());
    Err(if min == 0 {
        FormErrors::field(
            field,
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {max} or fewer in length."),
        )
    } else {
        FormErrors::field(
            field,
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between {min} and {max} in length."),
        )
    }
    .into())
}

/// A list holds at most `max` items.
pub fn items<T>(field: &str, items: &[T], max: usize) -> Result<(), ApiError> {
    if items.len() <= max {
        return Ok(());
    }
    Err(FormErrors::field(
        field,
        "BASE_TYPE_MAX_LENGTH",
        format!("Must be {max} or fewer in length."),
    )
    .into())
}

/// A channel's topic: at most 1,024 characters.
pub fn channel_topic(topic: &str) -> Result<(), ApiError> {
    chars("topic", topic, 0..=1024)
}

/// A channel's permission overwrites: at most 100 (one per role or member it names).
pub fn permission_overwrites<T>(overwrites: &[T]) -> Result<(), ApiError> {
    items("permission_overwrites", overwrites, 100)
}

/// A guild's description: at most 120 characters.
pub fn guild_description(description: &str) -> Result<(), ApiError> {
    chars("description", description, 0..=120)
}

/// A locale (a guild's `preferred_locale`, the user setting `locale`): a short language tag
/// such as `en-US` or `es-419`.
pub fn locale(field: &str, locale: &str) -> Result<(), ApiError> {
    chars(field, locale, 2..=16)?;
    if locale
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Ok(());
    }
    Err(FormErrors::field(field, "LOCALE_INVALID", "Not a valid locale.").into())
}

/// The user setting `custom_status`: its text at most 128 characters, its emoji's name at most
/// 32 (Discord's limits for both).
pub fn custom_status(status: &serde_json::Value) -> Result<(), ApiError> {
    let text = |key: &str| status.get(key).and_then(serde_json::Value::as_str);
    if let Some(text) = text("text") {
        chars("custom_status.text", text, 0..=128)?;
    }
    if let Some(name) = text("emoji_name") {
        chars("custom_status.emoji_name", name, 0..=32)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_in_characters_and_name_the_field() {
        assert!(chars("name", "ééé", 1..=3).is_ok());
        assert!(chars("name", "éééé", 1..=3).is_err());
        assert!(channel_topic(&"x".repeat(1024)).is_ok());
        assert!(channel_topic(&"x".repeat(1025)).is_err());
        assert!(locale("locale", "es-419").is_ok());
        assert!(locale("locale", "en US").is_err());
        assert!(custom_status(&serde_json::json!({ "text": "x".repeat(129) })).is_err());
    }
}
