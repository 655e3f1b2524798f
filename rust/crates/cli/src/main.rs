//! `vorfw`: plan VOR Stream host firewalls from an Ansible inventory.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{Read, Write};
use vorfw_core::{render, Inventory, Matrix};

#[derive(Parser)]
#[command(name = "vorfw", version, about = "Plan and check VOR Stream host firewalls from an Ansible inventory")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compute every host's firewall plan from an inventory and the VOR Stream port matrix.
    Plan(PlanArgs),
    /// Print exactly what one backend would own on one host: the nft script, the firewalld
    /// ipsets, rich rules and egress policy, or the ufw rules (for review and sign-off).
    Render(RenderArgs),
    /// Write the sign-off report: one self-contained HTML page with the flows as a diagram,
    /// the rules per service and per host, probe results and changes against an older plan.
    Report(ReportArgs),
    /// Print the embedded port matrix data file.
    Matrix,
    /// Microsoft Entra ID (AzureActiveDirectory service tag) prefixes: fetch, show, diff, apply, status.
    #[command(disable_help_flag = true)]
    Entra {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// OIDC provider egress: discover, resolve, diff, show, status (and refresh, for the timer).
    #[command(disable_help_flag = true)]
    Oidc {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per allowed flow: host, in|out, tcp|udp, port, peer CIDR, purpose, rule ids.
    Flows,
    /// The plans exactly as the modules consume them.
    Json,
    /// Per-host tables for security sign-off.
    Markdown,
    /// The flows as CSV with a header.
    Csv,
    /// The deployment's flows as a Mermaid diagram, hosts grouped by service.
    Mermaid,
    /// Per-host rule counts (for very large inventories).
    Summary,
    /// Azure: an ARM template of application security groups (one per group) and NSGs.
    AzureNsg,
    /// AWS: security groups with group-to-group rules as amazon.aws.ec2_security_group takes
    /// them, and the Entra ID prefix lists.
    AwsSg,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum NsgModeArg {
    /// One NSG per subnet (--subnet; default: one NSG for every group).
    Subnet,
    /// One NSG per group.
    Service,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum ExternalArg {
    /// External audiences' CIDRs are sources in the groups' rules.
    Group,
    /// External audiences are left to a perimeter firewall (listed under `perimeter`).
    Perimeter,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum EgressArg {
    /// From the hosts: restricted when every host's host_firewall_egress is.
    Auto,
    Open,
    Restricted,
}

/// Options of the cloud formats (azure-nsg, aws-sg).
#[derive(clap::Args)]
struct CloudArgs {
    /// Azure: one NSG per subnet or per group.
    #[arg(long, value_enum, default_value_t = NsgModeArg::Subnet)]
    nsg_mode: NsgModeArg,
    /// Azure, --nsg-mode subnet: a subnet's NSG and the inventory groups it holds
    /// (NAME=GROUP,GROUP; repeatable).
    #[arg(long, value_name = "NAME=GROUPS")]
    subnet: Vec<String>,
    /// Where the external audiences' rules go.
    #[arg(long, value_enum, default_value_t = ExternalArg::Group)]
    external: ExternalArg,
    /// Cloud egress rules: the plan's outbound flows and the Entra ID egress (restricted), or
    /// one allow-all rule (open).
    #[arg(long, value_enum, default_value_t = EgressArg::Auto)]
    egress: EgressArg,
    /// AWS: rules per security group and direction the account allows.
    #[arg(long, default_value_t = vorfw_core::cloud::AWS_MAX_RULES)]
    aws_rules_quota: usize,
    /// AWS: max_entries of the Entra ID prefix lists (each reference counts as that many rules).
    #[arg(long, default_value_t = vorfw_core::cloud::AWS_DEFAULT_PREFIX_LIST_ENTRIES)]
    aws_prefix_list_entries: usize,
    /// The inventory groups that are cloud groups (comma-separated; default: every group the
    /// plan's rules name). A rule naming a group left out is an error.
    #[arg(long, value_name = "GROUPS", value_delimiter = ',')]
    cloud_groups: Vec<String>,
    /// Azure: a service-tag file (ServiceTags_*.json) the identity provider's tag must exist in.
    #[arg(long, value_name = "FILE")]
    service_tags: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct PlanArgs {
    #[command(flatten)]
    inv: InventoryArgs,
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Flows)]
    format: Format,
    /// Only print these hosts (comma-separated names); peers still come from the whole inventory.
    #[arg(short = 'l', long, value_name = "HOSTS")]
    limit: Option<String>,
    #[command(flatten)]
    cloud: CloudArgs,
}

/// Where the inventory comes from (shared by `plan` and `render`).
#[derive(clap::Args)]
struct InventoryArgs {
    /// Inventory: an inventory source Ansible understands (INI, YAML, directory, plugin
    /// config; repeatable), or a file with the JSON of `ansible-inventory --list` (`-` for stdin).
    #[arg(short = 'i', long = "inventory", required = true, value_name = "INVENTORY")]
    inventory: Vec<String>,
    /// Override variables on every host, as `ansible-playbook -e` (KEY=VALUE, JSON, @file.json).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    extra_vars: Vec<String>,
    /// The ansible-inventory program to run.
    #[arg(long, env = "VORFW_ANSIBLE_INVENTORY", default_value = "ansible-inventory")]
    ansible_inventory: String,
}

#[derive(clap::Args)]
struct ReportArgs {
    #[command(flatten)]
    inv: InventoryArgs,
    /// The HTML file to write (`-` for stdout).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: std::path::PathBuf,
    /// An older plan (`vorfw plan --format json`): the report lists the rules added and removed since.
    #[arg(long, value_name = "OLD_PLAN.json")]
    against: Option<std::path::PathBuf>,
    /// Probe results: a JSON object of source host → the verify module's result (or its `results`).
    #[arg(long, value_name = "RESULTS.json")]
    verify: Option<std::path::PathBuf>,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum RenderBackend {
    Firewalld,
    Ufw,
    Nftables,
}

#[derive(clap::Args)]
struct RenderArgs {
    #[command(flatten)]
    inv: InventoryArgs,
    #[arg(long, value_enum)]
    backend: RenderBackend,
    /// The inventory host to render.
    #[arg(long, value_name = "HOST")]
    host: String,
    /// The controller's address as the host sees it: with host_firewall_management_sources
    /// unset, the lockout guard admits SSH from it (left out when not given).
    #[arg(long, value_name = "ADDRESS")]
    controller: Option<std::net::IpAddr>,
    /// The Entra ID list the host holds (repeatable or comma-separated CIDRs; default: none yet).
    #[arg(long, value_name = "CIDRS", value_delimiter = ',')]
    entra_prefix: Vec<ipnet::IpNet>,
    /// An OIDC provider's addresses the host holds, as `ID=CIDR` (repeatable; the provider's
    /// URLs' port: the matrix's default), for host_firewall_oidc_providers.
    #[arg(long, value_name = "ID=CIDR")]
    oidc_address: Vec<String>,
    /// The host's resolvers, for restricted egress without host_firewall_dns_servers.
    #[arg(long, value_name = "ADDRESSES", value_delimiter = ',')]
    nameserver: Vec<std::net::IpAddr>,
    /// firewalld zones to render the rich rules in.
    #[arg(long, value_name = "ZONE", default_value = "public")]
    zone: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    if let Cmd::Entra { args } = &cli.cmd {
        let mut argv = vec!["vorfw entra".to_string()];
        argv.extend(args.iter().cloned());
        std::process::exit(vorfw_entra::cli_with(argv, Some(&vorfw_refresher::host_applier)));
    }
    if let Cmd::Oidc { args } = &cli.cmd {
        let mut argv = vec!["vorfw oidc".to_string()];
        argv.extend(args.iter().cloned());
        std::process::exit(vorfw_oidc::cli(argv));
    }
    match run(cli) {
        Ok(out) => {
            let mut so = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = so.write_all(out.as_bytes()).and_then(|_| so.flush());
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "vorfw: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<String> {
    match cli.cmd {
        Cmd::Matrix => Ok(vorfw_core::matrix::MATRIX_JSON.to_string()),
        Cmd::Plan(a) => plan(a),
        Cmd::Render(a) => render_host(a),
        Cmd::Report(a) => report(a),
        Cmd::Entra { .. } | Cmd::Oidc { .. } => unreachable!("handled in main"),
    }
}

fn load_inventory(a: &InventoryArgs) -> Result<serde_json::Value> {
    // A single `-` or a file holding `ansible-inventory --list` JSON is read directly;
    // anything else is handed to ansible-inventory, which understands every inventory format.
    if let [one] = a.inventory.as_slice() {
        if one == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading the inventory from stdin")?;
            return serde_json::from_str(&s).context("stdin is not the JSON of `ansible-inventory --list`");
        }
        let p = std::path::Path::new(one);
        if p.is_file() {
            let text = std::fs::read(p).with_context(|| format!("reading {one}"))?;
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
                if vorfw_shell::is_inventory_list(&v) {
                    return Ok(v);
                }
            }
        } else if !p.exists() && !one.contains(',') {
            bail!("inventory {one}: no such file or directory");
        }
    }
    vorfw_shell::ansible_inventory(&a.ansible_inventory, &a.inventory).map_err(anyhow::Error::msg)
}

/// Every host's plan, warnings printed to stderr.
fn plans(a: &InventoryArgs) -> Result<vorfw_core::Plans> {
    let json = load_inventory(a)?;
    let mut inv = Inventory::from_ansible_json(&json)?;
    let extra = vorfw_shell::extra_vars(&a.extra_vars).map_err(anyhow::Error::msg)?;
    inv.override_vars(&extra);
    let mut resolve = vorfw_shell::resolve;
    let plans = vorfw_core::plan(&inv, Matrix::embedded(), &mut resolve)?;
    for w in &plans.warnings {
        let _ = writeln!(std::io::stderr(), "vorfw: warning: {w}");
    }
    Ok(plans)
}

fn render_host(a: RenderArgs) -> Result<String> {
    use vorfw_core::Backend;
    let plans = plans(&a.inv)?;
    let Some(h) = plans.hosts.iter().find(|h| h.name == a.host) else {
        bail!("--host: host {} is not in the inventory", a.host);
    };
    // The same path as on the host: the contract, the request, the policy, the backend.
    let req = vorfw_core::Fleet::from_plans(&plans, [h]).request(&a.host)?;
    let mut oidc: std::collections::BTreeMap<String, vorfw_core::policy::OidcAddresses> = Default::default();
    for x in &a.oidc_address {
        let (id, net) = x
            .split_once('=')
            .and_then(|(id, n)| Some((id, n.trim().parse::<ipnet::IpNet>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("--oidc-address: '{x}' is not ID=CIDR"))?;
        oidc.entry(id.to_string()).or_default().nets.push(net);
    }
    let facts = vorfw_core::HostFacts {
        entra: (!a.entra_prefix.is_empty()).then(|| a.entra_prefix.clone()),
        nameservers: a.nameserver.clone(),
        controller: a.controller,
        oidc,
    };
    let policy = vorfw_core::Policy::for_host(&req, &facts)?;
    let backend: Box<dyn Backend> = match a.backend {
        RenderBackend::Nftables => Box::new(vorfw_nftables::NftablesBackend::default()),
        RenderBackend::Ufw => Box::new(vorfw_ufw::UfwBackend::default()),
        RenderBackend::Firewalld => Box::new(vorfw_firewalld::FirewalldBackend {
            target: None,
            zones: a.zone.clone(),
            remove_services: req.remove_zone_services.clone(),
        }),
    };
    let mut out = format!("# vorstream.firewall: {} on host {} ({})\n", backend.kind(), req.name, backend.what());
    for w in &policy.warnings {
        out.push_str(&format!("# warning: {w}\n"));
    }
    out.push_str(&backend.render(&policy));
    Ok(out)
}

/// A JSON file, with its name in the error.
fn read_json(p: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", p.display()))
}

fn report(a: ReportArgs) -> Result<String> {
    use vorfw_core::report::{html, Extras, VerifyResults};
    let against = match &a.against {
        Some(p) => Some(
            serde_json::from_value::<vorfw_core::Fleet>(read_json(p)?)
                .with_context(|| format!("--against {}: not a plan of `vorfw plan --format json`", p.display()))?,
        ),
        None => None,
    };
    let verify = a
        .verify
        .as_ref()
        .map(|p| VerifyResults::from_json(&read_json(p)?).with_context(|| format!("--verify {}", p.display())))
        .transpose()?;
    let plans = plans(&a.inv)?;
    let page = html(&plans, Extras { against: against.as_ref(), verify: verify.as_ref() });
    if a.output.as_os_str() == "-" {
        return Ok(page);
    }
    std::fs::write(&a.output, page).with_context(|| format!("writing {}", a.output.display()))?;
    Ok(String::new())
}

fn cloud_options(a: &CloudArgs) -> Result<vorfw_core::cloud::CloudOptions> {
    use vorfw_core::cloud::{CloudOptions, ExternalAt, NsgMode};
    let mut subnets = vec![];
    for s in &a.subnet {
        let Some((name, groups)) = s.split_once('=') else {
            bail!("--subnet {s}: expected NAME=GROUP,GROUP");
        };
        let groups: Vec<String> =
            groups.split(',').map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect();
        if name.trim().is_empty() || groups.is_empty() {
            bail!("--subnet {s}: expected NAME=GROUP,GROUP");
        }
        subnets.push((name.trim().to_string(), groups));
    }
    if !subnets.is_empty() && a.nsg_mode != NsgModeArg::Subnet {
        bail!("--subnet is for --nsg-mode subnet");
    }
    Ok(CloudOptions {
        external: if a.external == ExternalArg::Perimeter { ExternalAt::Perimeter } else { ExternalAt::Group },
        nsg_mode: if a.nsg_mode == NsgModeArg::Service { NsgMode::Service } else { NsgMode::Subnet },
        subnets,
        egress: match a.egress {
            EgressArg::Auto => None,
            EgressArg::Open => Some(vorfw_core::EgressMode::Open),
            EgressArg::Restricted => Some(vorfw_core::EgressMode::Restricted),
        },
        aws_rules_quota: a.aws_rules_quota,
        aws_prefix_list_entries: a.aws_prefix_list_entries,
        groups: a.cloud_groups.clone(),
    })
}

/// The cloud renderings: the whole inventory's plan folded into groups.
fn cloud(plans: &vorfw_core::Plans, format: Format, a: &CloudArgs) -> Result<String> {
    use vorfw_core::cloud;
    let o = cloud_options(a)?;
    let p = cloud::policy(plans, Matrix::embedded(), &o)?;
    if let (Format::AzureNsg, Some(f)) = (format, &a.service_tags) {
        let v = read_json(f)?;
        let names: Vec<&str> =
            v["values"].as_array().map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect()).unwrap_or_default();
        if names.is_empty() {
            bail!("--service-tags {}: not a service-tag file (no values[].name)", f.display());
        }
        if p.egress_restricted && !names.contains(&p.idp_service_tag.as_str()) {
            bail!("--service-tags {}: the service tag {} is not in this file", f.display(), p.idp_service_tag);
        }
    }
    let v = match format {
        Format::AzureNsg => cloud::azure_nsg(&p, &o)?,
        _ => cloud::aws_sg(&p, &o)?,
    };
    Ok(cloud::to_text(&v))
}

fn plan(a: PlanArgs) -> Result<String> {
    let mut plans = plans(&a.inv)?;
    if matches!(a.format, Format::AzureNsg | Format::AwsSg) {
        if a.limit.is_some() {
            bail!("--limit: the cloud formats are for the whole inventory");
        }
        return cloud(&plans, a.format, &a.cloud);
    }
    if let Some(limit) = &a.limit {
        let wanted: Vec<&str> = limit.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        for w in &wanted {
            if !plans.hosts.iter().any(|h| h.name == *w) {
                bail!("--limit: host {w} is not in the inventory");
            }
        }
        plans.hosts.retain(|h| wanted.contains(&h.name.as_str()));
    }
    Ok(match a.format {
        Format::Flows | Format::Markdown => {
            // Streamed host by host: a large fleet's hosts x peers lines never sit in memory at once.
            let mut so = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let written = match a.format {
                Format::Flows => render::write_flows(&plans, &mut so),
                _ => render::write_markdown(&plans, &mut so),
            };
            match written.and_then(|_| so.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => String::new(),
            }
        }
        Format::Json => render::json_text(&plans),
        Format::Csv => render::csv(&plans).map_err(anyhow::Error::msg)?,
        Format::Mermaid => render::mermaid(&plans),
        Format::Summary => render::summary(&plans),
        Format::AzureNsg | Format::AwsSg => unreachable!("rendered above"),
    })
}
