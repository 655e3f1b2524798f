//! Week-to-week updates over the real public sequence and constructed bad files, offline
//! (local files), through `validate_and_merge` and the whole `refresh` cycle.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{crafted, day, snapshot, TempDir, AAD, CHINA, GOV, PUBLIC};
use ipnet::IpNet;
use vorfw_entra::{
    load_state, load_status, parse, refresh, refresh_with, validate_and_merge, Cloud, Condition, ErrorKind, FeedConfig,
    HoldReason, Source, State, HISTORY_LEN, JSON_FILE, STATE_FILE, STATUS_FILE, TEXT_FILE,
};

fn cfg_file(path: &Path) -> FeedConfig {
    FeedConfig::new(Cloud::Public).with_source(Source::File(path.to_path_buf()))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nets(v: &[&str]) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = v.iter().map(|s| net(s)).collect();
    out.sort();
    out
}

/// Apply `name` (a real file) into `dir` at `when`.
fn apply_real(dir: &Path, name: &str, when: std::time::SystemTime) -> vorfw_entra::Outcome {
    let path = common::data_dir().join(name);
    refresh(&cfg_file(&path), dir, when, false).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn real_public_sequence() {
    let d = TempDir::new("sequence");
    let dir = d.path();

    // 2025-07-14: the first list.
    let o = apply_real(dir, PUBLIC[0], day(0));
    assert_eq!(o.diff.added.len(), 214);
    assert_eq!(o.diff.previous_change_number, None);
    assert_eq!(o.state.counts().effective, 214);
    assert_eq!(read(dir.join(TEXT_FILE)).lines().count(), 214);

    // 2025-07-21: 5 added at once, 3 removed into grace (still allowed).
    let o = apply_real(dir, PUBLIC[1], day(7));
    let removed = ["13.87.123.160/27", "13.87.16.0/26", "13.87.57.160/27"];
    assert_eq!(
        o.diff.added,
        nets(&["13.87.32.18/32", "13.87.32.28/32", "13.87.32.5/32", "13.87.33.25/32", "13.87.33.28/32"])
    );
    assert_eq!(o.diff.removed, nets(&removed));
    assert!(o.diff.expired.is_empty() && o.diff.warnings.is_empty());
    let c = o.state.counts();
    assert_eq!((c.published, c.in_grace, c.effective), (216, 3, 219));
    let text = read(dir.join(TEXT_FILE));
    for r in removed {
        assert!(text.lines().any(|l| l == r), "{r} still allowed during grace");
    }
    assert_eq!(o.diff.in_grace[0].expires_at, day(21));
    let json: serde_json::Value = serde_json::from_str(&read(dir.join(JSON_FILE))).unwrap();
    assert_eq!(json["change_number"], 363);
    assert_eq!(json["prefixes"].as_array().unwrap().len(), 219);
    assert_eq!(json["grace"].as_array().unwrap().len(), 3);
    assert_eq!(json["ipv6"].as_array().unwrap().len(), 15);

    // 2025-07-28: one IPv6 prefix added; the three removed a week ago are still in grace.
    let o = apply_real(dir, PUBLIC[2], day(14));
    assert_eq!(o.diff.added, nets(&["2603:1020:406::13/128"]));
    assert!(o.diff.removed.is_empty() && o.diff.expired.is_empty());
    assert_eq!(o.state.counts().in_grace, 3);

    // 2025-08-04: 13.87.32.28/32 removed into grace; the first three expire (14 days).
    let o = apply_real(dir, PUBLIC[3], day(21));
    assert_eq!(o.diff.removed, nets(&["13.87.32.28/32"]));
    assert_eq!(o.diff.expired, nets(&removed));
    let c = o.state.counts();
    assert_eq!((c.published, c.in_grace, c.effective, c.ipv4, c.ipv6), (216, 1, 217, 201, 16));

    // 2025-10-28: same Entra list, higher changeNumber; the last grace entry expires.
    let o = apply_real(dir, PUBLIC[4], day(106));
    assert!(!o.diff.content_changed && o.diff.added.is_empty() && o.diff.removed.is_empty());
    assert_eq!(o.diff.expired, nets(&["13.87.32.28/32"]));
    assert_eq!(o.diff.previous_change_number, Some(365));
    assert_eq!(o.state.change_number, 375);
    assert_eq!(o.state.counts().effective, 216);

    let st = load_state(dir).unwrap().unwrap();
    assert_eq!(st.tags[0].change_number, 26);
    assert_eq!(st.history.len(), 5);
    assert_eq!(st.history[1].added, 5);
    assert_eq!(st.history[1].removed, 3);
    assert_eq!(st.history[1].file_name.as_deref(), Some(PUBLIC[1]));
    assert_eq!(st.file_name.as_deref(), Some(PUBLIC[4]));
    let status = load_status(dir).unwrap().unwrap();
    assert!(status.ok);
    assert_eq!(status.change_number, Some(375));
    assert_eq!(status.last_success, Some(day(106)));

    // The same file again: nothing changes, history does not grow.
    let o = apply_real(dir, PUBLIC[4], day(107));
    assert!(o.diff.is_noop(), "{:?}", o.diff);
    assert_eq!(load_state(dir).unwrap().unwrap().history.len(), 5);
}

#[test]
fn removed_then_restored_stays_allowed_throughout() {
    let d = TempDir::new("restore");
    apply_real(d.path(), PUBLIC[0], day(0));
    apply_real(d.path(), PUBLIC[1], day(7));
    // Microsoft puts the 07-14 list back in a later file (changeNumber 364).
    let back = d.write("back.json", &crafted(PUBLIC[0], 364, |_| {}));
    let o = refresh(&cfg_file(&back), d.path(), day(14), false).unwrap();
    assert_eq!(o.diff.restored, nets(&["13.87.123.160/27", "13.87.16.0/26", "13.87.57.160/27"]));
    assert!(o.diff.added.is_empty());
    assert_eq!(o.diff.removed.len(), 5, "the five 07-21 additions go into grace");
    assert_eq!(o.state.counts().in_grace, 5);
    assert_eq!(o.state.counts().published, 214);
}

#[test]
fn equal_change_number_different_content_is_accepted_with_a_warning() {
    let d = TempDir::new("equal");
    apply_real(d.path(), PUBLIC[0], day(0));
    let same_number = d.write("x.json", &crafted(PUBLIC[0], 362, |p| p.push("40.126.230.0/24".into())));
    let o = refresh(&cfg_file(&same_number), d.path(), day(1), false).unwrap();
    assert_eq!(o.diff.added, nets(&["40.126.230.0/24"]));
    assert_eq!(o.diff.warnings.len(), 1);
    assert!(o.diff.warnings[0].contains("changeNumber 362 is unchanged"), "{:?}", o.diff.warnings);
    let status = load_status(d.path()).unwrap().unwrap();
    assert!(status.ok && status.warnings[0].contains("unchanged"));

    // Same number, same content, different bytes (compact JSON, LF, reordered prefixes): a no-op.
    let reformatted = d.write(
        "y.json",
        &crafted(PUBLIC[0], 362, |p| {
            p.push("40.126.230.0/24".into());
            p.reverse();
        }),
    );
    let o = refresh(&cfg_file(&reformatted), d.path(), day(2), false).unwrap();
    assert!(o.diff.is_noop() && o.diff.warnings.is_empty(), "{:?}", o.diff);
}

/// Run a refresh that must fail, and check that only the status file changed and says why.
fn refused(dir: &Path, cfg: &FeedConfig, kind: ErrorKind, needle: &str) {
    let before = snapshot(dir, &[STATUS_FILE]);
    let last_success = load_status(dir).unwrap().and_then(|s| s.last_success);
    let Err(err) = refresh(cfg, dir, day(30), false) else { panic!("accepted, expected {kind} ({needle})") };
    assert_eq!(err.kind(), kind, "{err}");
    assert!(err.message().contains(needle), "{err}");
    assert_eq!(snapshot(dir, &[STATUS_FILE]), before, "state and outputs unchanged");
    let status = load_status(dir).unwrap().unwrap();
    assert!(!status.ok);
    assert_eq!(status.error_kind.as_deref(), Some(kind.as_str()));
    assert!(status.message.contains(needle), "{}", status.message);
    assert_eq!(status.last_success, last_success);
    if let Some(st) = load_state(dir).unwrap() {
        assert_eq!(status.change_number, Some(st.change_number));
        assert_eq!(status.prefixes, st.counts());
    }
}

/// A refresh of `bytes` (written into `d`) at `when`.
fn step(d: &TempDir, bytes: &[u8], when: std::time::SystemTime) -> vorfw_entra::Outcome {
    let f = d.write("step.json", bytes);
    refresh(&cfg_file(&f), d.path(), when, false).unwrap_or_else(|e| panic!("{e}"))
}

fn allowed(dir: &Path) -> Vec<IpNet> {
    read(dir.join(TEXT_FILE)).lines().map(net).collect()
}

#[test]
fn a_lower_change_number_holds_its_removals_and_applies_its_additions_at_once() {
    let d = TempDir::new("backwards");
    let dir = d.path();
    apply_real(dir, PUBLIC[3], day(0)); // changeNumber 365, 216 prefixes
                                        // Microsoft renumbered (105 -> 97 happened in August 2020): 2 removed, 3 added.
    let (gone, new) =
        (["13.87.32.5/32", "13.87.33.25/32"], ["40.126.210.0/28", "40.126.211.0/28", "2603:1046:9999::/48"]);
    // The week-3 list without `gone` and with `new`, under changeNumber `cn`.
    let renumbered = |cn: u64| {
        crafted(PUBLIC[3], cn, |p| {
            p.retain(|v| !gone.contains(&v.as_str().unwrap()));
            p.extend(new.iter().map(|s| serde_json::Value::from(*s)));
        })
    };
    let back = renumbered(350);
    let o = step(&d, &back, day(7));
    assert_eq!(o.diff.added, nets(&new), "additions never wait");
    assert_eq!(o.diff.held, nets(&gone));
    assert!(o.diff.removed.is_empty());
    assert_eq!(o.state.change_number, 350);
    assert_eq!(o.state.highest_change_number, 365);
    let eff = allowed(dir);
    for p in gone.iter().chain(&new) {
        assert!(eff.contains(&net(p)), "{p} allowed");
    }
    let status = load_status(dir).unwrap().unwrap();
    assert!(status.ok && status.condition == Condition::Held);
    assert_eq!(status.held[0].reason, "change_number_backwards");
    assert!(status.held[0].detail.contains("changeNumber 350 is lower than the applied 365"), "{:?}", status.held);
    assert_eq!((status.held[0].files, status.held[0].needed, status.held[0].remaining_files), (1, 4, 3));
    assert_eq!(status.prefixes.held, 2);

    // The same file again is no confirmation; new files (351, 352, 353) are, the 4th applies it.
    let o = step(&d, &back, day(8));
    assert!(o.diff.is_noop() && o.state.holds[0].files == 1, "{:?}", o.state.holds);
    for (n, cn) in [(2, 351), (3, 352)] {
        let o = step(&d, &renumbered(cn), day(7 * n));
        assert_eq!(o.state.holds[0].files, n as u32);
        assert!(o.diff.confirmed.is_empty());
    }
    let o = step(&d, &renumbered(353), day(28));
    assert_eq!(o.diff.confirmed, nets(&gone));
    assert_eq!(o.diff.expired, nets(&gone), "the grace period counts from the first absence (day 7)");
    assert!(o.state.holds.is_empty());
    assert!(!allowed(dir).contains(&net(gone[0])));
    assert_eq!(load_status(dir).unwrap().unwrap().condition, Condition::Ok);

    // A lower changeNumber with the same list is no failure and holds nothing.
    let o = step(&d, &renumbered(300), day(35));
    assert!(o.diff.held.is_empty() && o.diff.added.is_empty() && !o.diff.effective_changed);
}

#[test]
fn a_mass_removal_is_held_never_blocks_additions_and_takes_effect_after_four_files() {
    let d = TempDir::new("mass");
    let dir = d.path();
    apply_real(dir, PUBLIC[3], day(0));
    let all: Vec<String> = common::json(PUBLIC[3])
        .pointer("/values")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == AAD)
        .unwrap()["properties"]["addressPrefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let gutted = |cn: u64, extra: &[&str]| {
        crafted(PUBLIC[3], cn, |p| {
            p.truncate(20);
            p.extend(extra.iter().map(|s| serde_json::Value::from(*s)));
        })
    };
    // 196 of 216 removed at once, one prefix added in the same file.
    let o = step(&d, &gutted(366, &["40.126.220.0/28"]), day(7));
    assert_eq!(o.diff.held.len(), 196);
    assert_eq!(o.diff.added, nets(&["40.126.220.0/28"]), "the hold does not block additions");
    assert_eq!(o.state.counts().effective, 217);
    assert!(o.diff.warnings.iter().any(|w| w.contains("196 of 216 published prefixes (91%)")), "{:?}", o.diff.warnings);
    // What the host firewall reads from the state directory is the effective list, held included.
    let saved = load_state(dir).unwrap().unwrap();
    assert_eq!(saved.effective(), o.state.effective());
    assert_eq!(saved.effective().len(), 217);
    // The next weeks add more and keep confirming; the 4th file without them applies the removal.
    let o = step(&d, &gutted(367, &["40.126.220.0/28", "40.126.221.0/28"]), day(14));
    assert_eq!(o.diff.added, nets(&["40.126.221.0/28"]));
    assert!(o.diff.held.is_empty(), "no new hold: the held prefixes are not published any more");
    assert_eq!(o.state.counts().effective, 218);
    step(&d, &gutted(368, &["40.126.220.0/28", "40.126.221.0/28"]), day(21));
    assert_eq!(allowed(dir).len(), 218);
    let o = step(&d, &gutted(369, &["40.126.220.0/28", "40.126.221.0/28"]), day(28));
    assert_eq!(o.diff.confirmed.len(), 196);
    assert_eq!(o.diff.expired.len(), 196);
    assert_eq!(allowed(dir).len(), 22);
    assert!(all[..20].iter().all(|p| allowed(dir).contains(&net(p))));
}

