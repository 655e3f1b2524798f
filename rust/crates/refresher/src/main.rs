//! `vorfw-entra`: see [`vorfw_entra::cli`]. `apply` converges this host's firewall with
//! [`vorfw_refresher::host_applier`]. `vorfw-entra oidc ...` (`oidc refresh` for the hourly
//! timer) is [`vorfw_oidc::cli`]: OIDC providers' discovery names and resolved addresses.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("oidc") {
        let mut argv = vec![format!("{} oidc", args[0])];
        argv.extend(args.into_iter().skip(2));
        std::process::exit(vorfw_oidc::cli_with(argv, Some(&vorfw_refresher::host_oidc_applier)));
    }
    std::process::exit(vorfw_entra::cli_with(args, Some(&vorfw_refresher::host_applier)));
}
