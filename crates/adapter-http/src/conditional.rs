//! Conditional requests: strong ETags from versions, `If-Match` / `If-None-Match` parsing.

use actix_web::{
    HttpRequest,
    http::header::{self, EntityTag, Header, IfMatch, IfNoneMatch},
};

use crate::error::ApiError;

/// The strong ETag of a version (`"7"`).
pub fn etag(version: i64) -> EntityTag {
    EntityTag::new_strong(version.to_string())
}

/// What a write request demands of the current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// No condition.
    None,
    /// `If-Match: *`: the resource must exist.
    Exists,
    /// `If-Match: "<v>"`: the resource must be at this version.
    Version(i64),
    /// `If-None-Match: *`: the resource must not exist.
    Absent,
}

/// Reads the write precondition. With `required`, a write without one is refused (428).
///
/// # Errors
/// 412 for an `If-Match` that cannot match any version (weak or foreign tags), 428 when
/// required and missing, 400 for an unparseable header.
pub fn write_condition(req: &HttpRequest, required: bool) -> Result<WriteCondition, ApiError> {
    if req.headers().contains_key(header::IF_MATCH) {
        let parsed = IfMatch::parse(req)
            .map_err(|_| ApiError::BadRequest("invalid If-Match header".into()))?;
        return match parsed {
            IfMatch::Any => Ok(WriteCondition::Exists),
            IfMatch::Items(tags) => tags
                .iter()
                .find(|t| !t.weak)
                .and_then(|t| t.tag().parse::<i64>().ok())
                .map(WriteCondition::Version)
                .ok_or(ApiError::PreconditionFailed),
        };
    }
    if req.headers().contains_key(header::IF_NONE_MATCH) {
        let parsed = IfNoneMatch::parse(req)
            .map_err(|_| ApiError::BadRequest("invalid If-None-Match header".into()))?;
        if matches!(parsed, IfNoneMatch::Any) {
            return Ok(WriteCondition::Absent);
        }
    }
    if required {
        Err(ApiError::PreconditionRequired)
    } else {
        Ok(WriteCondition::None)
    }
}

/// Whether a GET's `If-None-Match` matches the current version (then answer 304).
pub fn not_modified(req: &HttpRequest, version: i64) -> bool {
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => {
            let current = etag(version);
            tags.iter().any(|t| t.weak_eq(&current))
        }
        Err(_) => false,
    }
}
