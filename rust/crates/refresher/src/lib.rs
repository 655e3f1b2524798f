//! The Entra ID refresher: the feed (`vorfw-entra`, which knows nothing of firewalls) composed
//! with this host's converge (`vorfw-host`). `vorfw-entra apply` and `vorfw entra apply` use
//! [`host_applier`] to re-apply the request the `apply` module last recorded, with the new list;
//! `vorfw-entra oidc refresh` uses [`host_oidc_applier`] when an OIDC provider's addresses change.

/// Apply an effective list to this host's firewall (see `vorfw_host::reapply`).
pub fn host_applier(prefixes: &[ipnet::IpNet], check: bool) -> Result<vorfw_entra::ApplyReport, String> {
    vorfw_host::reapply(Some(prefixes), check).map(|r| vorfw_entra::ApplyReport {
        changed: r.changed,
        summary: r.line,
        detail: r.detail,
    })
}

/// Re-apply this host's firewall with its OIDC providers' new addresses (their state is already
/// saved; `vorfw-entra oidc refresh`), the Entra ID list as the host holds it.
pub fn host_oidc_applier(check: bool) -> Result<vorfw_entra::ApplyReport, String> {
    vorfw_host::reapply(None, check).map(|r| vorfw_entra::ApplyReport {
        changed: r.changed,
        summary: r.line,
        detail: r.detail,
    })
}