#[test]
fn force_applies_a_held_removal_at_once_and_republishing_releases_it() {
    let d = TempDir::new("force");
    let dir = d.path();
    apply_real(dir, PUBLIC[3], day(0));
    let gutted = d.write("gutted.json", &crafted(PUBLIC[3], 366, |p| p.truncate(20)));
    let o = refresh(&cfg_file(&gutted), dir, day(7), false).unwrap();
    assert_eq!(o.diff.held.len(), 196);
    // Restored the next week: nothing ever left the effective list.
    let o = step(&d, &crafted(PUBLIC[3], 367, |_| {}), day(14));
    assert_eq!(o.diff.restored.len(), 196);
    assert!(o.state.holds.is_empty() && o.state.counts().effective == 216);

    // Held again, then forced: into the grace period counted from the first absence.
    refresh(&cfg_file(&gutted), dir, day(21), false).unwrap();
    let mut forced = cfg_file(&d.write("g2.json", &crafted(PUBLIC[3], 368, |p| p.truncate(20))));
    forced.force = true;
    let o = refresh(&forced, dir, day(28), false).unwrap();
    assert_eq!(o.diff.confirmed.len(), 196);
    assert!(o.diff.warnings.iter().any(|w| w.starts_with("forced:")));
    assert_eq!(o.state.counts().in_grace, 196, "removed on day 21, grace until day 35");
    assert_eq!(o.diff.in_grace[0].expires_at, day(35));
}

