//! The nftables backend, for hosts where neither firewalld nor ufw is active.
//!
//! The policy becomes one table of our own, `inet vorstream`: a named interval set per peer set
//! and address family, and an input chain (policy drop) that accepts loopback, established
//! traffic, the ICMP that IP needs, and exactly the plan's ports from those sets; everything
//! else is rejected (admin-prohibited, so peers fail fast). The table is replaced in one atomic
//! `nft -f` transaction and persisted in a file that the boot-time nftables configuration
//! includes. No other table is ever read for change or written.

pub mod apply;
pub mod model;

pub use model::{script, TABLE};
