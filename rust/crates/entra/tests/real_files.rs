//! Parsing every real file in shared/data/servicetags and checking the README's numbers.

mod common;

use ipnet::IpNet;
use vorfw_entra::{extract, extract_detailed, parse, Cloud};

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

#[test]
fn every_real_file_parses_with_the_readme_numbers() {
    let dir = data_or_skip!();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let row = TABLE.iter().find(|r| r.0 == name).unwrap_or_else(|| panic!("{name} is not in the README table"));
        let (_, cloud, change, ntags, aad_change, v4, v6) = *row;
        let doc = parse(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.cloud(), Some(cloud), "{name}");
        assert_eq!(doc.change_number, change, "{name}");
        assert_eq!(doc.values.len(), ntags, "{name}");
        let (set, info) = extract_detailed(&doc, &[common::AAD.to_string()]).unwrap();
        assert_eq!(info[0].change_number, aad_change, "{name}");
        assert_eq!((info[0].ipv4, info[0].ipv6), (v4, v6), "{name}");
        let set_v4 = set.iter().filter(|p| matches!(p, IpNet::V4(_))).count();
        assert_eq!((set_v4, set.len() - set_v4), (v4, v6), "{name}: no duplicates");
        // Tolerance the README calls out: networkFeatures null for about half the tags.
        let nulls = doc.values.iter().filter(|t| t.properties.network_features.is_none()).count();
        assert!(nulls * 3 > doc.values.len() && nulls < doc.values.len(), "{name}: {nulls} null networkFeatures");
        // Every prefix of every tag is a valid CIDR network.
        let all: Vec<String> = doc.values.iter().map(|t| t.name.clone()).collect();
        assert!(extract(&doc, &all).is_ok(), "{name}: every tag extracts");
        seen += 1;
    }
    assert_eq!(seen, TABLE.len(), "all README files present");
}

#[test]
fn line_endings_do_not_matter() {
    let dir = data_or_skip!();
    // 20250804 is CRLF, 20251028 is LF; same AzureActiveDirectory list.
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
    let _ = data_or_skip!();
    let doc = parse(&common::bytes(common::PUBLIC[1])).unwrap();
    let a = extract(&doc, &[common::AAD.into()]).unwrap();
    let b = extract(&doc, &["AzureActiveDirectoryDomainServices".into()]).unwrap();
    let both = extract(&doc, &[common::AAD.into(), "AzureActiveDirectoryDomainServices".into()]).unwrap();
    assert_eq!(both, a.union(&b).copied().collect());
    assert!(both.len() > a.len());
}

#[test]
fn parse_and_extract_time() {
    let _ = data_or_skip!();
    let b = common::bytes(common::PUBLIC[4]);
    let tags = [common::AAD.to_string()];
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let n = extract(&parse(&b).unwrap(), &tags).unwrap().len();
        best = best.min(t.elapsed());
        assert_eq!(n, 216);
    }
    eprintln!("parse + extract of the {} byte public file: {best:?} (best of 3)", b.len());
    // Generous bounds (shared CI machines); the release example parse_bench measures properly.
    let limit = if cfg!(debug_assertions) { 3000 } else { 100 };
    assert!(best.as_millis() < limit, "{best:?}");
}