#[test]
fn removal_share_threshold_is_exclusive() {
    let prev = first_state(PUBLIC[3]);
    let cfg = FeedConfig::new(Cloud::Public);
    // 21 of 216 = 9.7 %: into grace. 22 of 216 = 10.2 %: held.
    let ok = parse(&crafted(PUBLIC[3], 366, |p| p.truncate(216 - 21))).unwrap();
    let (_, diff) = validate_and_merge(Some(&prev), &ok, &cfg, day(1)).unwrap();
    assert_eq!((diff.removed.len(), diff.held.len()), (21, 0));
    let too_many = parse(&crafted(PUBLIC[3], 366, |p| p.truncate(216 - 22))).unwrap();
    let (st, diff) = validate_and_merge(Some(&prev), &too_many, &cfg, day(1)).unwrap();
    assert_eq!((diff.removed.len(), diff.held.len()), (0, 22));
    assert_eq!(st.holds[0].reason, HoldReason::MassRemoval);
    let mut loose = cfg.clone();
    loose.max_removal_share = 0.5;
    assert_eq!(validate_and_merge(Some(&prev), &too_many, &loose, day(1)).unwrap().1.removed.len(), 22);
    // hold_refreshes 1: the holding file confirms it too.
    let mut one = cfg.clone();
    one.hold_refreshes = 1;
    let (st, diff) = validate_and_merge(Some(&prev), &too_many, &one, day(1)).unwrap();
    assert_eq!((diff.confirmed.len(), st.counts().in_grace, st.holds.len()), (22, 22, 0));
}

