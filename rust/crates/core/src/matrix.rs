//! The VOR Stream port matrix, embedded from `data/port_matrix.json`.
//!
//! That file is the only place port numbers of the matrix are written down; it mirrors the
//! seed's tables row by row and a test checks it against the seed text.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The embedded data file, verbatim.
pub const MATRIX_JSON: &str = include_str!("../../../../data/port_matrix.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Matrix {
    pub services: Vec<Service>,
    pub internal: Vec<InternalRow>,
    pub external: Vec<ExternalRow>,
    pub audiences: Vec<Audience>,
    pub oidc_clients: Vec<String>,
    pub management: ManagementRow,
    pub egress: EgressData,
}

/// Outbound flows that are not rows of the seed's tables but that a host with restricted
/// egress needs: the OIDC provider (Entra ID) for the OIDC clients, DNS and NTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressData {
    pub identity_provider: EgressRow,
    pub dns: EgressRow,
    pub ntp: EgressRow,
    /// The providers of `host_firewall_oidc_providers`: `set` and `id` are the prefixes of each
    /// provider's set key and rule id (`oidc-<provider id>`), `port` the default of its URLs.
    pub oidc_provider: EgressRow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressRow {
    pub id: String,
    /// The address set's key (`entra`, `dns`, `ntp`).
    pub set: String,
    pub port: u16,
    pub protocols: Vec<String>,
    pub purpose: String,
    /// The cloud's name for the destinations (Azure service tag), where there is one.
    #[serde(default)]
    pub service_tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    pub name: String,
    pub group: String,
    #[serde(default = "yes")]
    pub in_seed_mapping: bool,
}

fn yes() -> bool {
    true
}

/// Conditions written in the seed: which database is selected, and whether Vault has dynamic
/// secrets enabled for the destination service.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub database: Option<String>,
    pub vault_dynamic_secrets: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalRow {
    pub id: String,
    pub service: String,
    pub port: u16,
    pub protocols: Vec<String>,
    pub purpose: String,
    pub source: String,
    #[serde(default)]
    pub when: When,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalRow {
    pub id: String,
    pub audience: String,
    pub group: String,
    pub port: u16,
    pub protocols: Vec<String>,
    pub purpose: String,
    pub notes: String,
    pub optional: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Audience {
    pub name: String,
    pub variables: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManagementRow {
    pub id: String,
    pub port: u16,
    pub protocols: Vec<String>,
    pub purpose: String,
}

impl Matrix {
    /// The matrix compiled into this binary.
    pub fn embedded() -> &'static Matrix {
        static M: OnceLock<Matrix> = OnceLock::new();
        M.get_or_init(|| {
            let m: Matrix =
                serde_json::from_str(MATRIX_JSON).unwrap_or_else(|e| panic!("embedded port matrix is invalid: {e}"));
            if let Err(e) = m.check() {
                panic!("embedded port matrix is inconsistent: {e}");
            }
            m
        })
    }

    /// Internal consistency: unique ids, known services, known protocols.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = BTreeMap::new();
        let all_ids = self
            .internal
            .iter()
            .map(|r| &r.id)
            .chain(self.external.iter().map(|r| &r.id))
            .chain(std::iter::once(&self.management.id))
            .chain(self.egress_rows().map(|r| &r.id));
        for id in all_ids {
            if ids.insert(id.clone(), ()).is_some() {
                return Err(format!("duplicate row id {id}"));
            }
        }
        for r in &self.internal {
            for s in [&r.service, &r.source] {
                if self.service(s).is_none() {
                    return Err(format!("row {} names unknown service {s}", r.id));
                }
            }
        }
        for r in &self.external {
            if self.audience(&r.audience).is_none() {
                return Err(format!("row {} names unknown audience {}", r.id, r.audience));
            }
        }
        let protos = self
            .internal
            .iter()
            .flat_map(|r| &r.protocols)
            .chain(self.external.iter().flat_map(|r| &r.protocols))
            .chain(&self.management.protocols)
            .chain(self.egress_rows().flat_map(|r| &r.protocols));
        for p in protos {
            if p != "tcp" && p != "udp" {
                return Err(format!("unknown protocol {p}"));
            }
        }
        Ok(())
    }

    /// The egress rows: identity provider (Entra ID), DNS, NTP, the other OIDC providers.
    pub fn egress_rows(&self) -> impl Iterator<Item = &EgressRow> {
        [&self.egress.identity_provider, &self.egress.dns, &self.egress.ntp, &self.egress.oidc_provider].into_iter()
    }

    /// Whether a host running these services signs users in with OIDC.
    pub fn is_oidc_client<S: AsRef<str>>(&self, services: &[S]) -> bool {
        services.iter().any(|s| self.oidc_clients.iter().any(|c| c == s.as_ref()))
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn audience(&self, name: &str) -> Option<&Audience> {
        self.audiences.iter().find(|a| a.name == name)
    }

    /// Every rule id the matrix defines.
    pub fn row_ids(&self) -> impl Iterator<Item = &str> {
        self.internal
            .iter()
            .map(|r| r.id.as_str())
            .chain(self.external.iter().map(|r| r.id.as_str()))
            .chain(std::iter::once(self.management.id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_matrix_loads_and_is_consistent() {
        let m = Matrix::embedded();
        assert_eq!(m.internal.len(), 29);
        assert_eq!(m.external.len(), 6);
        assert!(m.check().is_ok());
    }
}
