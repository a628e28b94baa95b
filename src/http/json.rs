//! The JSON body extractor. Malformed JSON gets 50109, a body over the limit 40005, and a
//! body of the wrong shape 50035 naming the field, the way Discord reports them.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::{Bytes, Data};
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::{ApiError, FormErrors};
use crate::state::AppState;

pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<Data<AppState>>()
            .map_or(1 << 20, |state| state.config().http.max_json_bytes);
        let body = actix_web::web::Bytes::from_request(req, payload);
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        Box::pin(async move {
            if declared.is_some_and(|len| len > limit) {
                return Err(ApiError::TooLarge);
            }
            let bytes: Bytes = body.await.map_err(|_| ApiError::TooLarge)?;
            if bytes.len() > limit {
                return Err(ApiError::TooLarge);
            }
            parse(&bytes).map(Json)
        })
    }
}

/// For `#[serde(default, deserialize_with = "…")]`: tells a field sent as `null` (`Some(None)`)
/// from one not sent (`None`), as PATCH bodies need. Snowflakes: [`crate::http::ids::nullable`].
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// Parses a body: first as JSON at all, then into `T`, naming the first field that does not fit.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::InvalidJson)?;
    parse_value(value)
}

/// [`parse`] of a value already read as JSON (a multipart body's `payload_json`).
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if let Some(path) = nul_at(&value, "") {
        return Err(nul_error(&path).into());
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut path = dotted(&error.path().to_string());
        let message = error.inner().to_string();
        let (code, message) = match missing_field(&message) {
            Some(field) => {
                path = if path.is_empty() {
                    field
                } else {
                    format!("{path}.{field}")
                };
                ("BASE_TYPE_REQUIRED", "This field is required".to_string())
            }
            None => (type_code(&message), message),
        };
        ApiError::Form(FormErrors::field(&path, code, message))
    })
}

/// The path of the first string (or key) holding U+0000, which PostgreSQL cannot store in text:
/// refused here, once, for every route that reads a JSON body.
fn nul_at(value: &serde_json::Value, path: &str) -> Option<String> {
    let at = |key: &dyn std::fmt::Display| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) => text.contains('\0').then(|| path.to_string()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_at(item, &at(&index))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(at(&key.replace('\0', "")))
            } else {
                nul_at(item, &at(key))
            }
        }),
        _ => None,
    }
}

/// 50035 for a value holding U+0000 (a body field, a header, a query parameter).
pub fn nul_error(field: &str) -> FormErrors {
    FormErrors::field(
        field,
        "STRING_TYPE_INVALID_CHARACTERS",
        "The string must not contain NUL characters.",
    )
}

/// serde's `a[0].b` as Discord's error tree path `a.0.b`; the root is empty.
fn dotted(path: &str) -> String {
    let path = path.replace('[', ".").replace(']', "");
    path.trim_start_matches('.').to_string()
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Discord's code for a value of the wrong type, from what serde expected.
fn type_code(message: &str) -> &'static str {
    let expected = message.rsplit("expected").next().unwrap_or_default();
    if expected.contains("string") {
        "BASE_TYPE_STRING"
    } else if expected.contains("bool") {
        "BASE_TYPE_BOOLEAN"
    } else if ["integer", "number", "i64", "u64", "i32", "u32", "f64"]
        .iter()
        .any(|kind| expected.contains(kind))
    {
        "NUMBER_TYPE_COERCE"
    } else {
        "BASE_TYPE_INVALID"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_paths_follow_discords_tree() {
        assert_eq!(dotted("."), "");
        assert_eq!(
            dotted("read_states[0].message_id"),
            "read_states.0.message_id"
        );
        assert_eq!(dotted("[2].id"), "2.id");
    }

    #[test]
    fn nul_is_found_wherever_it_hides() {
        let value = serde_json::json!({ "a": [1, { "b": "x\u{0}" }], "c": "fine" });
        assert_eq!(nul_at(&value, "").as_deref(), Some("a.1.b"));
        assert_eq!(nul_at(&serde_json::json!({ "c": "fine" }), ""), None);
    }
}