#[test]
fn implausible_files_are_refused_and_change_nothing() {
    let d = TempDir::new("implausible");
    let dir = d.path();
    apply_real(dir, PUBLIC[3], day(0));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (crafted(PUBLIC[3], 366, |p| p.extend(["0.0.0.0/0".into(), "::/0".into()])), "0.0.0.0/0, ::/0"),
        (crafted(PUBLIC[3], 366, |p| p.push("20.0.0.0/8".into())), "wider than the allowed IPv4 /16"),
        (crafted(PUBLIC[3], 366, |p| p.push("10.20.0.0/16".into())), "10.20.0.0/16 (in 10.0.0.0/8 private-use"),
        (crafted(PUBLIC[3], 366, |p| p.push("fd12:3456::/48".into())), "fc00::/7 unique local"),
        (crafted(PUBLIC[3], 366, |p| p.push("203.0.113.0/24".into())), "documentation TEST-NET-3"),
        (crafted(PUBLIC[3], u64::MAX, |_| {}), "changeNumber 18446744073709551615"),
        (crafted(PUBLIC[3], 365 + 1001, |_| {}), "jumps 1001 past the highest accepted 365"),
        (
            crafted(PUBLIC[3], 366, |p| {
                p.extend((0..600u32).map(|i| format!("40.{}.{}.0/24", 100 + i / 256, i % 256).into()))
            }),
            "adds 600 prefixes at once, more than the 500 allowed",
        ),
        (
            crafted(PUBLIC[3], 366, |p| {
                p.extend((0..900_000u32).map(|i| std::net::Ipv4Addr::from(0x2800_0000 + i).to_string().into()))
            }),
            "900216 prefixes",
        ),
    ];
    for (bytes, needle) in cases {
        let f = d.write("bad.json", &bytes);
        refused(dir, &cfg_file(&f), ErrorKind::Implausible, needle);
    }
    // The lab's own feed sets allow_special_use; width still applies.
    let mut lab = cfg_file(&d.write("lab.json", &crafted(PUBLIC[3], 366, |p| p.push("10.231.0.200/30".into()))));
    lab.limits.allow_special_use = true;
    assert_eq!(refresh(&lab, dir, day(7), false).unwrap().diff.added, nets(&["10.231.0.200/30"]));
    // Genuine files after a refused 2^64-1 are accepted.
    let o = step(&d, &crafted(PUBLIC[3], 367, |_| {}), day(14));
    assert_eq!(o.state.change_number, 367);
}

