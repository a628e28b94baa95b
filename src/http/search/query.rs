//! The query string of a message search, checked as Discord checks it: repeatable filters
//! (`author_id=1&author_id=2`, `has=file&has=-image`), `limit` 1 to 25, `offset` up to 9,975,
//! `content` up to 1,024 characters and 16 words; anything else is 50035 naming the field.

use crate::http::error::{ApiError, FormErrors};

const MAX_LIMIT: i64 = 25;
/// Discord's deepest offset.
const MAX_OFFSET: i64 = 9_975;
const MAX_CONTENT: usize = 1_024;
/// How many values a list filter takes (Discord: 100 users, 500 channels).
const MAX_USERS: usize = 100;
const MAX_CHANNELS: usize = 500;
/// How many words `content` may hold once read (`foo-bar` is three: itself and its parts).
/// Each word is a walk through the index, so more is 50035 rather than a slow search.
const MAX_WORDS: usize = 16;
/// Words shorter than this match only themselves; longer ones also the words they start. A
/// one- or two-letter prefix would match a large part of every guild's messages.
const MIN_PREFIX: usize = 3;

/// What a message may have, as `has=` names it (`-` in front: must not have).
const HAS: [&str; 9] = [
    "link", "embed", "file", "image", "video", "sound", "sticker", "poll", "snapshot",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Timestamp,
    Relevance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub content: Option<String>,
    pub author_ids: Vec<i64>,
    pub mentions: Vec<i64>,
    pub channel_ids: Vec<i64>,
    /// `has` values the message must have, and those it must not.
    pub has: Vec<&'static str>,
    pub has_not: Vec<&'static str>,
    pub pinned: Option<bool>,
    pub min_id: Option<i64>,
    pub max_id: Option<i64>,
    pub sort_by: SortBy,
    pub oldest_first: bool,
    pub offset: usize,
    pub limit: usize,
}

