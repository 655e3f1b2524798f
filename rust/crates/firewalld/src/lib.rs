//! The firewalld backend.
//!
//! A host's [`Policy`](vorfw_core::policy::Policy) becomes owned firewalld objects: one
//! `hash:net` ipset per peer set and address family (named `vorfw-<set>-<4|6>`) and rich rules
//! pairing an owned ipset with a port, in the zones that serve the host's interfaces. Objects
//! are owned by name: ipsets whose name starts with [`PREFIX`], and rich rules whose source is
//! such an ipset. Nothing else is read for change or ever written.
//!
//! [`model`] is pure (desired state, diff, human-readable rendering); [`dbus`] talks to a
//! running firewalld; [`offline`] edits the permanent configuration when it is not running;
//! [`apply`] runs a diff with rollback.

pub mod apply;
pub mod dbus;
pub mod model;
pub mod offline;

pub use model::{Layer, Op, Owned, PREFIX};