#[test]
fn a_pinned_sha256_refuses_any_other_file() {
    let dd = common::data_dir();
    let d = TempDir::new("sha");
    let bytes = std::fs::read(dd.join(PUBLIC[0])).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let mut cfg = cfg_file(&dd.join(PUBLIC[0]));
    cfg.expect_sha256 = Some(sha.to_uppercase());
    refresh(&cfg, d.path(), day(0), false).unwrap();
    let mut other = cfg_file(&dd.join(PUBLIC[1]));
    other.expect_sha256 = Some(sha.clone());
    refused(d.path(), &other, ErrorKind::Checksum, &format!("is not the pinned {sha}"));
}

#[test]
fn a_version_1_state_is_read_and_upgraded() {
    let d = TempDir::new("v1");
    apply_real(d.path(), PUBLIC[0], day(0));
    // What the first release wrote: no holds, no highest changeNumber, no file time.
    let mut v: serde_json::Value = serde_json::from_str(&read(d.path().join(STATE_FILE))).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert("version".into(), 1.into());
    for k in ["highest_change_number", "file_accepted", "holds", "hold_refreshes"] {
        o.remove(k);
    }
    std::fs::write(d.path().join(STATE_FILE), serde_json::to_vec(&v).unwrap()).unwrap();
    let st = load_state(d.path()).unwrap().unwrap();
    assert_eq!((st.version, st.highest_change_number, st.file_accepted()), (2, 362, day(0)));
    let o = apply_real(d.path(), PUBLIC[1], day(7));
    assert_eq!(o.diff.added.len(), 5);
}

fn first_state(name: &str) -> State {
    let doc = parse(&common::bytes(name)).unwrap();
    validate_and_merge(None, &doc, &FeedConfig::new(Cloud::Public), day(0)).unwrap().0
}

