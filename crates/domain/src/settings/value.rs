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

/// Checks the size and depth limits of a value.
///
/// # Errors
/// A [`FieldError`] on field `value` with code `too_large` or `too_deep`.
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
