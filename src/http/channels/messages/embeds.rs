//! The shape check for embeds sent with a message: Discord's limits on counts and lengths.
//! Embeds are stored as given (with `type: "rich"` when they name none), so what a client sent
//! is what every reader gets back.

use serde_json::{json, Value};

use crate::http::error::{ApiError, FormErrors};

const MAX_EMBEDS: usize = 10;
const MAX_FIELDS: usize = 25;
/// The sum of all text in all embeds of one message.
const MAX_TOTAL: usize = 6000;

/// Checks `embeds`; the list to store.
pub fn check(mut embeds: Vec<Value>) -> Result<Value, ApiError> {
    let mut errors = FormErrors::default();
    if embeds.len() > MAX_EMBEDS {
        errors.add(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_EMBEDS} or fewer in length."),
        );
        return Err(errors.into());
    }
    let mut total = 0;
    for (index, embed) in embeds.iter_mut().enumerate() {
        let path = format!("embeds.{index}");
        let Some(fields) = embed.as_object_mut() else {
            errors.add(
                &path,
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            );
            continue;
        };
        fields.entry("type").or_insert(json!("rich"));
        let mut check_text = |name: &str, value: Option<&Value>, max: usize| {
            total += text(&mut errors, &format!("{path}.{name}"), value, max);
        };
        check_text("title", fields.get("title"), 256);
        check_text("description", fields.get("description"), 4096);
        check_text("url", fields.get("url"), 2048);
        let footer = fields.get("footer").and_then(|f| f.get("text"));
        check_text("footer.text", footer, 2048);
        let author = fields.get("author").and_then(|a| a.get("name"));
        check_text("author.name", author, 256);
        match fields.get("fields") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) if list.len() > MAX_FIELDS => errors.add(
                &format!("{path}.fields"),
                "BASE_TYPE_MAX_LENGTH",
                format!("Must be {MAX_FIELDS} or fewer in length."),
            ),
            Some(Value::Array(list)) => {
                for (n, field) in list.iter().enumerate() {
                    let field_path = format!("{path}.fields.{n}");
                    for (name, max) in [("name", 256), ("value", 1024)] {
                        let value = field.get(name);
                        if value.is_none_or(Value::is_null) {
                            errors.add(
                                &format!("{field_path}.{name}"),
                                "BASE_TYPE_REQUIRED",
                                "This field is required",
                            );
                        }
                        total += text(&mut errors, &format!("{field_path}.{name}"), value, max);
                    }
                }
            }
            Some(_) => errors.add(
                &format!("{path}.fields"),
                "LIST_TYPE_CONVERT",
                "Only iterables may be used in a ListType",
            ),
        }
        if let Some(color) = fields.get("color").filter(|c| !c.is_null()) {
            if color.as_u64().is_none_or(|c| c > 0xFF_FF_FF) {
                errors.add(
                    &format!("{path}.color"),
                    "NUMBER_TYPE_MAX",
                    "int value should be less than or equal to 16777215.",
                );
            }
        }
    }
    if total > MAX_TOTAL {
        errors.add(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            format!("Embed size exceeds maximum size of {MAX_TOTAL}"),
        );
    }
    errors.into_result()?;
    Ok(Value::Array(embeds))
}

/// Checks one optional text field; its length in characters.
fn text(errors: &mut FormErrors, path: &str, value: Option<&Value>, max: usize) -> usize {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::String(text)) => {
            let length = text.chars().count();
            if length > max {
                errors.add(
                    path,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                );
            }
            length
        }
        Some(other) => {
            errors.add(
                path,
                "BASE_TYPE_STRING",
                format!("Could not interpret \"{other}\" as string."),
            );
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_keep_their_shape_and_get_a_type() {
        let stored = check(vec![
            json!({"title": "t", "fields": [{"name": "a", "value": "b"}]}),
        ])
        .unwrap();
        assert_eq!(stored[0]["type"], "rich");
        assert_eq!(stored[0]["fields"][0]["value"], "b");
        assert!(check(vec![json!("nope")]).is_err());
        assert!(check(vec![json!({"title": "x".repeat(257)})]).is_err());
        assert!(check(vec![json!({"fields": [{"name": "a"}]})]).is_err());
        assert!(check(vec![json!({"color": -1})]).is_err());
        let big = json!({"description": "x".repeat(4000)});
        assert!(check(vec![big.clone(), big]).is_err(), "over 6000 in total");
    }
}
