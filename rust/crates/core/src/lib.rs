//! Pure planning core of vorstream.firewall.
//!
//! Nothing in this crate performs I/O: the port matrix is embedded at build time, the
//! inventory arrives as already-parsed JSON, and name resolution is a function passed in
//! by the caller. Everything here is deterministic and unit-testable.

pub mod error;
pub mod inventory;
pub mod matrix;
pub mod options;
pub mod plan;
pub mod policy;
pub mod render;
pub mod verify;
pub mod wire;

pub use error::Error;
pub use inventory::Inventory;
pub use matrix::Matrix;
pub use plan::{plan, HostPlan, Plans, Proto, Rule};
