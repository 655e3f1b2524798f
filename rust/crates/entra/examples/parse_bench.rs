//! Times parse + extract of the real service-tags files (the 4 MB public one above all).
//!
//! `cargo run --release -p vorfw-entra --example parse_bench [FILE...] [--iterations N]`
//! Without files it uses every file in shared/data/servicetags next to the repository.
//!
//! `... --example parse_bench -- --discovery-page PAGE.html [--iterations N]` times finding the
//! download link on a details page instead (bench/entra.py writes one with 40,000 links).

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut iterations = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--iterations" {
            iterations = args.next().and_then(|n| n.parse().ok()).expect("--iterations N");
        } else if a == "--discovery-page" {
            let page = std::fs::read_to_string(args.next().expect("--discovery-page PAGE")).expect("read page");
            let mut best = Duration::MAX;
            let mut link = String::new();
            for _ in 0..iterations {
                let t = Instant::now();
                link = vorfw_entra::find_download_link(
                    &page,
                    vorfw_entra::DEFAULT_LINK_PREFIX,
                    vorfw_entra::Cloud::Public,
                )
                .expect("a link")
                .0;
                best = best.min(t.elapsed());
            }
            println!(
                "discovery: {} bytes, best {:.2} ms ({iterations} runs): {link}",
                page.len(),
                best.as_secs_f64() * 1e3
            );
            return;
        } else {
            files.push(a.into());
        }
    }
    if files.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/servicetags");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            eprintln!("no files given and {} is absent", dir.display());
            std::process::exit(2);
        };
        files = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
    }
    let tags = vec![vorfw_entra::DEFAULT_TAG.to_string()];
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let mut best = Duration::MAX;
        let mut total = Duration::ZERO;
        let mut n = 0;
        for _ in 0..iterations {
            let t = Instant::now();
            let doc = vorfw_entra::parse(&bytes).expect("parse");
            let set = vorfw_entra::extract(&doc, &tags).expect("extract");
            let el = t.elapsed();
            n = set.len();
            best = best.min(el);
            total += el;
        }
        println!(
            "{:<45} {:>9} bytes  {:>4} prefixes  best {:>7.2} ms  mean {:>7.2} ms  ({iterations} runs)",
            f.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len(),
            n,
            best.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3 / iterations as f64
        );
    }
}
