//! The Entra ID refresher: the feed (`vorfw-entra`, which knows nothing of firewalls) composed
//! with this host's converge (`vorfw-host`). `vorfw-entra apply` and `vorfw entra apply` use
//! [`host_applier`] to re-apply the request the `apply` module last recorded, with the new list.

/// Apply an effective list to this host's firewall (see `vorfw_host::reapply`).
pub fn host_applier(prefixes: &[ipnet::IpNet], check: bool) -> Result<vorfw_entra::ApplyReport, String> {
    vorfw_host::reapply(Some(prefixes), check).map(|r| vorfw_entra::ApplyReport {
        changed: r.changed,
        summary: r.line,
        detail: r.detail,
    })
}
