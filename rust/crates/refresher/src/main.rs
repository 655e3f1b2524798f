//! `vorfw-entra`: see [`vorfw_entra::cli`]. `apply` converges this host's firewall with
//! [`vorfw_refresher::host_applier`].

fn main() {
    std::process::exit(vorfw_entra::cli_with(std::env::args().collect(), Some(&vorfw_refresher::host_applier)));
}
