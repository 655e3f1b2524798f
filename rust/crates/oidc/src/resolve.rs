//! Resolving (feature `fetch`): a provider's names to A and AAAA answers with their TTLs,
//! through the host's own resolvers (the nameservers, timeout and attempts of
//! `/etc/resolv.conf`, or of another file), with hickory-resolver. The answers go to the pure
//! [`crate::update`], which applies the grace period, keeps a name's addresses when its lookup
//! fails, caps the total and refuses special-use addresses.
//!
//! Per name: a lookup error (timeout, SERVFAIL, NXDOMAIN, refused, no server reachable) for
//! either family is a failed lookup (`Err`), so the name keeps its previous addresses; "no
//! records of this type" (NODATA) for one family is an empty part of a good answer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Name, TokioResolver};

use crate::dns::Answer;
use crate::error::{Error, ErrorKind, Result};

/// The host's resolver configuration.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where and how to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverOptions {
    /// The resolv.conf whose `nameserver`s, `timeout` and `attempts` are used.
    pub resolv_conf: PathBuf,
    /// Ask the nameservers on this port instead of 53 (resolv.conf cannot say a port): a test or
    /// lab resolver on loopback.
    pub port: Option<u16>,
    /// Override the file's per-query timeout.
    pub timeout: Option<Duration>,
    /// Override the file's attempts.
    pub attempts: Option<usize>,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions { resolv_conf: PathBuf::from(DEFAULT_RESOLV_CONF), port: None, timeout: None, attempts: None }
    }
}

fn resolver(opts: &ResolverOptions) -> Result<TokioResolver> {
    let path = &opts.resolv_conf;
    let data = std::fs::read(path).map_err(|e| {
        Error::new(ErrorKind::Config, format!("cannot read the resolver configuration {}: {e}", path.display()))
    })?;
    let (config, mut ro) = hickory_resolver::system_conf::parse_resolv_conf(&data)
        .map_err(|e| Error::new(ErrorKind::Config, format!("{}: {e}", path.display())))?;
    let servers: Vec<NameServerConfig> = config
        .name_servers()
        .iter()
        .cloned()
        .map(|mut ns| {
            if let Some(port) = opts.port {
                ns.socket_addr.set_port(port);
            }
            ns
        })
        .collect();
    // Absolute names are asked (a trailing dot), so the search list never applies.
    let config = ResolverConfig::from_parts(None, Vec::new(), servers);
    if let Some(t) = opts.timeout {
        ro.timeout = t;
    }
    if let Some(a) = opts.attempts {
        ro.attempts = a;
    }
    // What the resolvers answer now, not an earlier answer of this process or the hosts file.
    ro.cache_size = 0;
    ro.use_hosts_file = ResolveHosts::Never;
    Ok(TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).with_options(ro).build())
}

/// One family's lookup: the addresses with their TTLs; NODATA is empty; any other error fails.
async fn family(r: &TokioResolver, name: &Name, rt: RecordType) -> std::result::Result<Vec<(IpAddr, u32)>, String> {
    match r.lookup(name.clone(), rt).await {
        Ok(l) => Ok(l
            .record_iter()
            .filter_map(|rec| match rec.data() {
                RData::A(a) => Some((IpAddr::V4(a.0), rec.ttl())),
                RData::AAAA(a) => Some((IpAddr::V6(a.0), rec.ttl())),
                _ => None,
            })
            .collect()),
        Err(e) => match e.proto().map(|p| p.kind()) {
            // NOERROR without records of this type (NODATA): the name has none of this family.
            Some(ProtoErrorKind::NoRecordsFound { response_code: ResponseCode::NoError, .. }) => Ok(Vec::new()),
            Some(ProtoErrorKind::NoRecordsFound { response_code: ResponseCode::NXDomain, .. }) => {
                Err(format!("{rt}: NXDOMAIN (no such name)"))
            }
            Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => Err(format!("{rt}: {response_code}")),
            _ => Err(format!("{rt}: {e}")),
        },
    }
}

/// Resolve every name (A and AAAA, all names at once). `Err` only when the resolver
/// configuration is unusable; each name's failure is in its [`Answer`].
pub fn resolve(names: &BTreeSet<String>, opts: &ResolverOptions) -> Result<BTreeMap<String, Answer>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, format!("cannot start the I/O runtime: {e}")))?;
    rt.block_on(resolve_async(names, opts))
}

/// [`resolve`] for callers inside a tokio runtime.
pub async fn resolve_async(names: &BTreeSet<String>, opts: &ResolverOptions) -> Result<BTreeMap<String, Answer>> {
    let r = resolver(opts)?;
    let mut set = tokio::task::JoinSet::new();
    for n in names {
        let r = r.clone();
        let n = n.clone();
        set.spawn(async move {
            let answer = match Name::from_ascii(format!("{n}.")) {
                Err(e) => Err(format!("not a DNS name: {e}")),
                Ok(name) => {
                    let (a, aaaa) = tokio::join!(family(&r, &name, RecordType::A), family(&r, &name, RecordType::AAAA));
                    match (a, aaaa) {
                        (Ok(mut a), Ok(aaaa)) => {
                            a.extend(aaaa);
                            Ok(a)
                        }
                        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
                        (Err(e), Err(f)) if e == f => Err(e),
                        (Err(e), Err(f)) => Err(format!("{e}; {f}")),
                    }
                }
            };
            (n, answer)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(j) = set.join_next().await {
        let (n, a) = j.map_err(|e| Error::new(ErrorKind::Config, format!("a lookup task failed: {e}")))?;
        out.insert(n, a);
    }
    Ok(out)
}
