//! JSON bodies: accepted media types, size limits, and their errors as problem+json
//! (400 malformed, 413 too large, 415 not JSON, 422 wrong shape).

use actix_web::{error::JsonPayloadError, web::JsonConfig};

use crate::error::ApiError;

/// A JSON extractor configuration with `limit` bytes that accepts `application/json` and any
/// `application/*+json` (e.g. `application/merge-patch+json` for PATCH).
pub fn config(limit: usize) -> JsonConfig {
    JsonConfig::default()
        .limit(limit)
        .content_type_required(true)
        .content_type(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        })
        .error_handler(|err, _req| to_api_error(err).into())
}

fn to_api_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::PayloadTooLarge(
            format!("the body is {length} bytes; at most {limit} are accepted"),
        ),
        JsonPayloadError::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("the body is over the limit of {limit} bytes"))
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::Validation(domain::ValidationErrors::single(domain::FieldError::new(
                "",
                "invalid_shape",
                without_quoted_values(&e.to_string()),
            )))
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// serde messages quote the offending input (`invalid type: string "abc"`, ``integer `42` ``);
/// the input may be a secret, so quoted values are elided. Field names (``field `x` ``) stay.
fn without_quoted_values(message: &str) -> String {
    const VALUE_KINDS: [&str; 5] = [
        "integer ",
        "floating point ",
        "character ",
        "boolean ",
        "char ",
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(['"', '`']) {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let quote = &after[..1];
        let Some(end) = after[1..].find(quote) else {
            out.push_str(after);
            return out;
        };
        let is_value = quote == "\"" || VALUE_KINDS.iter().any(|k| out.ends_with(k));
        if is_value {
            out.push_str(quote);
            out.push('…');
            out.push_str(quote);
        } else {
            out.push_str(&after[..end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_quoted_values;

    #[test]
    fn numbers_in_backticks_are_elided_but_field_names_stay() {
        assert_eq!(
            without_quoted_values(
                "invalid type: integer `12345678`, expected a string at `password`"
            ),
            "invalid type: integer `…`, expected a string at `password`"
        );
        assert_eq!(
            without_quoted_values("unknown field `colour`, expected one of `value`, `category`"),
            "unknown field `colour`, expected one of `value`, `category`"
        );
    }

    #[test]
    fn quoted_input_is_elided_but_field_names_stay() {
        assert_eq!(
            without_quoted_values(
                r#"invalid type: string "hunter2", expected a boolean at `enabled`"#
            ),
            r#"invalid type: string "…", expected a boolean at `enabled`"#
        );
    }
}
