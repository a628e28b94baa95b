//! Lenient number parsing for request bodies: clients send snowflakes and counts as numbers or
//! as strings (`"86400"`, `"3070"`), and optional fields as `null`. Use with
//! `#[serde(default, deserialize_with = "…")]`.

use serde::{de, Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(i64),
    Text(String),
}

impl NumberOrString {
    fn parse<E: de::Error>(self) -> Result<i64, E> {
        match self {
            Self::Number(n) => Ok(n),
            Self::Text(text) => text.trim().parse().map_err(|_| {
                E::custom(format!("invalid type: string {text:?}, expected a number"))
            }),
        }
    }
}

/// A required snowflake or integer.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    NumberOrString::deserialize(d)?.parse()
}

/// An optional snowflake or integer (`null` or absent is `None`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<NumberOrString>::deserialize(d)?
        .map(NumberOrString::parse)
        .transpose()
}

/// An optional permission bitfield: like [`optional`], and an empty string is no permissions
/// (Fermi sends `"permissions": ""` for a role created without any).
pub fn permissions<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<NumberOrString>::deserialize(d)? {
        Some(NumberOrString::Text(text)) if text.trim().is_empty() => Ok(Some(0)),
        other => other.map(NumberOrString::parse).transpose(),
    }
}

/// A snowflake that may be absent (`None`), `null` (`Some(None)`) or set.
pub fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    optional(d).map(Some)
}

/// A list of snowflakes (`null` is empty).
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    Option::<Vec<NumberOrString>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(NumberOrString::parse)
        .collect()
}

/// An optional list of snowflakes: absent is `None`, `null` is empty.
pub fn optional_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
    list(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "optional")]
        max_age: Option<i64>,
        #[serde(default, deserialize_with = "list")]
        roles: Vec<i64>,
    }

    #[test]
    fn numbers_may_be_strings_and_null_is_nothing() {
        let body: Body = serde_json::from_str(r#"{"max_age":"86400","roles":["1",2]}"#).unwrap();
        assert_eq!((body.max_age, body.roles), (Some(86400), vec![1, 2]));
        let body: Body = serde_json::from_str(r#"{"max_age":null,"roles":null}"#).unwrap();
        assert_eq!((body.max_age, body.roles), (None, vec![]));
        assert!(serde_json::from_str::<Body>(r#"{"max_age":"soon"}"#).is_err());
    }

    #[test]
    fn an_empty_permission_string_is_no_permissions() {
        #[derive(Deserialize)]
        struct Role {
            #[serde(default, deserialize_with = "permissions")]
            permissions: Option<i64>,
        }
        let of = |text: &str| {
            serde_json::from_str::<Role>(text)
                .map(|r| r.permissions)
                .ok()
        };
        assert_eq!(of(r#"{"permissions":""}"#), Some(Some(0)));
        assert_eq!(of(r#"{"permissions":"8"}"#), Some(Some(8)));
        assert_eq!(of(r#"{"permissions":null}"#), Some(None));
        assert_eq!(of(r#"{"permissions":"x"}"#), None);
    }
}
