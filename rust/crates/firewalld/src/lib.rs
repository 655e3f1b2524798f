//! The firewalld backend.
//!
//! A host's [`Policy`](vorfw_core::policy::Policy) becomes owned firewalld objects: one
//! `hash:net` ipset per peer set and address family (named `vorfw-<set>-<4|6>`) and rich rules
//! pairing an owned ipset with a port, in the zones that serve the host's interfaces; outbound,
//! the policy object [`EGRESS_POLICY`] (HOST → ANY, firewalld 0.9 or later) whose rich rules
//! pair an owned ipset (as destination) with a port, and whose target is REJECT when egress is
//! restricted. Objects are owned by name: ipsets whose name starts with [`PREFIX`], rich rules
//! whose source is such an ipset, and the policy object with all its rules. Nothing else is
//! read for change or ever written.
//!
//! [`model`] is pure (desired state, diff, human-readable rendering); [`dbus`] talks to a
//! running firewalld; [`offline`] edits the permanent configuration when it is not running;
//! [`apply`] runs a diff with rollback.

pub mod apply;
pub mod dbus;
pub mod model;
pub mod offline;

pub use model::{Layer, Op, Owned, EGRESS_POLICY, PREFIX};
