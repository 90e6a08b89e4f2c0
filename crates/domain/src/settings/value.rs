//! Generic checks of a setting value: size and nesting depth, measured on the JSON text as
//! received, before any tree is built (a tree of a dense array is many times its text).

use serde_json::Value;

use super::Limits;
use crate::error::FieldError;

/// Nesting depth of a JSON value: scalars are 0, `[]` and `{}` are 1.
pub fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What one pass over well-formed JSON text finds, in constant memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextShape {
    /// Bytes of the text without the whitespace between tokens.
    pub size: usize,
    /// Deepest nesting of arrays and objects (scalars are 0).
    pub depth: usize,
    /// Whether a string or member name holds U+0000 (only possible as the escape `\u0000`),
    /// which PostgreSQL's `jsonb` cannot store.
    pub has_nul: bool,
}

/// Scans JSON text (already known to be well-formed, e.g. a `RawValue`).
pub fn text_shape(text: &str) -> TextShape {
    let bytes = text.as_bytes();
    let mut shape = TextShape::default();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            shape.size += 1;
            match b {
                b'\\' => {
                    if bytes.get(i + 1..i + 6) == Some(b"u0000".as_slice()) {
                        shape.has_nul = true;
                    }
                    // The escaped character cannot end the string.
                    if i + 1 < bytes.len() {
                        shape.size += 1;
                        i += 1;
                    }
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            shape.size += 1;
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    shape.depth = shape.depth.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    shape
}

/// Checks the size and depth limits of a value given as JSON text, and that it can be
/// stored. The size is the text's length without the whitespace between tokens.
///
/// # Errors
/// A [`FieldError`] on field `value` with code `too_large`, `too_deep` or
/// `invalid_character`.
pub fn check_value_text(text: &str, limits: &Limits) -> Result<(), FieldError> {
    let TextShape {
        size,
        depth,
        has_nul,
    } = text_shape(text);
    if depth > limits.max_json_depth {
        return Err(FieldError::new(
            "value",
            "too_deep",
            format!(
                "the value nests {depth} levels deep; at most {} are allowed",
                limits.max_json_depth
            ),
        ));
    }
    if has_nul {
        return Err(FieldError::new(
            "value",
            "invalid_character",
            "strings in the value must not contain the character U+0000",
        ));
    }
    if size > limits.max_value_bytes {
        return Err(FieldError::new(
            "value",
            "too_large",
            format!(
                "the value is {size} bytes (without whitespace between tokens); at most {} are allowed",
                limits.max_value_bytes
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!({})), 1);
        assert_eq!(json_depth(&json!({"a": [1, {"b": 2}]})), 3);
    }

    #[test]
    fn text_depth_matches_tree_depth_and_ignores_brackets_in_strings() {
        for text in [
            r#"1"#,
            r#"{}"#,
            r#"{"a": [1, {"b": 2}]}"#,
            r#"["[[[", {"}": "{"}]"#,
        ] {
            let tree: Value = serde_json::from_str(text).unwrap();
            assert_eq!(text_shape(text).depth, json_depth(&tree), "{text}");
        }
        assert_eq!(text_shape(&nested(5)).depth, 5);
    }

    #[test]
    fn text_size_excludes_whitespace_between_tokens_only() {
        assert_eq!(
            text_shape(r#" { "a" : [ 1 , 2 ] } "#).size,
            r#"{"a":[1,2]}"#.len()
        );
        assert_eq!(text_shape(r#""a b \" c""#).size, r#""a b \" c""#.len());
    }

    #[test]
    fn depth_limit_is_inclusive() {
        let limits = Limits::default();
        assert!(check_value_text(&nested(32), &limits).is_ok());
        assert_eq!(
            check_value_text(&nested(33), &limits).unwrap_err().code,
            "too_deep"
        );
    }

    #[test]
    fn nul_characters_are_refused_anywhere_in_the_value() {
        let limits = Limits::default();
        for text in [
            r#""a\u0000b""#,
            r#"{"k": ["x\u0000"]}"#,
            r#"{"a\u0000": 1}"#,
        ] {
            assert_eq!(
                check_value_text(text, &limits).unwrap_err().code,
                "invalid_character"
            );
        }
        assert!(check_value_text(r#""\\u0000""#, &limits).is_ok());
    }

    #[test]
    fn size_limit_is_inclusive_at_100_kib() {
        let limits = Limits::default();
        // A JSON string has two quotes.
        let exact = format!("\"{}\"", "x".repeat(100 * 1024 - 2));
        let over = format!("\"{}\"", "x".repeat(100 * 1024 - 1));
        assert!(check_value_text(&exact, &limits).is_ok());
        assert_eq!(
            check_value_text(&over, &limits).unwrap_err().code,
            "too_large"
        );
    }
}
