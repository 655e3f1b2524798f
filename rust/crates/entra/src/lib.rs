//! # vorfw-entra: the Microsoft Entra ID address feed
//!
//! VOR Stream's Mid-Tier, Django, Vault and SDK sign users in with OpenID Connect against
//! Microsoft Entra ID. Microsoft publishes Entra ID's addresses weekly as the service tag
//! `AzureActiveDirectory` in the "Azure IP Ranges and Service Tags" JSON file, under a URL that
//! changes every week. This crate finds and downloads that file (or reads a local copy),
//! validates it against the last applied list, and keeps an effective allow-list:
//!
//! * [`fetch`]: discovery from Microsoft's download details page, an explicit or mirror URL, or a
//!   local file; HTTPS via rustls (pure-Rust crypto, no OpenSSL, no C compiler), a User-Agent,
//!   proxies from the environment, time limits, bounded retries, a body cap.
//! * [`parse`] and [`extract`]: the JSON, tolerant of format drift, strict about CIDRs.
//! * [`validate_and_merge`]: cloud, tags, CIDRs, non-empty, the [`plausible`] limits; additions
//!   at once, removals after a grace period, mass removals and removals from a lower changeNumber
//!   held until later files confirm them.
//! * [`refresh`] / [`refresh_with`]: the whole cycle against a state directory, with atomic
//!   writes, a status file for monitoring, and a hook to apply the list to a firewall before the
//!   state is committed.
//! * [`cli`]: the `vorfw-entra` command (`fetch`, `show`, `diff`, `apply`, `status`); the
//!   binaries (`vorfw-refresher`'s `vorfw-entra`, and `vorfw entra`) pass [`cli_with`] an
//!   [`Applier`] that converges the host firewall.
//!
//! The feed knows nothing of firewalls. Its network stack (reqwest, rustls, tokio), the refresh
//! cycle and the command line are the `fetch` feature (default). Without it the crate is the
//! pure part: the file model, validation and the update policy, and the owner of the state
//! directory's format, which the host side reads with [`load_state`] and [`State::effective`]
//! (`vorfw-host` depends on it with `default-features = false`, so the firewall modules carry no
//! network stack).

#[cfg(feature = "fetch")]
mod cli;
mod config;
mod error;
#[cfg(feature = "fetch")]
mod fetch;
mod merge;
pub mod metrics;
mod model;
pub mod plausible;
#[cfg(feature = "fetch")]
mod refresh;
mod state;
pub mod time;

#[cfg(feature = "fetch")]
pub use cli::{cli, cli_with, Applier, ApplyReport, EXIT_FAILED, EXIT_HELD, EXIT_OK, EXIT_STALE};
pub use config::{
    FeedConfig, Limits, ProxyMode, Source, DEFAULT_HOLD_REFRESHES, DEFAULT_LINK_PREFIX, DEFAULT_MAX_BYTES,
    DEFAULT_STATE_DIR, DEFAULT_TAG, DEFAULT_USER_AGENT,
};
pub use error::{Error, ErrorKind, Result};
#[cfg(feature = "fetch")]
pub use fetch::{
    client, client_builder, client_no_redirects, fetch, fetch_async, find_download_link, get_manual, tls_config,
    Fetched, Got,
};
pub use merge::{validate_and_merge, Diff, GraceEntry};
pub use model::{
    content_hash, extract, extract_detailed, parse, parse_prefix, Cloud, ServiceTag, ServiceTags, TagInfo,
    TagProperties,
};
#[cfg(feature = "fetch")]
pub use refresh::{refresh, refresh_with, summary, Outcome};
/// The HTTP client crate, for callers of [`client_builder`] and [`get_manual`] (the OIDC fetcher).
#[cfg(feature = "fetch")]
pub use reqwest;
pub use state::{
    atomic_write, load_state, load_status, lock_dir, save_state, write_outputs, write_status, Condition, Counts,
    DirLock, HeldStatus, HistoryEntry, Hold, HoldReason, NewestFile, OutputPaths, PrefixEntry, State, Status,
    HISTORY_LEN, JSON_FILE, STATE_FILE, STATUS_FILE, TEXT_FILE,
};
