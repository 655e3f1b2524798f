//! Microsoft's real files: the reduced copies in the repository (tests/fixtures/servicetags/
//! microsoft) against the README's numbers, and (where ../shared/data/servicetags exists, run by
//! `make test`) the proof that each reduced copy is the faithful reduction of its original.

mod common;

use std::collections::BTreeSet;

use ipnet::IpNet;
use vorfw_entra::{extract, extract_detailed, parse, plausible, Cloud, Limits};

/// (file, cloud, top-level changeNumber, tag count, AzureActiveDirectory changeNumber, IPv4, IPv6)
const TABLE: [(&str, Cloud, u64, usize, u64, usize, usize); 7] = [
    ("ServiceTags_Public_20250714.json", Cloud::Public, 362, 2967, 23, 199, 15),
    ("ServiceTags_Public_20250721.json", Cloud::Public, 363, 2967, 24, 201, 15),
    ("ServiceTags_Public_20250728.json", Cloud::Public, 364, 2967, 25, 201, 16),
    ("ServiceTags_Public_20250804.json", Cloud::Public, 365, 2967, 26, 200, 16),
    ("ServiceTags_Public_20251028.json", Cloud::Public, 375, 3039, 26, 200, 16),
    ("ServiceTags_AzureGovernment_20260720.json", Cloud::AzureGovernment, 402, 299, 14, 34, 3),
    ("ServiceTags_China_20260720.json", Cloud::China, 405, 327, 14, 39, 5),
];

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(common::data_dir().join("MANIFEST.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn row(name: &str) -> &'static (&'static str, Cloud, u64, usize, u64, usize, usize) {
    TABLE.iter().find(|r| r.0 == name).unwrap_or_else(|| panic!("{name} is not in the README table"))
}

#[test]
fn every_real_file_parses_with_the_readme_numbers() {
    let dir = common::data_dir();
    let manifest = manifest();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("ServiceTags_") {
            continue;
        }
        let (_, cloud, change, ntags, aad_change, v4, v6) = *row(&name);
        let doc = parse(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.cloud(), Some(cloud), "{name}");
        assert_eq!(doc.change_number, change, "{name}");
        let m = manifest.iter().find(|m| m["file"] == name.as_str()).unwrap_or_else(|| panic!("{name} in MANIFEST"));
        assert_eq!(m["tags"], ntags, "{name}: the original's tag count");
        assert_eq!(m["change_number"], change, "{name}");
        let (set, info) = extract_detailed(&doc, &[common::AAD.to_string()]).unwrap();
        assert_eq!(info[0].change_number, aad_change, "{name}");
        assert_eq!((info[0].ipv4, info[0].ipv6), (v4, v6), "{name}");
        let set_v4 = set.iter().filter(|p| matches!(p, IpNet::V4(_))).count();
        assert_eq!((set_v4, set.len() - set_v4), (v4, v6), "{name}: no duplicates");
        // The reduction keeps tags whose networkFeatures is null (about half of the originals').
        let nulls = doc.values.iter().filter(|t| t.properties.network_features.is_none()).count();
        assert_eq!(nulls, 3, "{name}");
        let orig_nulls = m["null_network_features"].as_u64().unwrap() as usize;
        assert!(orig_nulls * 3 > ntags && orig_nulls < ntags, "{name}: {orig_nulls} null networkFeatures");
        let all: Vec<String> = doc.values.iter().map(|t| t.name.clone()).collect();
        assert!(extract(&doc, &all).is_ok(), "{name}: every tag extracts");
        // Microsoft's real lists pass every plausibility limit with the defaults.
        plausible::check_prefixes(&set, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert_eq!(seen, TABLE.len(), "all README files present");
}

#[test]
fn line_endings_do_not_matter() {
    let dir = common::data_dir();
    // 20250804 is CRLF, 20251028 is LF (as the originals); same AzureActiveDirectory list.
    let crlf = std::fs::read(dir.join(common::PUBLIC[3])).unwrap();
    let lf = std::fs::read(dir.join(common::PUBLIC[4])).unwrap();
    assert!(crlf.windows(2).any(|w| w == b"\r\n"));
    assert!(!lf.contains(&b'\r'));
    let tags = [common::AAD.to_string()];
    let a = extract(&parse(&crlf).unwrap(), &tags).unwrap();
    let b = extract(&parse(&lf).unwrap(), &tags).unwrap();
    assert_eq!(a, b);
    // Converting CRLF to LF (and adding a BOM) changes the bytes, not the content.
    let mut converted = b"\xEF\xBB\xBF".to_vec();
    converted.extend(String::from_utf8(crlf).unwrap().replace("\r\n", "\n").into_bytes());
    assert_eq!(extract(&parse(&converted).unwrap(), &tags).unwrap(), a);
}

#[test]
fn several_tags_give_the_union() {
    let doc = parse(&common::bytes(common::PUBLIC[1])).unwrap();
    let a = extract(&doc, &[common::AAD.into()]).unwrap();
    let b = extract(&doc, &["AzureActiveDirectoryDomainServices".into()]).unwrap();
    let both = extract(&doc, &[common::AAD.into(), "AzureActiveDirectoryDomainServices".into()]).unwrap();
    assert_eq!(both, a.union(&b).copied().collect());
    assert!(both.len() > a.len());
}

/// A document the size of the public original (about 4 MiB): the reduced file's tags repeated
/// under new names.
fn full_size_public() -> Vec<u8> {
    let mut doc = common::json(common::PUBLIC[4]);
    let tags = doc["values"].as_array().unwrap().clone();
    let values = doc["values"].as_array_mut().unwrap();
    let round = serde_json::to_vec_pretty(&tags).unwrap().len();
    for i in 0..4_000_000 / round + 1 {
        for t in &tags {
            let mut t = t.clone();
            t["name"] = format!("{}.copy{i}", t["name"].as_str().unwrap()).into();
            t["id"] = t["name"].clone();
            values.push(t);
        }
    }
    serde_json::to_vec_pretty(&doc).unwrap()
}

#[test]
fn parse_and_extract_time() {
    let b = full_size_public();
    assert!(b.len() > 4_000_000);
    let tags = [common::AAD.to_string()];
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let n = extract(&parse(&b).unwrap(), &tags).unwrap().len();
        best = best.min(t.elapsed());
        assert_eq!(n, 216);
    }
    eprintln!("parse + extract of a {} byte public-sized file: {best:?} (best of 3)", b.len());
    // Generous bounds (shared CI machines); the release example parse_bench measures properly.
    let limit = if cfg!(debug_assertions) { 3000 } else { 100 };
    assert!(best.as_millis() < limit, "{best:?}");
}

/// The reduced copies are exactly what reduce.py makes of Microsoft's originals: same SHA-256 as
/// recorded, same top-level fields, same tags byte for byte in content. Needs the originals;
/// `make test` runs it (with `--ignored`) wherever ../shared/data/servicetags exists.
#[test]
#[ignore = "needs ../shared/data/servicetags; make test runs it when present"]
fn reduced_copies_are_faithful_to_the_originals() {
    let shared = common::shared_dir().expect("../shared/data/servicetags is required for this test");
    let manifest = manifest();
    let mut checked = 0;
    for m in &manifest {
        let name = m["file"].as_str().unwrap();
        let raw = std::fs::read(shared.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        use sha2::Digest;
        let sha: String = sha2::Sha256::digest(&raw).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(m["sha256"], sha.as_str(), "{name}: MANIFEST.json records another original");
        let orig = parse(&raw).unwrap();
        let reduced = parse(&common::bytes(name)).unwrap();
        assert_eq!(orig.values.len(), m["tags"].as_u64().unwrap() as usize);
        assert_eq!((orig.change_number, &orig.cloud), (reduced.change_number, &reduced.cloud), "{name}");
        for t in &reduced.values {
            let o = orig.tag(&t.name).unwrap_or_else(|| panic!("{name}: {} not in the original", t.name));
            assert_eq!(serde_json::to_value(o).unwrap(), serde_json::to_value(t).unwrap(), "{name}: {}", t.name);
        }
        for tag in ["AzureActiveDirectory", "AzureActiveDirectoryDomainServices"] {
            let a: BTreeSet<IpNet> = extract(&orig, &[tag.into()]).unwrap();
            assert_eq!(a, extract(&reduced, &[tag.into()]).unwrap(), "{name}: {tag}");
        }
        assert_eq!(raw.windows(2).any(|w| w == b"\r\n"), m["line_endings"] == "crlf", "{name}");
        checked += 1;
    }
    let originals = std::fs::read_dir(&shared)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("ServiceTags_"));
    assert_eq!(checked, originals.count(), "every original has a reduced copy (run reduce.py)");
}
