//! placeholder
pub mod charts;
pub mod error;
pub mod report;
pub mod results;
pub use error::{Error, Result};
