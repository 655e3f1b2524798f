//! ufw's default policies: the settings files, and what the outgoing default must become.

use std::collections::BTreeMap;

/// ufw's word (`ufw default <word> ...`, `ufw status`) for a `DEFAULT_*_POLICY` value as
/// [`read_settings`] gives it (lower-cased); `None` for a value ufw's CLI cannot set.
pub fn policy_word(value: &str) -> Option<&'static str> {
    match value {
        "accept" => Some("allow"),
        "drop" => Some("deny"),
        "reject" => Some("reject"),
        _ => None,
    }
}

/// The settings key of the outgoing default policy, in `/etc/default/ufw` and in our record.
pub const OUTPUT_POLICY_KEY: &str = "DEFAULT_OUTPUT_POLICY";

/// What restricted egress sets the outgoing default policy to (`ufw default reject outgoing`).
pub const RESTRICTED_OUTPUT: &str = "reject";

/// The content of our record of the operator's outgoing policy (`value` lower-cased, as read).
pub fn output_record(value: &str) -> String {
    format!(
        "# vorstream.firewall (ufw backend): ufw's default outgoing policy before host_firewall_egress\n\
         # restricted set it to REJECT. It is put back when egress is open again; without this file\n\
         # the outgoing policy is never changed back.\n\
         {OUTPUT_POLICY_KEY}=\"{}\"\n",
        value.to_uppercase()
    )
}

/// The value (lower-cased) in a record written by [`output_record`]: one ufw's CLI can set.
pub fn read_output_record(text: &str) -> Result<String, String> {
    let value = read_settings(&[text])
        .remove(&OUTPUT_POLICY_KEY.to_lowercase())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("no {OUTPUT_POLICY_KEY}=... line"))?;
    match policy_word(&value) {
        Some(_) => Ok(value),
        None => Err(format!("the recorded outgoing policy '{value}' is not one ufw can set (ACCEPT, DROP or REJECT)")),
    }
}

/// What becomes of our record of the outgoing policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Leave it as it is (or absent).
    Keep,
    /// Write it with this value (lower-cased).
    Write(String),
    Remove,
}

/// What converging the outgoing default policy takes. See [`plan_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    /// The value (lower-cased) to set, `None` to leave the policy alone.
    pub set: Option<String>,
    /// What to do with the record.
    pub record: Record,
    /// The outgoing policy afterwards.
    pub after: String,
}

/// Plan the outgoing default policy. `current` is `DEFAULT_OUTPUT_POLICY` (lower-cased),
/// `recorded` what our record holds (`None`: no record).
///
/// * Restricted egress: the policy must be `reject`. If it is not, it is set, and the value it
///   had is recorded, unless a record exists already (the policy the operator had before we
///   first restricted egress stays the one to put back).
/// * Open egress: with a record, the recorded policy is put back if the policy is still
///   `reject`, and the record is removed; if the operator changed the policy since, it is left
///   as it is (and the record removed). Without a record it is never changed: we never
///   restricted it (an operator's own `reject` stays).
pub fn plan_output(restricted: bool, current: &str, recorded: Option<&str>) -> Result<OutputPlan, String> {
    if restricted {
        if current == RESTRICTED_OUTPUT {
            return Ok(OutputPlan { set: None, record: Record::Keep, after: current.into() });
        }
        let record = match recorded {
            Some(_) => Record::Keep,
            None if policy_word(current).is_none() => {
                return Err(format!(
                    "{OUTPUT_POLICY_KEY} is '{current}', not a policy ufw knows (ACCEPT, DROP or REJECT): \
                     set it with `ufw default allow|deny|reject outgoing` first"
                ))
            }
            None => Record::Write(current.into()),
        };
        return Ok(OutputPlan { set: Some(RESTRICTED_OUTPUT.into()), record, after: RESTRICTED_OUTPUT.into() });
    }
    let Some(recorded) = recorded else {
        return Ok(OutputPlan { set: None, record: Record::Keep, after: current.into() });
    };
    if current != RESTRICTED_OUTPUT || recorded == current {
        return Ok(OutputPlan { set: None, record: Record::Remove, after: current.into() });
    }
    if policy_word(recorded).is_none() {
        return Err(format!(
            "the recorded outgoing policy '{recorded}' is not one ufw can set (allow, deny or reject)"
        ));
    }
    Ok(OutputPlan { set: Some(recorded.into()), record: Record::Remove, after: recorded.into() })
}

/// ufw's settings files (`/etc/default/ufw`, `/etc/ufw/ufw.conf`) as its `_get_defaults` reads
/// them: lines matching `^\w+="?\w+"?`, key and value lower-cased, quotes stripped; a later file
/// overrides an earlier one.
pub fn read_settings(texts: &[&str]) -> BTreeMap<String, String> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut m = BTreeMap::new();
    for t in texts {
        for line in t.lines() {
            let key_len = line.find(|c: char| !word(c)).unwrap_or(line.len());
            let Some(rest) = line[key_len..].strip_prefix('=') else { continue };
            if key_len == 0 || !rest.trim_start_matches('"').starts_with(word) {
                continue;
            }
            let value = line.trim().split('=').nth(1).unwrap_or("").to_lowercase();
            m.insert(line[..key_len].to_lowercase(), value.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    }
    m
}
