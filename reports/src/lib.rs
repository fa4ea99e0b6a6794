//! placeholder
pub mod error;
pub mod results;
pub use error::{Error, Result};
