//! `vorfw-entra`: see [`vorfw_entra::cli`].

fn main() {
    std::process::exit(vorfw_entra::cli(std::env::args().collect()));
}