#[test]
fn wrong_cloud_is_refused() {
    let dd = common::data_dir();
    let d = TempDir::new("cloud");
    apply_real(d.path(), PUBLIC[0], day(0));
    refused(
        d.path(),
        &cfg_file(&dd.join(GOV)),
        ErrorKind::WrongCloud,
        "for cloud \"AzureGovernment\", expected Public",
    );
    refused(d.path(), &cfg_file(&dd.join(CHINA)), ErrorKind::WrongCloud, "expected Public");

    // The right cloud configured but the state is Public's: refused unless forced.
    let mut gov = cfg_file(&dd.join(GOV));
    gov.cloud = Cloud::AzureGovernment;
    refused(d.path(), &gov, ErrorKind::WrongCloud, "saved state is for cloud Public");
    gov.force = true;
    let o = refresh(&gov, d.path(), day(31), false).unwrap();
    assert_eq!((o.state.counts().ipv4, o.state.counts().ipv6), (34, 3));
    assert_eq!(o.state.cloud, Cloud::AzureGovernment);

    // China on its own.
    let c = TempDir::new("china");
    let mut china = cfg_file(&dd.join(CHINA));
    china.cloud = Cloud::China;
    let o = refresh(&china, c.path(), day(0), false).unwrap();
    assert_eq!((o.state.counts().ipv4, o.state.counts().ipv6), (39, 5));
}

#[test]
fn missing_tag_empty_list_and_invalid_cidr_are_refused() {
    let dd = common::data_dir();
    let d = TempDir::new("bad");
    apply_real(d.path(), PUBLIC[0], day(0));

    let mut missing = cfg_file(&dd.join(PUBLIC[1]));
    missing.tags = vec![AAD.into(), "AzureActiveDirectoryV3".into()];
    refused(d.path(), &missing, ErrorKind::MissingTag, "AzureActiveDirectoryV3 not found");

    let empty = d.write("empty.json", &crafted(PUBLIC[1], 363, |p| p.clear()));
    refused(d.path(), &cfg_file(&empty), ErrorKind::Empty, "hold no prefix");

    let bad = d.write(
        "bad.json",
        &crafted(PUBLIC[1], 363, |p| {
            p.push("13.87.32.18/33".into());
            p.push("13.87.32.19/24".into());
        }),
    );
    refused(d.path(), &cfg_file(&bad), ErrorKind::InvalidPrefix, "2 invalid prefix(es)");

    let html = d.write("page.json", b"<!DOCTYPE html><html><body>Sign in</body></html>");
    refused(d.path(), &cfg_file(&html), ErrorKind::WrongContent, "markup");

    let whole = common::bytes(PUBLIC[1]);
    let cut = d.write("cut.json", &whole[..whole.len() / 2]);
    refused(d.path(), &cfg_file(&cut), ErrorKind::Parse, "ends early");

    refused(d.path(), &cfg_file(&d.path().join("nope.json")), ErrorKind::Config, "cannot read");

    let mut small = cfg_file(&dd.join(PUBLIC[1]));
    small.max_bytes = 4096;
    refused(d.path(), &small, ErrorKind::TooLarge, "cap");
}

#[test]
fn dry_run_writes_nothing() {
    let dd = common::data_dir();
    let d = TempDir::new("dry");
    let o = refresh(&cfg_file(&dd.join(PUBLIC[0])), d.path(), day(0), true).unwrap();
    assert!(o.dry_run && o.written.is_empty());
    assert!(std::fs::read_dir(d.path()).unwrap().next().is_none(), "empty state dir");
    apply_real(d.path(), PUBLIC[0], day(0));
    let before = snapshot(d.path(), &[]);
    let o = refresh(&cfg_file(&dd.join(PUBLIC[1])), d.path(), day(7), true).unwrap();
    assert_eq!(o.diff.added.len(), 5);
    assert_eq!(snapshot(d.path(), &[]), before);
}

#[test]
fn state_is_saved_before_the_hook_and_put_back_when_it_fails() {
    let dd = common::data_dir();
    let d = TempDir::new("hook");
    apply_real(d.path(), PUBLIC[0], day(0));
    let before = snapshot(d.path(), &[STATUS_FILE]);
    let mut seen = 0;
    let err = refresh_with(&cfg_file(&dd.join(PUBLIC[1])), d.path(), day(7), false, |st, diff| {
        seen = st.effective().len();
        assert_eq!(diff.added.len(), 5);
        // Saved before the firewall is touched: a crash here leaves the new list for every
        // later apply, never the old one over a newer firewall.
        assert_eq!(load_state(d.path()).unwrap().unwrap().effective().len(), 219);
        Err("nft: set replacement failed".into())
    })
    .unwrap_err();
    assert_eq!(seen, 219);
    assert_eq!(err.kind(), ErrorKind::Apply);
    assert_eq!(snapshot(d.path(), &[STATUS_FILE]), before);
    let status = load_status(d.path()).unwrap().unwrap();
    assert!(!status.ok && status.message.contains("nft"));
    assert_eq!(status.last_success, Some(day(0)));
}

