//! The imperative edge shared by vorfw's binaries: the system resolver, running
//! `ansible-inventory`, and `-e` extra variables. Kept out of the pure core.

use serde_json::{Map, Value};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;
use std::process::Command;

/// Resolve a host name through the system resolver (/etc/hosts, DNS, ...).
pub fn resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    (name, 0u16).to_socket_addrs().map(|it| it.map(|sa| sa.ip()).collect()).map_err(|e| e.to_string())
}

/// Whether a JSON value is the output of `ansible-inventory --list` (which always has `_meta`;
/// a YAML inventory written as JSON does not).
pub fn is_inventory_list(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.get("_meta").is_some_and(Value::is_object))
}

/// Run `ansible-inventory --list` on inventory sources, as Ansible itself would read them.
pub fn ansible_inventory(program: &str, sources: &[String]) -> Result<Value, String> {
    let mut cmd = Command::new(program);
    for s in sources {
        cmd.arg("-i").arg(s);
    }
    cmd.arg("--list");
    let out = cmd.output().map_err(|e| {
        format!("cannot run {program}: {e}; install ansible-core, set VORFW_ANSIBLE_INVENTORY, or pass the JSON of `ansible-inventory --list`")
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{program} failed ({}): {}", out.status, stderr.trim()));
    }
    // ansible-inventory only warns when a source cannot be parsed; treat that as an error.
    if let Some(line) = stderr.lines().find(|l| l.contains("Unable to parse") || l.contains("No inventory was parsed"))
    {
        return Err(format!("{program}: {}", line.trim_start_matches("[WARNING]: ").trim()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{program} printed invalid JSON: {e}"))
}

/// Parse `-e` arguments as ansible-playbook does: `KEY=VALUE [KEY=VALUE ...]` (values are
/// strings), a JSON object, or `@file.json`.
pub fn extra_vars(args: &[String]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for a in args {
        let a = a.trim();
        if let Some(path) = a.strip_prefix('@') {
            let text = std::fs::read_to_string(Path::new(path)).map_err(|e| format!("-e @{path}: {e}"))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(o)) => out.extend(o),
                _ => return Err(format!("-e @{path}: expected a JSON object")),
            }
        } else if a.starts_with('{') {
            match serde_json::from_str::<Value>(a) {
                Ok(Value::Object(o)) => out.extend(o),
                _ => return Err(format!("-e {a}: not a valid JSON object")),
            }
        } else {
            for pair in split_words(a)? {
                let (k, v) = pair.split_once('=').ok_or_else(|| format!("-e {pair}: expected KEY=VALUE"))?;
                if k.is_empty() {
                    return Err(format!("-e {pair}: empty variable name"));
                }
                out.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
    }
    Ok(out)
}

/// Split on whitespace, honouring single and double quotes (like shlex, without escapes
/// beyond `\` inside double quotes).
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = vec![];
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                let q = c;
                loop {
                    match chars.next() {
                        None => return Err(format!("-e {s}: unterminated quote")),
                        Some('\\') if q == '"' => cur.extend(chars.next()),
                        Some(x) if x == q => break,
                        Some(x) => cur.push(x),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_vars_forms() {
        let v = extra_vars(&[
            "a=1 b='x y'".into(),
            r#"{"c": [1]}"#.into(),
            r#"host_firewall_admin_sources=["10.0.0.0/8"]"#.into(),
        ])
        .unwrap();
        assert_eq!(v["a"], "1");
        assert_eq!(v["b"], "x y");
        assert_eq!(v["c"][0], 1);
        assert_eq!(v["host_firewall_admin_sources"], "[10.0.0.0/8]");
        assert!(extra_vars(&["novalue".into()]).unwrap_err().contains("expected KEY=VALUE"));
    }

    #[test]
    fn loopback_resolves() {
        assert!(resolve("localhost").unwrap().iter().any(|a| a.is_loopback()));
    }
}

/// The local interfaces and their addresses (loopback included), from getifaddrs(3).
pub fn interfaces() -> Result<Vec<(String, IpAddr)>, String> {
    let mut out = vec![];
    // SAFETY: getifaddrs fills a linked list we only read and then free with freeifaddrs.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return Err(format!("getifaddrs: {}", std::io::Error::last_os_error()));
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
            let addr = match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::from(sin6.sin6_addr.s6_addr)
                }
                _ => continue,
            };
            out.push((name, addr));
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

#[cfg(test)]
mod iface_tests {
    #[test]
    fn loopback_is_listed() {
        let ifs = super::interfaces().unwrap();
        assert!(ifs.iter().any(|(n, a)| n == "lo" && a.is_loopback()), "{ifs:?}");
    }
}
