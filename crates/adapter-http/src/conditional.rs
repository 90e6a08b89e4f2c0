//! Conditional requests: strong ETags from versions, `If-Match` / `If-None-Match` parsing.

use actix_web::{
    HttpRequest,
    http::header::{self, EntityTag, Header, IfMatch, IfNoneMatch},
};
use domain::settings::Precondition;

use crate::error::ApiError;

/// The strong ETag of a version (`"7"`).
pub fn etag(version: i64) -> EntityTag {
    EntityTag::new_strong(version.to_string())
}

/// The precondition of a write, from `If-Match` / `If-None-Match`: the one mapping of HTTP
/// conditions to the domain's, used by every conditional write. With `required`, a write
/// without one is refused (428).
///
/// # Errors
/// 412 for an `If-Match` that cannot match any version (weak or foreign tags), 428 when
/// required and missing, 400 for an unparseable header.
///
/// The condition of an `If-Match` list holds when *any* tag matches (RFC 9110 13.1.1), by
/// strong comparison: weak tags and tags that are not versions never match and are skipped.
pub fn precondition(req: &HttpRequest, required: bool) -> Result<Precondition, ApiError> {
    if req.headers().contains_key(header::IF_MATCH) {
        let parsed = IfMatch::parse(req)
            .map_err(|_| ApiError::BadRequest("invalid If-Match header".into()))?;
        return match parsed {
            IfMatch::Any => Ok(Precondition::Exists),
            IfMatch::Items(tags) => Precondition::version_in(
                tags.iter()
                    .filter(|t| !t.weak)
                    // A representation that also depends on another layer has the tag
                    // `<version>.<layer version>`; the write is conditioned on `<version>`.
                    .filter_map(|t| t.tag().split('.').next()?.parse::<i64>().ok())
                    .collect(),
            )
            .ok_or(ApiError::PreconditionFailed),
        };
    }
    if req.headers().contains_key(header::IF_NONE_MATCH) {
        let parsed = IfNoneMatch::parse(req)
            .map_err(|_| ApiError::BadRequest("invalid If-None-Match header".into()))?;
        if matches!(parsed, IfNoneMatch::Any) {
            return Ok(Precondition::Absent);
        }
    }
    if required {
        Err(ApiError::PreconditionRequired)
    } else {
        Ok(Precondition::Any)
    }
}

/// Whether a GET's `If-None-Match` matches the current version (then answer 304).
pub fn not_modified(req: &HttpRequest, version: i64) -> bool {
    not_modified_since(req, &etag(version))
}

/// Whether `If-None-Match` names `current` (or `*`).
pub fn not_modified_since(req: &HttpRequest, current: &EntityTag) -> bool {
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(current)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn if_match(value: &str) -> Result<Precondition, ApiError> {
        let req = TestRequest::default()
            .insert_header((header::IF_MATCH, value))
            .to_http_request();
        precondition(&req, false)
    }

    #[test]
    fn one_tag_is_one_version() {
        assert_eq!(if_match(r#""7""#).unwrap(), Precondition::Version(7));
    }

    #[test]
    fn every_listed_version_counts_not_only_the_first() {
        assert_eq!(
            if_match(r#""7", "3", "7""#).unwrap(),
            Precondition::VersionIn(vec![3, 7])
        );
    }

    #[test]
    fn weak_and_foreign_tags_are_skipped() {
        assert_eq!(
            if_match(r#"W/"5", "old", "9""#).unwrap(),
            Precondition::Version(9)
        );
    }

    #[test]
    fn a_list_that_names_no_version_fails_the_precondition() {
        assert!(matches!(
            if_match(r#"W/"5", "a", "b""#),
            Err(ApiError::PreconditionFailed)
        ));
    }

    #[test]
    fn a_tag_that_also_names_another_layer_conditions_on_its_first_part() {
        assert_eq!(if_match(r#""7.12""#).unwrap(), Precondition::Version(7));
    }

    #[test]
    fn a_star_requires_existence() {
        assert_eq!(if_match("*").unwrap(), Precondition::Exists);
    }
}