#[test]
fn history_keeps_the_last_ten_and_outputs_go_where_configured() {
    let d = TempDir::new("history");
    let out = TempDir::new("history-out");
    for i in 0..13u64 {
        let f = d.write("f.json", &crafted(PUBLIC[0], 400 + i, |p| p.push(format!("40.126.240.{i}/32").into())));
        let mut cfg = cfg_file(&f);
        cfg.text_output = Some(out.path().join("aad.txt"));
        cfg.json_output = Some(out.path().join("sub/aad.json"));
        refresh(&cfg, d.path(), day(i), false).unwrap();
    }
    let st = load_state(d.path()).unwrap().unwrap();
    assert_eq!(st.history.len(), HISTORY_LEN);
    assert_eq!(st.history.last().unwrap().change_number, 412);
    assert_eq!(st.history[0].change_number, 403);
    assert!(out.path().join("aad.txt").is_file() && out.path().join("sub/aad.json").is_file());
    assert!(!d.path().join(TEXT_FILE).exists());
    assert!(d.path().join(STATE_FILE).is_file());
}

#[test]
fn zero_grace_removes_at_once_and_clock_skew_keeps() {
    let prev = first_state(PUBLIC[0]);
    let next = parse(&common::bytes(PUBLIC[1])).unwrap();
    let mut cfg = FeedConfig::new(Cloud::Public);
    cfg.grace = Duration::ZERO;
    let (st, diff) = validate_and_merge(Some(&prev), &next, &cfg, day(7)).unwrap();
    assert_eq!(diff.expired.len(), 3);
    assert_eq!(st.counts().effective, 216);
    // A clock that jumped back before the removal time keeps the prefix.
    let (st, _) = validate_and_merge(Some(&prev), &next, &FeedConfig::new(Cloud::Public), day(7)).unwrap();
    let next2 = parse(&common::bytes(PUBLIC[2])).unwrap();
    let (st2, diff2) = validate_and_merge(Some(&st), &next2, &FeedConfig::new(Cloud::Public), day(1)).unwrap();
    assert!(diff2.expired.is_empty());
    assert_eq!(st2.counts().in_grace, 3);
}

#[test]
fn metrics_follow_the_status_through_a_success_and_a_failure() {
    let d = TempDir::new("metrics");
    let m = TempDir::new("metrics-dir");
    let f = d.write("f.json", &crafted(PUBLIC[0], 420, |_| {}));
    let mut cfg = cfg_file(&f);
    cfg.metrics_dir = Some(m.path().to_path_buf());
    refresh(&cfg, d.path(), day(0), false).unwrap();
    let file = m.path().join(vorfw_entra::metrics::METRICS_FILE);
    let text = read(&file);
    assert_eq!(text, vorfw_entra::metrics::render(&load_status(d.path()).unwrap().unwrap(), Cloud::Public));
    assert!(text.contains("vorstream_firewall_entra_last_refresh_success{cloud=\"Public\"} 1\n"), "{text}");
    assert!(text.contains("vorstream_firewall_entra_change_number{cloud=\"Public\"} 420\n"), "{text}");
    // A refresh that fails: the metrics say so, and still describe the list in force.
    let mut bad = cfg_file(&d.path().join("missing.json"));
    bad.metrics_dir = cfg.metrics_dir.clone();
    refresh(&bad, d.path(), day(1), false).unwrap_err();
    let text = read(&file);
    assert!(text.contains("vorstream_firewall_entra_last_refresh_success{cloud=\"Public\"} 0\n"), "{text}");
    assert!(text.contains("vorstream_firewall_entra_condition{cloud=\"Public\",condition=\"failed\"} 1\n"), "{text}");
    assert!(text.contains("vorstream_firewall_entra_change_number{cloud=\"Public\"} 420\n"), "{text}");
    // No collector directory: nothing written, and the refresh is not failed by it.
    cfg.metrics_dir = Some(m.path().join("absent"));
    refresh(&cfg, d.path(), day(2), false).unwrap();
    assert!(!m.path().join("absent").exists());
}
