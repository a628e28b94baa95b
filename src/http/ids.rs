//! Lenient number parsing for request bodies: clients send snowflakes and counts as numbers or
//! as strings (`"86400"`, `"3070"`), and optional fields as `null`. Use with
//! `#[serde(default, deserialize_with = "…")]`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// A number, or a string holding one. Read straight from the input (no buffering of each value
/// to try it as one type and then another): long id lists cost linear time.
struct NumberOrString(i64);

impl<'de> Deserialize<'de> for NumberOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor {
            empty_is_zero: false,
        })
        .map(NumberOrString)
    }
}

/// A permission bitfield: a [`NumberOrString`] where an empty string is no permissions.
struct Bitfield(i64);

impl<'de> Deserialize<'de> for Bitfield {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor {
            empty_is_zero: true,
        })
        .map(Bitfield)
    }
}

struct NumberVisitor {
    /// `""` reads as 0 (permission fields) instead of an error.
    empty_is_zero: bool,
}

impl Visitor<'_> for NumberVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<i64, E> {
        Ok(n)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<i64, E> {
        i64::try_from(n).map_err(|_| E::custom(format!("invalid value: {n}, expected a number")))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<i64, E> {
        if self.empty_is_zero && text.trim().is_empty() {
            return Ok(0);
        }
        text.trim()
            .parse()
            .map_err(|_| E::custom(format!("invalid type: string {text:?}, expected a number")))
    }
}

/// A required snowflake or integer.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(NumberOrString::deserialize(d)?.0)
}

/// An optional snowflake or integer (`null` or absent is `None`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<NumberOrString>::deserialize(d)?.map(|n| n.0))
}

/// An optional permission bitfield: like [`optional`], and an empty string is no permissions
/// (Fermi sends `"permissions": ""` for a role created without any).
pub fn permissions<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Bitfield>::deserialize(d)?.map(|n| n.0))
}

/// A snowflake that may be absent (`None`), `null` (`Some(None)`) or set.
pub fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    optional(d).map(Some)
}

/// A list of snowflakes (`null` is empty).
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    Ok(Option::<Vec<NumberOrString>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.0)
        .collect())
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