impl Search {
    /// The query string's pairs, in order (repeated keys are list filters; for the others the
    /// last one counts). Unknown keys are ignored, as Discord ignores them.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut errors = FormErrors::default();
        let mut search = Search {
            content: None,
            author_ids: Vec::new(),
            mentions: Vec::new(),
            channel_ids: Vec::new(),
            has: Vec::new(),
            has_not: Vec::new(),
            pinned: None,
            min_id: None,
            max_id: None,
            sort_by: SortBy::Timestamp,
            oldest_first: false,
            offset: 0,
            limit: MAX_LIMIT as usize,
        };
        for (key, value) in pairs {
            let value = value.as_str();
            match key.as_str() {
                "content" if value.chars().count() > MAX_CONTENT => errors.add(
                    "content",
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {MAX_CONTENT} or fewer in length."),
                ),
                "content" => search.content = Some(value.to_string()),
                "author_id" => snowflake_into(&mut search.author_ids, key, value, &mut errors),
                "mentions" => snowflake_into(&mut search.mentions, key, value, &mut errors),
                "channel_id" => snowflake_into(&mut search.channel_ids, key, value, &mut errors),
                "min_id" => search.min_id = snowflake(key, value, &mut errors),
                "max_id" => search.max_id = snowflake(key, value, &mut errors),
                "has" => {
                    let (wanted, name) = match value.strip_prefix('-') {
                        Some(name) => (false, name),
                        None => (true, value),
                    };
                    match HAS.iter().find(|known| **known == name) {
                        Some(known) if wanted => search.has.push(known),
                        Some(known) => search.has_not.push(known),
                        None => errors.add(key, "BASE_TYPE_CHOICES", choices(&HAS)),
                    }
                }
                "pinned" => match value {
                    "true" => search.pinned = Some(true),
                    "false" => search.pinned = Some(false),
                    _ => errors.add(key, "BASE_TYPE_BOOLEAN", "Must be either true or false."),
                },
                "sort_by" => match value {
                    "timestamp" => search.sort_by = SortBy::Timestamp,
                    "relevance" => search.sort_by = SortBy::Relevance,
                    _ => errors.add(
                        key,
                        "BASE_TYPE_CHOICES",
                        choices(&["timestamp", "relevance"]),
                    ),
                },
                "sort_order" => match value {
                    "desc" => search.oldest_first = false,
                    "asc" => search.oldest_first = true,
                    _ => errors.add(key, "BASE_TYPE_CHOICES", choices(&["desc", "asc"])),
                },
                "offset" => {
                    if let Some(n) = int(key, value, 0, MAX_OFFSET, &mut errors) {
                        search.offset = n;
                    }
                }
                "limit" => {
                    if let Some(n) = int(key, value, 1, MAX_LIMIT, &mut errors) {
                        search.limit = n;
                    }
                }
                _ => {}
            }
        }
        for (field, count, max) in [
            ("author_id", search.author_ids.len(), MAX_USERS),
            ("mentions", search.mentions.len(), MAX_USERS),
            ("channel_id", search.channel_ids.len(), MAX_CHANNELS),
            ("has", search.has.len() + search.has_not.len(), MAX_USERS),
        ] {
            if count > max {
                errors.add(
                    field,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                );
            }
        }
        errors.into_result()?;
        Ok(search)
    }

    /// The content to look for, unless it is blank (then it asks for nothing).
    pub fn content(&self) -> Option<&str> {
        self.content.as_deref().filter(|c| !c.trim().is_empty())
    }

    /// The filters as one `tsquery` over a message's search vector: `words` (the content, as
    /// [`crate::db::search::words`] read it) and the marker lexemes the migration
    /// `2026-12-05-000040_message_search` puts there (a space, then `a` and the author's id, `m`
    /// and a mentioned user's id, or what the message has). Values of one list filter are
    /// alternatives; the filters are all required. `own_only`: a reader who may not search
    /// others' content (a bot without MESSAGE_CONTENT) finds words only in messages by them
    /// or mentioning them. `None` when nothing is asked of the vector.
    pub fn vector_query(&self, words: Option<&str>, own_only: Option<i64>) -> Option<String> {
        let any = |markers: Vec<String>| {
            (!markers.is_empty()).then(|| format!("({})", markers.join(" | ")))
        };
        let users = |prefix: &str, ids: &[i64]| {
            any(ids.iter().map(|id| format!("' {prefix}{id}'")).collect())
        };
        let mut parts: Vec<String> = Vec::new();
        if let Some(words) = words {
            parts.push(format!("({words})"));
            parts.extend(
                own_only.and_then(|id| any(vec![format!("' a{id}'"), format!("' m{id}'")])),
            );
        }
        parts.extend(users("a", &self.author_ids));
        parts.extend(users("m", &self.mentions));
        parts.extend(any(self
            .has
            .iter()
            .map(|name| format!("' {name}'"))
            .collect()));
        parts.extend(self.has_not.iter().map(|name| format!("!' {name}'")));
        parts.extend(
            self.pinned
                .map(|pinned| if pinned { "' pinned'" } else { "!' pinned'" }.to_string()),
        );
        (!parts.is_empty()).then(|| parts.join(" & "))
    }
}

/// The content's words (`lexemes`, as [`crate::db::search::words`] reads them) as one
/// `tsquery`, all of them required: each quoted so that no character of it is read as an
/// operator, and each of [`MIN_PREFIX`] letters or more also matching as the start of a longer
/// word (`run` finds "running" in any language). 50035 past [`MAX_WORDS`].
pub fn words_query(lexemes: &[String]) -> Result<String, ApiError> {
    if lexemes.len() > MAX_WORDS {
        return Err(FormErrors::field(
            "content",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_WORDS} or fewer words."),
        )
        .into());
    }
    let terms: Vec<String> = lexemes
        .iter()
        .map(|word| {
            let prefix = if word.chars().count() >= MIN_PREFIX {
                ":*"
            } else {
                ""
            };
            let quoted = word.replace('\\', "\\\\").replace('\'', "''");
            format!("'{quoted}'{prefix}")
        })
        .collect();
    Ok(terms.join(" & "))
}

