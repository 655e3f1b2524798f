//! The Ansible binary-module protocol, shared by every module of the collection.
//!
//! Ansible runs a binary module as `module ARGS_FILE`, where ARGS_FILE holds the task's
//! arguments as JSON plus `_ansible_*` keys (check mode, diff mode, verbosity, ...). The
//! module prints exactly one JSON object on stdout: `changed`, optional `diff`, `warnings`,
//! `ansible_facts`, and on error `failed: true` with `msg`. [`run`] guarantees that contract:
//! a panic or an error becomes a `failed` result, and nothing else is ever printed.

use serde_json::{json, Map, Value};
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

/// What a module sees of its invocation.
#[derive(Debug, Default)]
pub struct Module {
    /// The task's arguments, without the `_ansible_*` keys.
    pub args: Map<String, Value>,
    pub check_mode: bool,
    pub diff_mode: bool,
    pub verbosity: u64,
    warnings: Vec<String>,
}

/// A module failure: `msg` plus optional extra result keys.
#[derive(Debug)]
pub struct Failure {
    pub msg: String,
    pub extra: Map<String, Value>,
}

impl Failure {
    pub fn new(msg: impl Into<String>) -> Self {
        Failure { msg: msg.into(), extra: Map::new() }
    }
    pub fn with(mut self, key: &str, v: Value) -> Self {
        self.extra.insert(key.to_string(), v);
        self
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::new(e.to_string())
    }
}

/// A module's successful result.
#[derive(Debug, Default)]
pub struct Outcome {
    pub changed: bool,
    /// Shown with `--diff`: `{"before": ..., "after": ...}` (strings read best).
    pub diff: Option<Value>,
    pub facts: Option<Map<String, Value>>,
    /// Any further result keys.
    pub data: Map<String, Value>,
}

impl Module {
    /// Parse the args file contents.
    pub fn from_json(text: &str) -> Result<Module, Failure> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Failure::new(format!("module arguments are not valid JSON: {e}")))?;
        let Value::Object(all) = v else {
            return Err(Failure::new("module arguments must be a JSON object"));
        };
        let mut m = Module::default();
        for (k, v) in all {
            match k.as_str() {
                "_ansible_check_mode" => m.check_mode = truthy(&v),
                "_ansible_diff" => m.diff_mode = truthy(&v),
                "_ansible_verbosity" => m.verbosity = v.as_u64().unwrap_or(0),
                k if k.starts_with("_ansible_") => {}
                _ => {
                    m.args.insert(k, v);
                }
            }
        }
        Ok(m)
    }

    /// Refuse arguments the module does not know, naming them.
    pub fn allow_only(&self, known: &[&str]) -> Result<(), Failure> {
        let bad: Vec<&str> = self.args.keys().map(String::as_str).filter(|k| !known.contains(k)).collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(format!("Unsupported parameters: {} (supported: {})", bad.join(", "), known.join(", "))))
        }
    }

    pub fn warn(&mut self, w: impl Into<String>) {
        self.warnings.push(w.into());
    }

    pub fn str_arg(&self, key: &str) -> Result<Option<&str>, Failure> {
        match self.args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Failure::new(format!("argument {key} must be a string, got {other}"))),
        }
    }

    pub fn bool_arg(&self, key: &str, default: bool) -> Result<bool, Failure> {
        match self.args.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v @ (Value::Bool(_) | Value::String(_) | Value::Number(_))) => {
                parse_bool(v).ok_or_else(|| Failure::new(format!("argument {key} must be a boolean, got {v}")))
            }
            Some(other) => Err(Failure::new(format!("argument {key} must be a boolean, got {other}"))),
        }
    }

    /// Turn an outcome (or failure) into the one JSON object Ansible reads.
    pub fn result(self, r: Result<Outcome, Failure>) -> (Value, i32) {
        let mut out = Map::new();
        let code = match r {
            Ok(o) => {
                out.extend(o.data);
                out.insert("changed".into(), Value::Bool(o.changed));
                if let (true, Some(d)) = (self.diff_mode, o.diff) {
                    out.insert("diff".into(), d);
                }
                if let Some(f) = o.facts {
                    out.insert("ansible_facts".into(), Value::Object(f));
                }
                0
            }
            Err(f) => {
                out.extend(f.extra);
                out.insert("failed".into(), Value::Bool(true));
                out.insert("changed".into(), Value::Bool(false));
                out.insert("msg".into(), Value::String(f.msg));
                1
            }
        };
        if !self.warnings.is_empty() {
            out.insert("warnings".into(), json!(self.warnings));
        }
        (Value::Object(out), code)
    }
}

fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "f" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn truthy(v: &Value) -> bool {
    parse_bool(v).unwrap_or(false)
}

/// Run a module body under the protocol: read the args file named by `argv[1]`, call `body`,
/// print exactly one JSON object and exit. Panics become `failed` results.
pub fn run(body: impl FnOnce(&mut Module) -> Result<Outcome, Failure>) -> ! {
    // Silence the default panic message (it would corrupt stdout/stderr expectations).
    panic::set_hook(Box::new(|_| {}));
    let (value, code) = match read_args() {
        Err(f) => Module::default().result(Err(f)),
        Ok(mut m) => {
            let r = panic::catch_unwind(AssertUnwindSafe(|| body(&mut m)));
            let r = match r {
                Ok(r) => r,
                Err(p) => {
                    let what = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(Failure::new(format!("internal error (please report): {what}")))
                }
            };
            m.result(r)
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value}");
    let _ = stdout.flush();
    std::process::exit(code)
}

fn read_args() -> Result<Module, Failure> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or_else(|| Failure::new("usage: this is an Ansible module; run it as `MODULE ARGS_FILE`"))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("cannot read module arguments from {}: {e}", path.to_string_lossy())))?;
    Module::from_json(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansible_keys_are_split_from_args() {
        let m = Module::from_json(r#"{"a": 1, "_ansible_check_mode": true, "_ansible_diff": "yes", "_ansible_verbosity": 3, "_ansible_no_log": false}"#).unwrap();
        assert!(m.check_mode && m.diff_mode);
        assert_eq!(m.verbosity, 3);
        assert_eq!(m.args.len(), 1);
    }

    #[test]
    fn failure_result_has_failed_and_msg() {
        let mut m = Module::from_json("{}").unwrap();
        m.warn("careful");
        let (v, code) = m.result(Err(Failure::new("boom").with("host", json!("web1"))));
        assert_eq!(code, 1);
        assert_eq!(v["failed"], true);
        assert_eq!(v["msg"], "boom");
        assert_eq!(v["host"], "web1");
        assert_eq!(v["warnings"][0], "careful");
    }

    #[test]
    fn diff_only_in_diff_mode() {
        let m = Module::from_json("{}").unwrap();
        let (v, _) = m.result(Ok(Outcome {
            changed: true,
            diff: Some(json!({"before": "a", "after": "b"})),
            ..Default::default()
        }));
        assert!(v.get("diff").is_none());
        assert_eq!(v["changed"], true);
        let m = Module::from_json(r#"{"_ansible_diff": true}"#).unwrap();
        let (v, _) = m.result(Ok(Outcome {
            changed: false,
            diff: Some(json!({"before": "a", "after": "a"})),
            ..Default::default()
        }));
        assert_eq!(v["diff"]["after"], "a");
    }

    #[test]
    fn bad_json_and_unknown_args_are_failures() {
        assert!(Module::from_json("{").unwrap_err().msg.contains("not valid JSON"));
        let m = Module::from_json(r#"{"x": 1}"#).unwrap();
        assert_eq!(m.allow_only(&["y"]).unwrap_err().msg, "Unsupported parameters: x (supported: y)");
    }
}
