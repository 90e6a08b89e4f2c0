//! HTTP adapter: actix-web routes, authentication and problem+json errors.
