//! Paging by number, newest first: a history pages by version and the audit trail by record.
//! A page is a JSON array; when more follow, a `Link: <...>; rel="next"` header (RFC 8288)
//! gives the URL of the next page, whose `cursor` is the number the page continues below.

use actix_web::{HttpRequest, HttpResponseBuilder, http::header};
use domain::{FieldError, ValidationErrors};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

/// Paging of a history or of the audit trail.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Entries per page (1..=200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Where to continue: from the `Link` header of the previous page.
    #[param(minimum = 1)]
    pub cursor: Option<i64>,
}

impl PageQuery {
    /// The number the page continues below.
    ///
    /// # Errors
    /// 422 `invalid_cursor` for a cursor this API cannot have given.
    pub fn before(&self) -> Result<Option<i64>, ApiError> {
        match self.cursor {
            Some(cursor) if cursor < 1 => Err(ApiError::Validation(ValidationErrors::single(
                FieldError::new(
                    "cursor",
                    "invalid_cursor",
                    "the cursor is not one this API gave",
                ),
            ))),
            cursor => Ok(cursor),
        }
    }

    /// Adds the `Link` to the next page, which continues below `next_before`, when one
    /// follows.
    pub fn link_next(
        &self,
        req: &HttpRequest,
        next_before: Option<i64>,
        response: &mut HttpResponseBuilder,
    ) {
        if let Some(before) = next_before {
            let limit = self
                .limit
                .map(|l| format!("&limit={l}"))
                .unwrap_or_default();
            response.insert_header((
                header::LINK,
                format!("<{}?cursor={before}{limit}>; rel=\"next\"", req.path()),
            ));
        }
    }
}
