//! Converge ufw to a policy: read its files, plan, and (unless checking) write the rules files
//! in one batch, then let ufw load them with few ufw processes (one reload or enable, plus
//! `ufw default ...` when a default policy must change), with rollback.

use crate::model::{self, FilePlan, OutputPlan, Record, UfwRule};
use std::fmt;
use std::fs;
use std::io::ErrorKind;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vorfw_core::policy::{Family, Policy};

/// The most owned rules a host's ufw gets. ufw has no sets: each peer network of each accepted
/// port is one rule, parsed by ufw from its rules files on every command and walked in order
/// by iptables; above this, a plan is refused (naming the count) rather than made slow.
pub const MAX_RULES: usize = 10_000;

/// Where ufw keeps its state, and its program. Tests point these at a scratch directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `/etc/ufw`: user.rules, user6.rules, ufw.conf, after*.rules.
    pub etc_ufw: PathBuf,
    /// `/etc/default/ufw`: DEFAULT_INPUT_POLICY, DEFAULT_OUTPUT_POLICY, IPV6.
    pub default_file: PathBuf,
    /// Our record of the outgoing policy the operator had before restricted egress set it to
    /// reject (see [`model::plan_output`]): `/etc/vorstream-firewall/ufw-output-policy`.
    pub output_record: PathBuf,
    /// `/usr/sbin/ufw`.
    pub program: PathBuf,
    /// ufw's own lock (`/run/ufw.lock`), held while we read and write the rules files so a
    /// concurrent `ufw` command cannot interleave. `None`: no locking.
    pub lock: Option<PathBuf>,
    /// systemd's link that starts ufw at boot; when its directory exists but the link does
    /// not, a warning says the rules will not survive a reboot. `None`: not checked.
    pub boot_link: Option<PathBuf>,
    /// `iptables-restore` and `ip6tables-restore`: when only our rules changed on an enabled
    /// ufw, the user chains are reloaded from the written files with `-n` (what ufw's own
    /// start does with them), each family in one atomic transaction, instead of `ufw reload`,
    /// which flushes every chain (briefly filtering nothing) and takes a second or two.
    /// `None`: always `ufw reload`.
    pub restore: Option<(PathBuf, PathBuf)>,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            etc_ufw: "/etc/ufw".into(),
            default_file: "/etc/default/ufw".into(),
            output_record: "/etc/vorstream-firewall/ufw-output-policy".into(),
            program: "/usr/sbin/ufw".into(),
            lock: Some("/run/ufw.lock".into()),
            boot_link: Some("/etc/systemd/system/multi-user.target.wants/ufw.service".into()),
            restore: ["/usr/sbin/iptables-restore", "/sbin/iptables-restore"]
                .iter()
                .zip(["/usr/sbin/ip6tables-restore", "/sbin/ip6tables-restore"])
                .map(|(a, b)| (PathBuf::from(a), PathBuf::from(b)))
                .find(|(a, b)| a.is_file() && b.is_file()),
        }
    }
}

impl Paths {
    pub fn conf(&self) -> PathBuf {
        self.etc_ufw.join("ufw.conf")
    }

    pub fn rules(&self, f: Family) -> PathBuf {
        self.etc_ufw.join(model::file_name(f))
    }

    /// Every file a converge may change (ours and those ufw's CLI rewrites), for rollback.
    fn touched(&self) -> Vec<PathBuf> {
        vec![
            self.rules(Family::V4),
            self.rules(Family::V6),
            self.conf(),
            self.default_file.clone(),
            self.output_record.clone(),
            self.etc_ufw.join("after.rules"),
            self.etc_ufw.join("after6.rules"),
        ]
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// The ufw program exists.
    pub installed: bool,
    /// `ENABLED=yes` in ufw.conf (what ufw itself calls enabled).
    pub enabled: bool,
}

/// Is ufw installed and enabled (default paths)?
pub fn detect() -> Status {
    detect_at(&Paths::default())
}

pub fn detect_at(paths: &Paths) -> Status {
    let installed = paths.program.is_file();
    let conf = fs::read_to_string(paths.conf()).unwrap_or_default();
    let enabled = model::read_settings(&[&conf]).get("enabled").is_some_and(|v| v == "yes");
    Status { installed, enabled }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Something was (or, in check mode, would be) changed.
    pub changed: bool,
    /// The steps, in words, in the order they run.
    pub changes: Vec<String>,
    /// Owned state before and after, one line per item (Ansible's --diff).
    pub before: String,
    pub after: String,
    pub warnings: Vec<String>,
    /// Owned rules added and removed over both files.
    pub added: usize,
    pub removed: usize,
}

/// What ufw's settings say, as far as we care.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    enabled: bool,
    /// `DEFAULT_INPUT_POLICY` lower-cased: drop, accept, reject.
    input: String,
    /// `DEFAULT_OUTPUT_POLICY` lower-cased.
    output: String,
    ipv6: bool,
}

impl Settings {
    fn read(paths: &Paths) -> Result<Settings, String> {
        let default = read(&paths.default_file)?;
        let conf = read(&paths.conf())?;
        let s = model::read_settings(&[&default, &conf]);
        Ok(Settings {
            enabled: s.get("enabled").is_some_and(|v| v == "yes"),
            input: s.get("default_input_policy").cloned().unwrap_or_default(),
            output: s.get("default_output_policy").cloned().unwrap_or_default(),
            ipv6: s.get("ipv6").is_some_and(|v| v == "yes"),
        })
    }

    /// ufw's word for the incoming policy.
    fn incoming(&self) -> &str {
        word(&self.input)
    }

    /// ufw's word for the outgoing policy.
    fn outgoing(&self) -> &str {
        word(&self.output)
    }

    fn render(&self) -> String {
        format!(
            "ufw enabled: {}\ndefault incoming: {}\ndefault outgoing: {}\n",
            if self.enabled { "yes" } else { "no" },
            self.incoming(),
            self.outgoing()
        )
    }
}

