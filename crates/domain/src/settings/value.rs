//! Generic checks of a setting value: size and nesting depth.

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

/// Whether any string or member name of the value contains U+0000, which PostgreSQL's
/// `jsonb` cannot store.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// Checks the size and depth limits of a value, and that it can be stored.
///
/// # Errors
/// A [`FieldError`] on field `value` with code `too_large`, `too_deep` or
/// `invalid_character`.
pub fn check_value_shape(value: &Value, limits: &Limits) -> Result<(), FieldError> {
    let depth = json_depth(value);
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
    if contains_nul(value) {
        return Err(FieldError::new(
            "value",
            "invalid_character",
            "strings in the value must not contain the character U+0000",
        ));
    }
    let size = serialized_len(value);
    if size > limits.max_value_bytes {
        return Err(FieldError::new(
            "value",
            "too_large",
            format!(
                "the value is {size} bytes serialized; at most {} are allowed",
                limits.max_value_bytes
            ),
        ));
    }
    Ok(())
}

fn serialized_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to an infallible sink cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |inner, _| json!([inner]))
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!({})), 1);
        assert_eq!(json_depth(&json!({"a": [1, {"b": 2}]})), 3);
        assert_eq!(json_depth(&nested(5)), 5);
    }

    #[test]
    fn depth_limit_is_inclusive() {
        let limits = Limits::default();
        assert!(check_value_shape(&nested(32), &limits).is_ok());
        assert_eq!(
            check_value_shape(&nested(33), &limits).unwrap_err().code,
            "too_deep"
        );
    }

    #[test]
    fn nul_characters_are_refused_anywhere_in_the_value() {
        let limits = Limits::default();
        for value in [
            json!("a\u{0}b"),
            json!({"k": ["x\u{0}"]}),
            json!({"a\u{0}": 1}),
        ] {
            assert_eq!(
                check_value_shape(&value, &limits).unwrap_err().code,
                "invalid_character"
            );
        }
    }

    #[test]
    fn size_limit_is_inclusive_at_100_kib() {
        let limits = Limits::default();
        // A JSON string serializes with two quotes.
        let exact = json!("x".repeat(100 * 1024 - 2));
        let over = json!("x".repeat(100 * 1024 - 1));
        assert!(check_value_shape(&exact, &limits).is_ok());
        assert_eq!(
            check_value_shape(&over, &limits).unwrap_err().code,
            "too_large"
        );
    }
}