fn choices(values: &[&str]) -> String {
    format!("Value must be one of {{{}}}.", values.join(", "))
}

fn snowflake(field: &str, text: &str, errors: &mut FormErrors) -> Option<i64> {
    match crate::http::snowflake(field, text) {
        Ok(id) => Some(id),
        Err(_) => {
            errors.add(
                field,
                "NUMBER_TYPE_COERCE",
                format!("Value \"{text}\" is not snowflake."),
            );
            None
        }
    }
}

fn snowflake_into(list: &mut Vec<i64>, field: &str, text: &str, errors: &mut FormErrors) {
    list.extend(snowflake(field, text, errors));
}

fn int(field: &str, text: &str, min: i64, max: i64, errors: &mut FormErrors) -> Option<usize> {
    let Ok(n) = text.trim().parse::<i64>() else {
        errors.add(
            field,
            "NUMBER_TYPE_COERCE",
            format!("Value \"{text}\" is not int."),
        );
        return None;
    };
    if n < min {
        errors.add(
            field,
            "NUMBER_TYPE_MIN",
            format!("int value should be greater than or equal to {min}."),
        );
        None
    } else if n > max {
        errors.add(
            field,
            "NUMBER_TYPE_MAX",
            format!("int value should be less than or equal to {max}."),
        );
        None
    } else {
        usize::try_from(n).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<Search, ApiError> {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Search::parse(&pairs)
    }

    #[test]
    fn lists_repeat_and_defaults_hold() {
        let search = parse(&[
            ("author_id", "1"),
            ("author_id", "2"),
            ("has", "file"),
            ("has", "-image"),
            ("sort_order", "asc"),
            ("include_nsfw", "true"),
        ])
        .ok();
        let search = search.as_ref();
        assert_eq!(search.map(|s| s.author_ids.clone()), Some(vec![1, 2]));
        assert_eq!(search.map(|s| s.has.clone()), Some(vec!["file"]));
        assert_eq!(search.map(|s| s.has_not.clone()), Some(vec!["image"]));
        assert_eq!(
            search.map(|s| (s.limit, s.offset, s.oldest_first)),
            Some((25, 0, true))
        );
    }

    #[test]
    fn bad_values_are_form_errors() {
        for query in [
            [("limit", "0")],
            [("limit", "26")],
            [("offset", "9976")],
            [("offset", "x")],
            [("has", "files")],
            [("author_id", "abc")],
            [("sort_by", "size")],
            [("pinned", "yes")],
        ] {
            assert!(matches!(parse(&query), Err(ApiError::Form(_))), "{query:?}");
        }
        let long = "a".repeat(1025);
        assert!(matches!(
            parse(&[("content", &long)]),
            Err(ApiError::Form(_))
        ));
    }

    #[test]
    fn words_are_quoted_and_long_ones_are_prefixes() {
        let words: Vec<String> = ["hello", "it's", "a\\b", "ab"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            words_query(&words).ok().as_deref(),
            Some(r"'hello':* & 'it''s':* & 'a\\b':* & 'ab'")
        );
        let many = vec!["word".to_string(); MAX_WORDS + 1];
        assert!(matches!(words_query(&many), Err(ApiError::Form(_))));
        assert_eq!(
            parse(&[("content", "  ")])
                .ok()
                .and_then(|s| s.content().map(str::to_string)),
            None
        );
    }

    #[test]
    fn filters_become_markers() {
        let search = parse(&[
            ("author_id", "1"),
            ("author_id", "2"),
            ("mentions", "3"),
            ("has", "file"),
            ("has", "-image"),
            ("pinned", "false"),
        ])
        .ok();
        assert_eq!(
            search
                .and_then(|s| s.vector_query(Some("'hi':*"), Some(9)))
                .as_deref(),
            Some(
                "('hi':*) & (' a9' | ' m9') & (' a1' | ' a2') & (' m3') & (' file') \
                 & !' image' & !' pinned'"
            )
        );
        assert_eq!(
            parse(&[]).ok().and_then(|s| s.vector_query(None, Some(9))),
            None
        );
    }
}