/// ufw's word for a default policy value, for people.
fn word(value: &str) -> &str {
    match model::policy_word(value) {
        Some(w) => w,
        None if value.is_empty() => "(unset)",
        None => value,
    }
}

fn read(p: &Path) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// One write step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Write(Family),
    /// Write our record of the outgoing policy (before changing it).
    Record(String),
    DefaultDeny,
    /// `ufw default <allow|deny|reject> outgoing`.
    DefaultOutgoing(&'static str),
    Enable,
    Reload,
    /// Load the user chains from the written files (see [`Paths::restore`]).
    LoadUserChains,
    /// Remove our record of the outgoing policy (once it is put back).
    Forget,
}

impl Step {
    fn ufw_args(&self) -> &'static [&'static str] {
        match self {
            Step::Write(_) | Step::Record(_) | Step::Forget => &[],
            Step::DefaultDeny => &["default", "deny", "incoming"],
            Step::DefaultOutgoing("allow") => &["default", "allow", "outgoing"],
            Step::DefaultOutgoing("deny") => &["default", "deny", "outgoing"],
            Step::DefaultOutgoing(_) => &["default", "reject", "outgoing"],
            Step::Enable => &["--force", "enable"],
            Step::Reload | Step::LoadUserChains => &["reload"],
        }
    }

    /// Changes the running firewall (through ufw or iptables-restore), rather than a file.
    fn runs_ufw(&self) -> bool {
        !self.ufw_args().is_empty()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Write(fam) => write!(f, "write {}", model::file_name(*fam)),
            Step::Record(_) => f.write_str("record the outgoing policy"),
            Step::Forget => f.write_str("remove the record of the outgoing policy"),
            Step::LoadUserChains => f.write_str("load the user chains (iptables-restore -n)"),
            s => write!(f, "ufw {}", s.ufw_args().join(" ")),
        }
    }
}

