//! Pure core of the user-settings service: entities, validation rules, ports and use cases.
//!
//! Nothing here performs I/O. Adapters implement the traits in [`ports`]; the services in
//! [`services`] are generic over them, so they run unchanged against PostgreSQL in production
//! and against mockall mocks in unit tests.

pub mod audit;
pub mod defaults;
pub mod devices;
pub mod error;
pub mod events;
pub mod history;
pub mod ids;
pub mod integrations;
pub mod layers;
pub mod portability;
pub mod ports;
pub mod preferences;
pub mod registry;
pub mod secrets;
pub mod services;
pub mod settings;

pub use error::{FieldError, RepositoryError, ValidationErrors};
pub use ids::UserId;
