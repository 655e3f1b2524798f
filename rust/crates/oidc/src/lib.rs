//! # vorfw-oidc: egress to any OpenID Connect provider, the pure core
//!
//! VOR Stream's Mid-Tier, Django, Vault and SDK fetch their OIDC provider's discovery document at
//! startup and then talk to the endpoints it names. A host firewall cannot match names, so each
//! provider's hosts must become addresses: from a range file the provider publishes (Google,
//! Okta), Microsoft's service-tag feed (Entra ID, crate `vorfw-entra`), or the host's resolvers.
//! This crate is the part without I/O; time and fetched bytes are passed in:
//!
//! * [`parse_providers`]: `host_firewall_oidc_providers` into [`Provider`]s (`entra`,
//!   `published` google/okta, `dns`), with [`Issuer::discovery_url`];
//! * [`validate_discovery`]: the discovery document into [`Discovery`] (hosts, names, ports);
//!   [`check_redirect`] for the fetcher;
//! * [`parse_google`] + [`google_services`] (goog.json minus cloud.json), [`parse_okta`]: range
//!   files into [`RangeSet`]s, with the Entra feed's plausibility rules;
//! * [`update`]: a `dns` provider's [`DnsState`] folded with one round of answers under a
//!   [`DnsPolicy`], giving a [`DnsReport`];
//! * [`merge_published`]: the Entra feed's update policy (grace, held removals) for a published
//!   [`RangeSet`], into the feed's own `State`;
//! * the state directory's per-provider files ([`ProviderState`], [`ProviderStatus`]), which
//!   the firewall side reads without a network stack.
//!
//! The `fetch` feature (default; off in the workspace dependency) adds the I/O shell:
//! [`discover`] and [`fetch_ranges`] through vorfw-entra's HTTPS client, [`resolve`] through the
//! host's resolvers, [`refresh_provider`] and the `vorfw oidc` command line ([`cli`]).

#[cfg(feature = "fetch")]
mod cli;
mod config;
mod discovery;
mod dns;
mod error;
#[cfg(feature = "fetch")]
mod fetch;
mod names;
mod published;
mod ranges;
#[cfg(feature = "fetch")]
mod refresh;
#[cfg(feature = "fetch")]
mod resolve;
mod state;

#[cfg(feature = "fetch")]
pub use cli::{cli, cli_with, Applier, EXIT_DEGRADED, EXIT_FAILED, EXIT_OK, EXIT_OVERDUE};
#[cfg(feature = "fetch")]
pub use fetch::{
    discover, discover_async, discovery_from_file, fetch_discovery, fetch_discovery_async, fetch_ranges,
    fetch_ranges_async, read_discovery, FetchOptions, FetchedDiscovery, FetchedRanges, OIDC_USER_AGENT,
};
#[cfg(feature = "fetch")]
pub use refresh::{
    discovery_of, fetched_discovery_of, pushed_discovery_path, refresh_provider, Outcome, RefreshOptions,
};
#[cfg(feature = "fetch")]
pub use resolve::{resolve, resolve_async, ResolverOptions, DEFAULT_RESOLV_CONF};
pub use state::{
    load_provider_state, load_provider_status, save_provider_state, save_provider_status, state_path, status_path,
    stored_ids, Health, ProviderState, ProviderStatus, DEFAULT_OIDC_STATE_DIR, PROVIDER_STATE_VERSION,
};

pub use config::{
    derive_id, discovery_url, parse_provider, parse_providers, Addresses, Issuer, Provider, Published, RangeSource,
    GOOGLE_CLOUD_URL, GOOGLE_GOOG_URL, MAX_ID_LEN, OKTA_URL,
};
pub use discovery::{
    check_redirect, validate_discovery, Discovery, DiscoveryLimits, Endpoint, DEFAULT_MAX_DISCOVERY_BYTES,
    DEFAULT_MAX_HOSTS, DEFAULT_MAX_REDIRECTS, ENDPOINT_FIELDS,
};
pub use dns::{
    update, AddressEntry, AddressSets, Answer, DnsCounts, DnsPolicy, DnsReport, DnsState, NameFailure, NameState,
    DNS_STATE_VERSION, MAX_POLICY_DURATION,
};
pub use error::{Error, ErrorKind, Result};
pub use names::{dns_name, https_url, name_and_port, Host, HostPort, HTTPS_PORT};
pub use published::{merge_published, published_change_number, published_tag, PublishedPolicy};
pub use ranges::{
    google_services, okta_cells, outside_ranges, parse_google, parse_okta, split_families, subtract, GoogleFile,
    RangeLimits, RangeSet, DEFAULT_MAX_RANGE_BYTES,
};