/// Our record of the outgoing policy: its value, `None` when there is none.
fn read_record(paths: &Paths) -> Result<Option<String>, String> {
    let p = &paths.output_record;
    match fs::read_to_string(p) {
        Ok(text) => model::read_output_record(&text).map(Some).map_err(|e| {
            format!("{}: {e} (remove the file if the outgoing policy should not be put back)", p.display())
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
    }
}

/// What [`prepare`] read and planned.
struct Prepared {
    /// The report, in check-mode form.
    report: Report,
    settings: Settings,
    /// The plan of each rules file.
    plans: Vec<FilePlan>,
    /// The steps to run (none when everything is as wanted).
    steps: Vec<Step>,
}

/// Read ufw's state and plan what converging takes.
fn prepare(paths: &Paths, want: &[UfwRule], restricted: bool) -> Result<Prepared, String> {
    let mut report = Report::default();
    let settings = Settings::read(paths)?;
    let recorded = read_record(paths)?;
    let output: OutputPlan = model::plan_output(restricted, &settings.output, recorded.as_deref())
        .map_err(|e| format!("{}: {e}", paths.default_file.display()))?;
    let mut plans: Vec<FilePlan> = vec![];
    for fam in [Family::V4, Family::V6] {
        let current = read(&paths.rules(fam))?;
        let mine: Vec<UfwRule> = want.iter().filter(|r| r.family == fam).cloned().collect();
        if fam == Family::V6 && !settings.ipv6 {
            if !mine.is_empty() {
                report.warnings.push(format!(
                    "IPV6=no in {}: ufw ignores user6.rules, so the {} IPv6 rules of the policy are not applied \
                     (set IPV6=yes to apply them)",
                    paths.default_file.display(),
                    mine.len()
                ));
            }
            // ufw rewrites user6.rules without any rule when IPv6 is off: leave it alone.
            let file = model::RulesFile::parse(&current).map_err(|e| format!("user6.rules: {e}"))?;
            let owned = model::render_owned(&file, fam);
            plans.push(FilePlan {
                family: fam,
                content: current,
                changed: false,
                added: 0,
                removed: 0,
                kept: file.operator().count(),
                before: owned.clone(),
                after: owned,
            });
            continue;
        }
        plans.push(model::plan_file(fam, &current, &mine)?);
    }
    if restricted && !settings.ipv6 {
        report.warnings.push(format!(
            "IPV6=no in {}: ufw does not filter IPv6 at all, so restricted egress leaves IPv6 traffic unrestricted",
            paths.default_file.display()
        ));
    }
    if let Some(link) = &paths.boot_link {
        if link.parent().is_some_and(Path::is_dir) && fs::symlink_metadata(link).is_err() {
            report.warnings.push(format!(
                "ufw.service is not enabled in systemd ({} is missing): ufw will not start at boot \
                 (systemctl enable ufw)",
                link.display()
            ));
        }
    }
    let want_settings =
        Settings { enabled: true, input: "drop".into(), output: output.after.clone(), ipv6: settings.ipv6 };
    report.before = settings.render() + &plans.iter().map(|p| p.before.as_str()).collect::<String>();
    report.after = want_settings.render() + &plans.iter().map(|p| p.after.as_str()).collect::<String>();
    report.added = plans.iter().map(|p| p.added).sum();
    report.removed = plans.iter().map(|p| p.removed).sum();

    let mut steps: Vec<Step> = vec![];
    for p in &plans {
        if let Some(d) = p.describe() {
            report.changes.push(d);
            steps.push(Step::Write(p.family));
        }
    }
    let rules_changed = !steps.is_empty();
    let record = paths.output_record.display();
    if let Record::Write(v) = &output.record {
        // Recorded before the policy changes, so that it is known even if what follows fails.
        steps.push(Step::Record(v.clone()));
    }
    if settings.input != "drop" {
        report.changes.push(format!("set the default incoming policy to deny (was {})", settings.incoming()));
        steps.push(Step::DefaultDeny);
    }
    if let Some(value) = &output.set {
        let new = model::policy_word(value).unwrap_or(model::RESTRICTED_OUTPUT);
        let was = settings.outgoing();
        report.changes.push(match (&output.record, &recorded) {
            (Record::Write(_), _) => format!(
                "set the default outgoing policy to {new} for restricted egress (was {was}; {was} is recorded in \
                 {record} and put back when egress is open)"
            ),
            (Record::Remove, _) => {
                format!(
                    "put back the default outgoing policy {new} recorded in {record} (was {was} for restricted egress)"
                )
            }
            (_, Some(r)) => format!(
                "set the default outgoing policy to {new} for restricted egress (was {was}; {} stays recorded in \
                 {record} as the one to put back)",
                word(r)
            ),
            (_, None) => format!("set the default outgoing policy to {new} (was {was})"),
        });
        steps.push(Step::DefaultOutgoing(new));
    }
    let restarts = steps.iter().any(|s| matches!(s, Step::DefaultDeny | Step::DefaultOutgoing(_)));
    if !settings.enabled {
        report.changes.push("enable ufw".into());
        steps.push(Step::Enable);
    } else if rules_changed && !restarts {
        // (`ufw default` restarts an enabled ufw itself, which loads the new files.)
        if paths.restore.is_some() {
            report.changes.push("load ufw's user chains from the rules files (one transaction per family)".into());
            steps.push(Step::LoadUserChains);
        } else {
            report.changes.push("reload ufw".into());
            steps.push(Step::Reload);
        }
    }
    if output.record == Record::Remove {
        if output.set.is_none() {
            let r = recorded.as_deref().map(word).unwrap_or_default();
            report.changes.push(format!(
                "remove the outgoing policy {r} recorded in {record}: the policy is {} now, which egress did not \
                 set, so it stays",
                settings.outgoing()
            ));
        }
        steps.push(Step::Forget);
    }
    report.changed = !steps.is_empty();
    Ok(Prepared { report, settings, plans, steps })
}

/// Bring ufw to `policy` (default paths). See [`converge_at`].
pub fn converge(policy: &Policy, check: bool) -> Result<Report, String> {
    converge_at(&Paths::default(), policy, check)
}

/// Bring ufw to `policy`: the owned rules in user.rules/user6.rules (inbound `allow in` and
/// outbound `allow out`), the default incoming policy deny, the default outgoing policy reject
/// for restricted egress (or back to what it was, see [`model::plan_output`]), ufw enabled. In
/// check mode nothing is written and the report says what would be. Unchanged state: no write
/// and no process. Otherwise both rules files are written first (atomically), then the
/// outgoing policy is recorded if it is about to be restricted, ufw's CLI sets the default
/// policies if needed and enables ufw, or reloads it if it was enabled already (`ufw default`
/// restarts an enabled ufw itself), so ufw never filters before our rules are in place, and the
/// outgoing policy never becomes reject before our `allow out` rules are loaded. On failure
/// every file is restored (and ufw reloaded, or stopped again if it was disabled) and the
/// error names the failed step.
pub fn converge_at(paths: &Paths, policy: &Policy, check: bool) -> Result<Report, String> {
    if !paths.program.is_file() {
        return Err(format!("ufw is not installed ({} not found)", paths.program.display()));
    }
    let want = model::desired(policy);
    if want.len() > MAX_RULES {
        return Err(format!(
            "the plan needs {} ufw rules (one per peer network, port and protocol), above ufw's ceiling of \
             {MAX_RULES}: every rule is a line ufw parses and a rule iptables walks; use nftables or firewalld \
             (host_firewall_backend), whose sets hold any number of peers",
            want.len()
        ));
    }
    let restricted = policy.egress.restricted;
    let first = prepare(paths, &want, restricted)?;
    if check || first.steps.is_empty() {
        return Ok(first.report);
    }
    // Something to write: take ufw's lock (so that no ufw command interleaves) and plan again
    // from what the files hold now. The lock is released before ufw runs: it takes it too.
    let mut lock = lock(paths)?;
    let Prepared { mut report, settings, plans, steps } = prepare(paths, &want, restricted)?;
    if steps.is_empty() {
        return Ok(report);
    }
    let backup = Backup::take(paths)?;
    for (i, step) in steps.iter().enumerate() {
        let result = match step {
            Step::Write(fam) => {
                let plan = plans.iter().find(|p| p.family == *fam).expect("planned");
                write_file(&paths.rules(*fam), plan.content.as_bytes())
            }
            Step::Record(value) => write_file(&paths.output_record, model::output_record(value).as_bytes()),
            Step::Forget => fs::remove_file(&paths.output_record)
                .or_else(|e| if e.kind() == ErrorKind::NotFound { Ok(()) } else { Err(e) })
                .map_err(|e| format!("cannot remove {}: {e}", paths.output_record.display())),
            Step::LoadUserChains => {
                drop(lock.take());
                load_user_chains(paths, settings.ipv6)
            }
            _ => {
                drop(lock.take());
                run(paths, step.ufw_args())
            }
        };
        if let Err(e) = result {
            drop(lock.take());
            let msg = format!("step {} of {} ({step}) failed: {e}", i + 1, steps.len());
            // Make the running firewall match the restored files again, if ufw touched it.
            let ran = &steps[..=i];
            let again: &[&str] = if settings.enabled && ran.iter().any(Step::runs_ufw) {
                &["reload"]
            } else if ran.contains(&Step::Enable) {
                // It was disabled and the enable failed half-way: stop it again.
                &["--force", "disable"]
            } else {
                &[]
            };
            return Err(match backup.restore(paths, again) {
                Ok(()) => format!("{msg}; the previous state was restored"),
                Err(r) => format!("{msg}; restoring the previous state failed too: {r}"),
            });
        }
    }
    drop(lock);
    let now = Settings::read(paths)?;
    let set_output = steps.iter().find_map(|s| if let Step::DefaultOutgoing(w) = s { Some(*w) } else { None });
    if let Some(w) = set_output.filter(|w| now.outgoing() != *w) {
        report.warnings.push(format!(
            "the default outgoing policy is {} after the change, not {w}; the next run will report a change",
            now.outgoing()
        ));
    }
    // ufw rewrote both files when it (re)started: check it read our rules back as written.
    for p in plans.iter().filter(|p| p.changed) {
        let now = read(&paths.rules(p.family))?;
        let mine: Vec<UfwRule> = want.iter().filter(|r| r.family == p.family).cloned().collect();
        if model::plan_file(p.family, &now, &mine).map(|again| again.changed).unwrap_or(true) {
            report.warnings.push(format!(
                "ufw rewrote {} differently from what was written; the next run will report a change",
                model::file_name(p.family)
            ));
        }
    }
    Ok(report)
}

/// Feed the rules files to `iptables-restore -n` / `ip6tables-restore -n`: every chain the file
/// declares (ufw's user chains) is flushed and refilled in one transaction; nothing else moves.
fn load_user_chains(paths: &Paths, ipv6: bool) -> Result<(), String> {
    let Some((v4, v6)) = &paths.restore else { return run(paths, &["reload"]) };
    let mut jobs = vec![(v4, paths.rules(Family::V4))];
    if ipv6 {
        jobs.push((v6, paths.rules(Family::V6)));
    }
    for (program, file) in jobs {
        vorfw_sys::Cmd::new(program, &["-n"]).stdin(vorfw_sys::Stdin::File(&file)).run()?;
    }
    Ok(())
}

/// ufw's CLI, with untranslated messages.
fn run(paths: &Paths, args: &[&str]) -> Result<(), String> {
    vorfw_sys::Cmd::new(&paths.program, args).run().map(|_| ())
}

/// ufw's lock (a POSIX record lock on the whole file, as Python's `fcntl.lockf` takes it), when
/// ufw's lock directory exists.
fn lock(paths: &Paths) -> Result<Option<vorfw_sys::Lock>, String> {
    let Some(p) = &paths.lock else { return Ok(None) };
    if !p.parent().is_some_and(Path::is_dir) {
        return Ok(None);
    }
    vorfw_sys::Lock::take(p, vorfw_sys::LockKind::Record).map_err(|e| format!("ufw's lock: {e}"))
}

/// Write a file: replaced atomically, keeping its mode and owner; a new one gets 0644.
fn write_file(path: &Path, content: &[u8]) -> Result<(), String> {
    vorfw_sys::replace(path, content, 0o644)
}

/// Copies of every file a converge may change, and whether ufw was enabled: what a failed
/// converge puts back, and commit-confirm's rollback point ([`restore`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// path → content (`None`: absent).
    pub files: Vec<(PathBuf, Option<String>)>,
    pub enabled: bool,
}

impl Backup {
    pub fn take(paths: &Paths) -> Result<Backup, String> {
        let mut files = vec![];
        for p in paths.touched() {
            let text = vorfw_sys::read_optional(&p)
                .map_err(|e| format!("cannot back up {e}"))?
                .map(|b| String::from_utf8(b).map_err(|_| format!("cannot back up {}: not UTF-8 text", p.display())))
                .transpose()?;
            files.push((p, text));
        }
        Ok(Backup { files, enabled: detect_at(paths).enabled })
    }

    /// Put back every file that differs, then run `ufw <again>` (if not empty). Returns the
    /// files put back.
    fn put_back(&self, paths: &Paths, again: &[&str]) -> Result<Vec<String>, String> {
        let mut errors = vec![];
        let mut changes = vec![];
        for (p, content) in &self.files {
            let now = fs::read_to_string(p).ok();
            if now == *content {
                continue;
            }
            let r = match content {
                Some(c) => write_file(p, c.as_bytes()),
                None => fs::remove_file(p).map_err(|e| format!("{}: {e}", p.display())),
            };
            match r {
                Ok(()) => changes.push(format!("put back {}", p.display())),
                Err(e) => errors.push(e),
            }
        }
        if !again.is_empty() {
            match run(paths, again) {
                Ok(()) => changes.push(format!("ufw {}", again.join(" "))),
                Err(e) => errors.push(format!("ufw {}: {e}", again.join(" "))),
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors.join("; "))
        }
    }

    fn restore(&self, paths: &Paths, again: &[&str]) -> Result<(), String> {
        self.put_back(paths, again).map(|_| ())
    }
}

/// Put a [`Backup`] back (commit-confirm's rollback): the files, under ufw's lock, then ufw
/// brought to match them: reloaded if it was and is enabled, enabled or disabled again if that
/// changed. Nothing differs: nothing is run. Returns the changes.
pub fn restore(paths: &Paths, backup: &Backup) -> Result<Vec<String>, String> {
    let now_enabled = detect_at(paths).enabled;
    let differ: Vec<&PathBuf> =
        backup.files.iter().filter(|(p, c)| fs::read_to_string(p).ok() != *c).map(|(p, _)| p).collect();
    if differ.is_empty() && now_enabled == backup.enabled {
        return Ok(vec![]);
    }
    // Only our rules changed on an enabled ufw: reload just the user chains, as a converge does.
    let rules_only = differ.iter().all(|p| [paths.rules(Family::V4), paths.rules(Family::V6)].contains(p));
    let again: &[&str] = match (backup.enabled, now_enabled) {
        (true, true) if rules_only && paths.restore.is_some() => &[],
        (true, true) => &["reload"],
        (true, false) => &["--force", "enable"],
        (false, true) => &["--force", "disable"],
        (false, false) => &[],
    };
    // The files under ufw's lock; ufw itself takes it, so it is released before ufw runs.
    let lock = lock(paths)?;
    let mut changes = backup.put_back(paths, &[])?;
    drop(lock);
    if backup.enabled && now_enabled && again.is_empty() {
        load_user_chains(paths, Settings::read(paths)?.ipv6)?;
        changes.push(Step::LoadUserChains.to_string());
    }
    if !again.is_empty() {
        run(paths, again).map_err(|e| format!("ufw {}: {e}", again.join(" ")))?;
        changes.push(format!("ufw {}", again.join(" ")));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // The policies behind the fixtures (tests/fixtures/generate.sh), shared with model's tests.
    use crate::model::tests::{egress_policy, fixture_policy as policy};

    /// A scratch /etc/ufw + /etc/default/ufw + a fake ufw that logs its arguments and does
    /// what `script` says.
    struct Scratch {
        dir: PathBuf,
        paths: Paths,
    }

    impl Scratch {
        fn new(name: &str, fixture: &str, enabled: bool, input: &str, script: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("vorfw-ufw-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("etc-ufw")).unwrap();
            let fx = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
            for f in ["user.rules", "user6.rules"] {
                fs::copy(format!("{fx}/{f}"), dir.join("etc-ufw").join(f)).unwrap();
                fs::set_permissions(dir.join("etc-ufw").join(f), fs::Permissions::from_mode(0o640)).unwrap();
            }
            let yn = if enabled { "yes" } else { "no" };
            fs::write(dir.join("etc-ufw/ufw.conf"), format!("# conf\nENABLED={yn}\nLOGLEVEL=low\n")).unwrap();
            fs::write(dir.join("etc-ufw/after.rules"), "after\n").unwrap();
            fs::write(
                dir.join("default-ufw"),
                format!("IPV6=yes\nDEFAULT_INPUT_POLICY=\"{input}\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n"),
            )
            .unwrap();
            let program = dir.join("ufw");
            let log = dir.join("log");
            fs::write(&program, format!("#!/bin/sh\necho \"$*\" >>{}\n{script}\n", log.display())).unwrap();
            fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
            let paths = Paths {
                etc_ufw: dir.join("etc-ufw"),
                default_file: dir.join("default-ufw"),
                output_record: dir.join("vorstream-firewall/ufw-output-policy"),
                program,
                lock: Some(dir.join("ufw.lock")),
                boot_link: Some(dir.join("wants/ufw.service")),
                restore: None,
            };
            Scratch { dir, paths }
        }

        fn log(&self) -> String {
            fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        }

        fn rules(&self, f: &str) -> String {
            fs::read_to_string(self.paths.etc_ufw.join(f)).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(dir: &str, f: &str) -> String {
        fs::read_to_string(format!("{}/tests/fixtures/{dir}/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn check_mode_writes_nothing_and_runs_nothing() {
        let s = Scratch::new("check", "operator", false, "ACCEPT", "exit 1");
        let r = converge_at(&s.paths, &policy(), true).unwrap();
        assert!(r.changed);
        assert_eq!(
            r.changes,
            [
                "user.rules: add 5 and remove 0 owned rules, keep 5 operator rules",
                "user6.rules: add 3 and remove 0 owned rules, keep 5 operator rules",
                "set the default incoming policy to deny (was allow)",
                "enable ufw",
            ]
        );
        assert_eq!(s.rules("user.rules"), fixture("operator", "user.rules"));
        assert_eq!(s.log(), "");
        assert!(r.before.starts_with("ufw enabled: no\ndefault incoming: allow\ndefault outgoing: allow\n"));
        assert!(r.after.starts_with(
            "ufw enabled: yes\ndefault incoming: deny\ndefault outgoing: allow\nallow 8081/tcp from any (vorfw:a-user)\n"
        ));
        assert_eq!(r.after.lines().count(), 3 + 8);
        assert_eq!((r.added, r.removed), (8, 0));
    }

    #[test]
    fn apply_writes_both_files_then_enables_once() {
        let s = Scratch::new("apply", "operator", false, "DROP", "exit 0");
        let r = converge_at(&s.paths, &policy(), false).unwrap();
        assert!(r.changed, "{r:?}");
        assert_eq!(s.rules("user.rules"), fixture("mixed", "user.rules"));
        assert_eq!(s.rules("user6.rules"), fixture("mixed", "user6.rules"));
        assert_eq!(s.log(), "--force enable\n");
        assert!(s.paths.lock.as_ref().unwrap().exists());
        let mode = fs::metadata(s.paths.rules(Family::V4)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(fs::read_dir(&s.paths.etc_ufw).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')));
    }

    #[test]
    fn unchanged_state_makes_no_write_and_runs_no_process() {
        let s = Scratch::new("same", "mixed", true, "DROP", "exit 1");
        let before = fs::metadata(s.paths.rules(Family::V4)).unwrap().modified().unwrap();
        let r = converge_at(&s.paths, &policy(), false).unwrap();
        assert!(!r.changed && r.changes.is_empty(), "{r:?}");
        assert_eq!(r.before, r.after);
        assert_eq!(s.log(), "");
        assert_eq!(fs::metadata(s.paths.rules(Family::V4)).unwrap().modified().unwrap(), before);
        // not even ufw's lock file is created
        assert!(!s.paths.lock.as_ref().unwrap().exists());
    }

    #[test]
    fn enabled_ufw_is_reloaded_once_or_restarted_by_default_policy() {
        let s = Scratch::new("reload", "stale", true, "DROP", "exit 0");
        let r = converge_at(&s.paths, &policy(), false).unwrap();
        assert_eq!(r.changes.last().unwrap(), "reload ufw");
        assert_eq!(s.log(), "reload\n");
        assert_eq!(s.rules("user.rules"), fixture("mixed2", "user.rules"));
        let s = Scratch::new("default", "stale", true, "REJECT", "exit 0");
        let r = converge_at(&s.paths, &policy(), false).unwrap();
        assert_eq!(r.changes.last().unwrap(), "set the default incoming policy to deny (was reject)");
        assert_eq!(s.log(), "default deny incoming\n");
    }

    #[test]
    fn only_the_user_chains_are_loaded_when_only_rules_change() {
        let mut s = Scratch::new("restore", "stale", true, "DROP", "exit 0");
        let fake = s.dir.join("restore");
        let log = s.dir.join("log");
        fs::write(&fake, format!("#!/bin/sh\necho \"$(basename $0) $*\" >>{}\ncat >/dev/null\n", log.display()))
            .unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        s.paths.restore = Some((fake.clone(), fake));
        let r = converge_at(&s.paths, &policy(), false).unwrap();
        assert_eq!(
            r.changes.last().unwrap(),
            "load ufw's user chains from the rules files (one transaction per family)"
        );
        // Both families, no ufw process at all.
        assert_eq!(s.log(), "restore -n\nrestore -n\n");
        assert_eq!(s.rules("user.rules"), fixture("mixed2", "user.rules"));
        // A failing restore: files put back and ufw reloaded to match them.
        let mut s = Scratch::new("restore-fail", "stale", true, "DROP", "exit 0");
        let bad = s.dir.join("bad");
        fs::write(&bad, "#!/bin/sh\necho nope >&2\nexit 2\n").unwrap();
        fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
        s.paths.restore = Some((bad.clone(), bad));
        let before = s.rules("user.rules");
        let e = converge_at(&s.paths, &policy(), false).unwrap_err();
        assert!(e.contains("load the user chains") && e.contains("nope") && e.contains("restored"), "{e}");
        assert_eq!(s.rules("user.rules"), before);
        assert_eq!(s.log(), "reload\n");
    }

    #[test]
    fn a_backup_put_back_after_a_converge_is_the_state_before_it() {
        // Enabled before and after, only our rules changed: the user chains are reloaded.
        let mut s = Scratch::new("snapshot", "stale", true, "DROP", "exit 0");
        let fake = s.dir.join("restore");
        fs::write(&fake, format!("#!/bin/sh\necho \"restore $*\" >>{}\ncat >/dev/null\n", s.dir.join("log").display()))
            .unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        s.paths.restore = Some((fake.clone(), fake));
        let before = Backup::take(&s.paths).unwrap();
        let json = serde_json::to_value(&before).unwrap();
        converge_at(&s.paths, &policy(), false).unwrap();
        assert_ne!(Backup::take(&s.paths).unwrap(), before);
        let back: Backup = serde_json::from_value(json).unwrap();
        let changes = restore(&s.paths, &back).unwrap();
        assert_eq!(Backup::take(&s.paths).unwrap(), before);
        let v4 = format!("put back {}", s.paths.rules(Family::V4).display());
        assert!(changes.contains(&v4), "{changes:?}");
        assert_eq!(s.log(), "restore -n\nrestore -n\nrestore -n\nrestore -n\n");
        // Nothing differs: nothing runs.
        assert_eq!(restore(&s.paths, &back).unwrap(), Vec::<String>::new());
        // Disabled before, enabled by the converge: disabled again, files as they were.
        let s = Scratch::new("snapshot-off", "stale", false, "DROP", "exit 0");
        let before = Backup::take(&s.paths).unwrap();
        converge_at(&s.paths, &policy(), false).unwrap();
        fs::write(s.paths.conf(), "ENABLED=yes\n").unwrap(); // what ufw's enable wrote
        restore(&s.paths, &before).unwrap();
        assert_eq!(Backup::take(&s.paths).unwrap(), before);
        assert!(s.log().ends_with("--force disable\n"), "{}", s.log());
    }

    #[test]
    fn a_plan_above_the_ceiling_is_refused_before_anything_is_written() {
        use ipnet::IpNet;
        let s = Scratch::new("ceiling", "stale", true, "DROP", "exit 0");
        let before = Backup::take(&s.paths).unwrap();
        let mut p = policy();
        // Scattered peers that aggregate into nothing: one /32 each, two ports.
        let nets: Vec<IpNet> = (0..(MAX_RULES as u32 / 2 + 1))
            .map(|i| IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + 2 * i))))
            .collect();
        p.sets.insert(("g-wide".into(), Family::V4), nets);
        for port in [7001, 7002] {
            p.accepts.insert(
                vorfw_core::policy::Accept {
                    set: "g-wide".into(),
                    family: Family::V4,
                    protocol: vorfw_core::Proto::Tcp,
                    port,
                },
                Default::default(),
            );
        }
        let e = converge_at(&s.paths, &p, true).unwrap_err();
        assert!(
            e.contains(&format!("above ufw's ceiling of {MAX_RULES}")) && e.contains("use nftables or firewalld"),
            "{e}"
        );
        assert!(converge_at(&s.paths, &p, false).is_err());
        assert_eq!(Backup::take(&s.paths).unwrap(), before);
        assert_eq!(s.log(), "");
    }

    #[test]
    fn failure_restores_files_and_names_the_step() {
        // ufw fails to enable after changing ufw.conf and after.rules
        let s = Scratch::new(
            "fail",
            "operator",
            false,
            "ACCEPT",
            "case \"$*\" in *enable) echo 'ENABLED=yes' >$(dirname $0)/etc-ufw/ufw.conf; echo boom >&2; exit 1;; esac",
        );
        let conf = fs::read_to_string(s.paths.conf()).unwrap();
        let e = converge_at(&s.paths, &policy(), false).unwrap_err();
        assert!(e.starts_with("step 4 of 4 (ufw --force enable) failed: "), "{e}");
        assert!(e.contains("boom") && e.ends_with("the previous state was restored"), "{e}");
        assert_eq!(s.rules("user.rules"), fixture("operator", "user.rules"));
        assert_eq!(s.rules("user6.rules"), fixture("operator", "user6.rules"));
        assert_eq!(fs::read_to_string(s.paths.conf()).unwrap(), conf);
        // ufw was disabled: after the failed enable, it is stopped again
        assert_eq!(s.log(), "default deny incoming\n--force enable\n--force disable\n");
    }

    #[test]
    fn ipv6_off_leaves_user6_rules_alone_and_warns() {
        let s = Scratch::new("nov6", "operator", true, "DROP", "exit 0");
        fs::write(&s.paths.default_file, "IPV6=no\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n")
            .unwrap();
        let r = converge_at(&s.paths, &policy(), false).unwrap();
        assert_eq!(s.rules("user6.rules"), fixture("operator", "user6.rules"));
        assert_eq!(s.rules("user.rules"), fixture("mixed", "user.rules"));
        assert!(r.warnings[0].contains("the 3 IPv6 rules"), "{:?}", r.warnings);
        assert_eq!(r.warnings.len(), 1);
        // restricted egress: IPv6 stays unrestricted, and says so
        let r = converge_at(&s.paths, &egress_policy(true), true).unwrap();
        assert!(r.warnings.iter().any(|w| w.contains("leaves IPv6 traffic unrestricted")), "{:?}", r.warnings);
    }

    #[test]
    fn a_missing_boot_link_is_a_warning() {
        let s = Scratch::new("boot", "mixed", true, "DROP", "exit 1");
        assert!(converge_at(&s.paths, &policy(), true).unwrap().warnings.is_empty());
        fs::create_dir(s.dir.join("wants")).unwrap();
        let r = converge_at(&s.paths, &policy(), true).unwrap();
        assert!(r.warnings[0].contains("will not start at boot"), "{:?}", r.warnings);
        std::os::unix::fs::symlink("/nonexistent/ufw.service", s.dir.join("wants/ufw.service")).unwrap();
        assert!(converge_at(&s.paths, &policy(), true).unwrap().warnings.is_empty());
    }

    /// A fake ufw that, like ufw, writes `ufw default X outgoing` to /etc/default/ufw.
    const DEFAULT_OUTGOING: &str = r#"case "$*" in "default "*" outgoing")
        v=$(echo "$2" | sed 's/allow/ACCEPT/;s/deny/DROP/;s/reject/REJECT/')
        sed -i "s/^DEFAULT_OUTPUT_POLICY=.*/DEFAULT_OUTPUT_POLICY=\"$v\"/" "$(dirname "$0")/default-ufw";;
        esac"#;

    impl Scratch {
        fn set_output(&self, value: &str) {
            let text = fs::read_to_string(&self.paths.default_file).unwrap();
            let text: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("DEFAULT_OUTPUT_POLICY=") {
                        format!("DEFAULT_OUTPUT_POLICY=\"{value}\"\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            fs::write(&self.paths.default_file, text).unwrap();
        }

        fn output(&self) -> String {
            let text = fs::read_to_string(&self.paths.default_file).unwrap();
            model::read_settings(&[&text])["default_output_policy"].clone()
        }

        fn record(&self) -> Option<String> {
            fs::read_to_string(&self.paths.output_record).ok()
        }

        fn clear_log(&self) {
            let _ = fs::remove_file(self.dir.join("log"));
        }
    }

    #[test]
    fn restricted_egress_in_check_mode_writes_nothing() {
        let s = Scratch::new("egress-check", "mixed", true, "DROP", "exit 1");
        let r = converge_at(&s.paths, &egress_policy(true), true).unwrap();
        let record = s.paths.output_record.display().to_string();
        assert_eq!(
            r.changes,
            [
                "user.rules: add 7 and remove 0 owned rules, keep 5 operator rules".to_string(),
                "user6.rules: add 4 and remove 0 owned rules, keep 5 operator rules".into(),
                format!(
                    "set the default outgoing policy to reject for restricted egress (was allow; allow is recorded \
                     in {record} and put back when egress is open)"
                ),
            ]
        );
        assert_eq!((r.added, r.removed), (11, 0));
        assert!(r.before.starts_with("ufw enabled: yes\ndefault incoming: deny\ndefault outgoing: allow\n"));
        assert!(r.after.starts_with("ufw enabled: yes\ndefault incoming: deny\ndefault outgoing: reject\n"));
        assert!(r.after.contains("\nallow out 443/tcp to 20.190.128.0/18 (vorfw:entra)\n"));
        assert!(!r.before.contains(" out "));
        assert_eq!(s.log(), "");
        assert_eq!(s.rules("user.rules"), fixture("mixed", "user.rules"));
        assert_eq!(s.output(), "accept");
        assert_eq!(s.record(), None);
        assert!(!s.paths.output_record.parent().unwrap().exists());
    }

    #[test]
    fn restricting_records_the_policy_and_opening_puts_it_back() {
        let s = Scratch::new("egress", "mixed", true, "DROP", DEFAULT_OUTGOING);
        // restrict: rules written, policy recorded, then one `ufw default` (which restarts ufw:
        // no reload)
        let r = converge_at(&s.paths, &egress_policy(true), false).unwrap();
        assert!(r.changed);
        assert_eq!(s.log(), "default reject outgoing\n");
        assert_eq!(s.rules("user.rules"), fixture("mixed-restricted", "user.rules"));
        assert_eq!(s.rules("user6.rules"), fixture("mixed-restricted", "user6.rules"));
        assert_eq!(s.output(), "reject");
        assert_eq!(s.record().as_deref(), Some(model::output_record("accept").as_str()));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // converged
        s.clear_log();
        let r = converge_at(&s.paths, &egress_policy(true), false).unwrap();
        assert!(!r.changed && r.changes.is_empty(), "{r:?}");
        assert_eq!(r.before, r.after);
        assert!(r.after.contains("default outgoing: reject\n"));
        assert_eq!(s.log(), "");
        // open again, same outbound accepts: the guard's replies go and the policy goes back,
        // with one restart by `ufw default`
        let r = converge_at(&s.paths, &egress_policy(false), false).unwrap();
        let record = s.paths.output_record.display().to_string();
        assert_eq!(
            r.changes,
            [
                "user.rules: add 0 and remove 1 owned rules, keep 5 operator rules".to_string(),
                "user6.rules: add 0 and remove 1 owned rules, keep 5 operator rules".into(),
                format!("put back the default outgoing policy allow recorded in {record} (was reject for restricted egress)"),
            ]
        );
        assert!(r.before.contains("default outgoing: reject\n") && r.after.contains("default outgoing: allow\n"));
        assert!(r.before.contains("\nallow out from port 22/tcp to 10.0.0.1 (vorfw:ctl)\n"), "{}", r.before);
        assert!(!r.after.contains("from port"));
        assert_eq!((r.added, r.removed), (0, 2));
        assert_eq!(s.log(), "default allow outgoing\n");
        assert_eq!(s.output(), "accept");
        assert_eq!(s.record(), None);
        assert_eq!(s.rules("user.rules"), fixture("mixed-egress", "user.rules"));
        assert_eq!(s.rules("user6.rules"), fixture("mixed-egress", "user6.rules"));
        // and stays so
        s.clear_log();
        assert!(!converge_at(&s.paths, &egress_policy(false), false).unwrap().changed);
        // without the guard and the egress accepts, their rules go (one reload)
        let r = converge_at(&s.paths, &policy(), false).unwrap();
        assert_eq!((r.added, r.removed), (0, 2 + 7));
        assert_eq!(s.log(), "reload\n");
        assert_eq!(s.rules("user.rules"), fixture("mixed", "user.rules"));
    }

    #[test]
    fn an_operators_outgoing_policy_is_left_alone() {
        // the operator's own reject: never recorded, never changed
        let s = Scratch::new("egress-own", "mixed-restricted", true, "DROP", DEFAULT_OUTGOING);
        s.set_output("REJECT");
        assert!(!converge_at(&s.paths, &egress_policy(true), false).unwrap().changed);
        let r = converge_at(&s.paths, &egress_policy(false), false).unwrap();
        assert!(r.after.contains("default outgoing: reject\n"));
        assert_eq!((s.output(), s.record(), s.log()), ("reject".into(), None, "reload\n".into()));
        // restricted from deny, then the operator changes it to allow: reject again, and deny
        // (what it was before we first restricted it) stays the one to put back
        s.set_output("DROP");
        s.clear_log();
        let r = converge_at(&s.paths, &egress_policy(true), false).unwrap();
        assert_eq!(s.log(), "default reject outgoing\n");
        assert!(r.changes[2].contains("(was deny; deny is recorded in "), "{:?}", r.changes);
        s.set_output("ACCEPT");
        s.clear_log();
        let r = converge_at(&s.paths, &egress_policy(true), false).unwrap();
        assert!(r.changes[0].contains("(was allow; deny stays recorded in "), "{:?}", r.changes);
        assert_eq!(s.log(), "default reject outgoing\n");
        assert_eq!(s.record().as_deref(), Some(model::output_record("drop").as_str()));
        // open, but the operator already set allow: left alone, the record goes (the replies
        // go too: one reload)
        s.set_output("ACCEPT");
        s.clear_log();
        let r = converge_at(&s.paths, &egress_policy(false), true).unwrap();
        assert!(r.changed);
        assert!(r.changes[3].starts_with("remove the outgoing policy deny recorded in "), "{:?}", r.changes);
        assert_eq!(r.changes.len(), 4, "{:?}", r.changes);
        assert!(s.record().is_some(), "check mode removed the record");
        let r = converge_at(&s.paths, &egress_policy(false), false).unwrap();
        assert!(r.before.contains("default outgoing: allow\n") && r.after.contains("default outgoing: allow\n"));
        assert_eq!((s.output(), s.record(), s.log()), ("accept".into(), None, "reload\n".into()));
        // only the record to forget: a change, but no ufw process
        let s = Scratch::new("egress-forget", "mixed-egress", true, "DROP", "exit 1");
        fs::create_dir_all(s.paths.output_record.parent().unwrap()).unwrap();
        fs::write(&s.paths.output_record, model::output_record("drop")).unwrap();
        let r = converge_at(&s.paths, &egress_policy(false), false).unwrap();
        assert!(r.changed && r.before == r.after, "{r:?}");
        assert_eq!(r.changes.len(), 1, "{:?}", r.changes);
        assert_eq!((s.output(), s.record(), s.log()), ("accept".into(), None, String::new()));
    }

    #[test]
    fn disabled_ufw_gets_its_policies_then_one_enable() {
        let s = Scratch::new("egress-off", "operator", false, "ACCEPT", DEFAULT_OUTGOING);
        let r = converge_at(&s.paths, &egress_policy(true), false).unwrap();
        assert_eq!(s.log(), "default deny incoming\ndefault reject outgoing\n--force enable\n");
        assert_eq!(r.changes.last().unwrap(), "enable ufw");
        assert_eq!(s.rules("user.rules"), fixture("mixed-restricted", "user.rules"));
        assert_eq!(s.rules("user6.rules"), fixture("mixed-restricted", "user6.rules"));
        assert_eq!(s.output(), "reject");
    }

    #[test]
    fn a_failed_policy_change_restores_everything_and_forgets_the_record() {
        let script = format!("{DEFAULT_OUTGOING}\ncase \"$*\" in *outgoing) echo nope >&2; exit 1;; esac");
        let s = Scratch::new("egress-fail", "mixed", true, "DROP", &script);
        let default = fs::read_to_string(&s.paths.default_file).unwrap();
        let e = converge_at(&s.paths, &egress_policy(true), false).unwrap_err();
        assert!(e.starts_with("step 4 of 4 (ufw default reject outgoing) failed: "), "{e}");
        assert!(e.contains("nope") && e.ends_with("the previous state was restored"), "{e}");
        assert_eq!(s.rules("user.rules"), fixture("mixed", "user.rules"));
        assert_eq!(fs::read_to_string(&s.paths.default_file).unwrap(), default);
        assert_eq!(s.record(), None);
        assert_eq!(s.log(), "default reject outgoing\nreload\n");
        // an unreadable record is an error, not a guess
        fs::create_dir_all(s.paths.output_record.parent().unwrap()).unwrap();
        fs::write(&s.paths.output_record, "junk\n").unwrap();
        let e = converge_at(&s.paths, &egress_policy(false), true).unwrap_err();
        assert!(e.contains("no DEFAULT_OUTPUT_POLICY=... line"), "{e}");
    }

    #[test]
    fn detect_reads_the_program_and_ufw_conf() {
        let s = Scratch::new("detect", "pristine", true, "DROP", "exit 0");
        assert_eq!(detect_at(&s.paths), Status { installed: true, enabled: true });
        let mut p = s.paths.clone();
        p.program = s.dir.join("nope");
        assert_eq!(detect_at(&p), Status { installed: false, enabled: true });
        assert!(converge_at(&p, &policy(), true).unwrap_err().contains("not installed"));
    }
}
