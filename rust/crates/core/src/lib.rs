//! Pure planning core of vorstream.firewall.
//!
//! Nothing in this crate performs I/O: the port matrix is embedded at build time, the
//! inventory arrives as already-parsed JSON, and name resolution is a function passed in
//! by the caller. Everything here is deterministic and unit-testable.
//!
//! The stages, each with one type:
//!
//! ```text
//!  inventory + matrix ──plan()──▶ Plans            the controller's plan of the fleet
//!                                   │                (render: flows, markdown, csv, mermaid;
//!                                   │                 report: the HTML sign-off page)
//!                         Fleet::from_plans
//!                                   ▼
//!                                 Fleet            the contract: each peer set once, an
//!                                   │              Entry per host naming its sets (JSON)
//!                          Fleet::request(host)
//!                                   ▼
//!                                 Request          one host's rules and the sets they use,
//!                                   │              versioned (REQUEST_FORMAT), on the host
//!             Policy::for_host(request, HostFacts) ◀── what only the host knows: its Entra
//!                                   ▼                   ID list, resolvers, the controller
//!                                 Policy           address sets and accepts per family;
//!                                                  each backend renders it (vorfw-host)
//! ```

pub mod backend;
pub mod cloud;
pub mod diagram;
pub mod error;
pub mod inventory;
pub mod matrix;
pub mod options;
pub mod plan;
pub mod policy;
pub mod render;
pub mod report;
pub mod request;
pub mod verify;

pub use backend::{Backend, Report};
pub use error::Error;
pub use inventory::Inventory;
pub use matrix::Matrix;
pub use plan::{plan, HostPlan, Plans, Rule};
pub use policy::{HostFacts, Policy};
pub use request::{BackendKind, EgressMode, Fleet, Proto, Request};
