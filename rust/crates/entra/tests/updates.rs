//! Week-to-week updates over the real public sequence and constructed bad files, offline
//! (local files), through `validate_and_merge` and the whole `refresh` cycle.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{crafted, day, snapshot, TempDir, AAD, CHINA, GOV, PUBLIC};
use ipnet::IpNet;
use vorfw_entra::{
    load_state, load_status, parse, refresh, refresh_with, validate_and_merge, Cloud, ErrorKind, FeedConfig, Source,
    State, HISTORY_LEN, JSON_FILE, STATE_FILE, STATUS_FILE, TEXT_FILE,
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
    let path = common::data_dir().unwrap().join(name);
    refresh(&cfg_file(&path), dir, when, false).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn real_public_sequence() {
    let _ = data_or_skip!();
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
    let _ = data_or_skip!();
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
    let _ = data_or_skip!();
    let d = TempDir::new("equal");
    apply_real(d.path(), PUBLIC[0], day(0));
    let same_number = d.write("x.json", &crafted(PUBLIC[0], 362, |p| p.push("198.51.100.0/24".into())));
    let o = refresh(&cfg_file(&same_number), d.path(), day(1), false).unwrap();
    assert_eq!(o.diff.added, nets(&["198.51.100.0/24"]));
    assert_eq!(o.diff.warnings.len(), 1);
    assert!(o.diff.warnings[0].contains("changeNumber 362 is unchanged"), "{:?}", o.diff.warnings);
    let status = load_status(d.path()).unwrap().unwrap();
    assert!(status.ok && status.warnings[0].contains("unchanged"));

    // Same number, same content, different bytes (compact JSON, LF, reordered prefixes): a no-op.
    let reformatted = d.write(
        "y.json",
        &crafted(PUBLIC[0], 362, |p| {
            p.push("198.51.100.0/24".into());
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
    let err = refresh(cfg, dir, day(30), false).unwrap_err();
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

#[test]
fn backwards_change_number_is_refused_unless_forced() {
    let dd = data_or_skip!();
    let d = TempDir::new("backwards");
    apply_real(d.path(), PUBLIC[3], day(0));
    let cfg = cfg_file(&dd.join(PUBLIC[2]));
    refused(d.path(), &cfg, ErrorKind::ChangeNumberBackwards, "changeNumber 364 is lower than the applied 365");
    let mut forced = cfg.clone();
    forced.force = true;
    let o = refresh(&forced, d.path(), day(31), false).unwrap();
    assert!(o.diff.warnings.iter().any(|w| w.starts_with("forced:")));
    assert_eq!(o.state.change_number, 364);
}

#[test]
fn mass_removal_is_refused_unless_forced() {
    let _ = data_or_skip!();
    let d = TempDir::new("mass");
    apply_real(d.path(), PUBLIC[3], day(0));
    let gutted = d.write("gutted.json", &crafted(PUBLIC[3], 366, |p| p.truncate(20)));
    let cfg = cfg_file(&gutted);
    refused(d.path(), &cfg, ErrorKind::MassRemoval, "removes 196 of 216 published prefixes (91%)");
    let mut forced = cfg.clone();
    forced.force = true;
    let o = refresh(&forced, d.path(), day(31), false).unwrap();
    assert_eq!(o.diff.removed.len(), 196);
    assert_eq!(o.state.counts().effective, 216, "forced removals still wait out the grace period");
}

#[test]
fn removal_share_threshold_is_exclusive() {
    let _ = data_or_skip!();
    let prev = first_state(PUBLIC[3]);
    let cfg = FeedConfig::new(Cloud::Public);
    // 21 of 216 = 9.7 %: accepted. 22 of 216 = 10.2 %: refused.
    let ok = parse(&crafted(PUBLIC[3], 366, |p| p.truncate(216 - 21))).unwrap();
    assert_eq!(validate_and_merge(Some(&prev), &ok, &cfg, day(1)).unwrap().1.removed.len(), 21);
    let too_many = parse(&crafted(PUBLIC[3], 366, |p| p.truncate(216 - 22))).unwrap();
    let e = validate_and_merge(Some(&prev), &too_many, &cfg, day(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MassRemoval);
    let mut loose = cfg.clone();
    loose.max_removal_share = 0.5;
    assert!(validate_and_merge(Some(&prev), &too_many, &loose, day(1)).is_ok());
}

fn first_state(name: &str) -> State {
    let doc = parse(&common::bytes(name)).unwrap();
    validate_and_merge(None, &doc, &FeedConfig::new(Cloud::Public), day(0)).unwrap().0
}

#[test]
fn wrong_cloud_is_refused() {
    let dd = data_or_skip!();
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
    let dd = data_or_skip!();
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

    let cut = d.write("cut.json", &common::bytes(PUBLIC[1])[..1_000_000]);
    refused(d.path(), &cfg_file(&cut), ErrorKind::Parse, "ends early");

    refused(d.path(), &cfg_file(&d.path().join("nope.json")), ErrorKind::Config, "cannot read");

    let mut small = cfg_file(&dd.join(PUBLIC[1]));
    small.max_bytes = 1 << 20;
    refused(d.path(), &small, ErrorKind::TooLarge, "cap");
}

#[test]
fn dry_run_writes_nothing() {
    let dd = data_or_skip!();
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
fn apply_hook_failure_keeps_the_old_state() {
    let dd = data_or_skip!();
    let d = TempDir::new("hook");
    apply_real(d.path(), PUBLIC[0], day(0));
    let before = snapshot(d.path(), &[STATUS_FILE]);
    let mut seen = 0;
    let err = refresh_with(&cfg_file(&dd.join(PUBLIC[1])), d.path(), day(7), false, |st, diff| {
        seen = st.effective().len();
        assert_eq!(diff.added.len(), 5);
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
    let _ = data_or_skip!();
    let d = TempDir::new("history");
    let out = TempDir::new("history-out");
    for i in 0..13u64 {
        let f = d.write("f.json", &crafted(PUBLIC[0], 400 + i, |p| p.push(format!("198.51.100.{i}/32").into())));
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
    let _ = data_or_skip!();
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
