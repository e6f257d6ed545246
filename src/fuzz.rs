//! Malformed variants of a TOML config, to check that a config loader refuses every one with
//! an error naming the field, and never panics or aborts (each agent's `tests/fuzz.rs` runs
//! its loader over a thousand of them).
//!
//! A variant takes one field of the config (any depth) and either gives it a hostile value
//! (negative, zero, near `i64::MAX`, NaN, infinities, huge or tiny floats, a float where an
//! integer goes, strings, booleans, arrays, tables), or removes it, or adds an unknown key next
//! to it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use toml::{Table, Value};

use crate::error::{Error, Result};

/// One malformed config.
#[derive(Clone, Debug)]
pub struct Mutant {
    /// The dotted path of the field changed (or added).
    pub field: String,
    /// What was done to it.
    pub change: String,
    /// The config's text.
    pub text: String,
    /// Whether an error must name the field (not for a removed field: the default is used).
    pub must_name: bool,
}

/// Hostile values for a field.
fn hostile(rng: &mut ChaCha8Rng) -> (Value, String) {
    let ints = [
        -1i64,
        0,
        1,
        2,
        1 << 31,
        1 << 40,
        1 << 53,
        i64::MAX,
        i64::MAX - 1,
        i64::MIN,
    ];
    let floats = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        -1.0,
        2.5,
        1e300,
        -1e300,
        1e-300,
    ];
    match rng.random_range(0..6) {
        0 | 1 => {
            let v = ints[rng.random_range(0..ints.len())];
            (Value::Integer(v), format!("integer {v}"))
        }
        2 => {
            let v = floats[rng.random_range(0..floats.len())];
            (Value::Float(v), format!("float {v}"))
        }
        3 => {
            let v = ["", "x", "../../outside", "a/b", "\u{1F600}"][rng.random_range(0..5)];
            (Value::String(v.into()), format!("string {v:?}"))
        }
        4 => (Value::Boolean(rng.random()), "boolean".into()),
        _ => match rng.random_range(0..3) {
            0 => (Value::Array(vec![]), "empty array".into()),
            1 => (
                Value::Array(vec![Value::Integer(-5), Value::Float(f64::NAN)]),
                "array [-5, nan]".into(),
            ),
            _ => (Value::Table(Table::new()), "table {}".into()),
        },
    }
}

/// Every field's dotted path, tables included, and the tables' paths (where a key can be added).
fn paths(t: &Table, prefix: &str, leaves: &mut Vec<String>, tables: &mut Vec<String>) {
    tables.push(prefix.to_string());
    for (k, v) in t {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        leaves.push(p.clone());
        if let Value::Table(sub) = v {
            paths(sub, &p, leaves, tables);
        }
    }
}

/// The table at dotted path `at` (the root for "").
fn table_at<'a>(root: &'a mut Table, at: &str) -> Option<&'a mut Table> {
    let mut t = root;
    for part in at.split('.').filter(|p| !p.is_empty()) {
        t = t.get_mut(part)?.as_table_mut()?;
    }
    Some(t)
}

/// `n` malformed variants of the config `text`, reproducibly from `seed`.
pub fn mutants(text: &str, n: usize, seed: u64) -> Result<Vec<Mutant>> {
    let base: Table = toml::from_str(text)
        .map_err(|e| Error::Config(format!("the config to mutate does not parse: {e}")))?;
    let (mut leaves, mut tables) = (Vec::new(), Vec::new());
    paths(&base, "", &mut leaves, &mut tables);
    if leaves.is_empty() {
        return Err(Error::Config("the config to mutate has no fields".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut t = base.clone();
        let kind = rng.random_range(0..10);
        let (field, change, must_name) = if kind < 8 {
            let field = leaves[rng.random_range(0..leaves.len())].clone();
            let (parent, key) = field.rsplit_once('.').unwrap_or(("", &field));
            let Some(table) = table_at(&mut t, parent) else {
                continue;
            };
            let (value, what) = hostile(&mut rng);
            table.insert(key.to_string(), value);
            (field.clone(), format!("set to {what}"), true)
        } else if kind == 8 {
            let field = leaves[rng.random_range(0..leaves.len())].clone();
            let (parent, key) = field.rsplit_once('.').unwrap_or(("", &field));
            let Some(table) = table_at(&mut t, parent) else {
                continue;
            };
            table.remove(key);
            (field.clone(), "removed".into(), false)
        } else {
            let at = tables[rng.random_range(0..tables.len())].clone();
            let Some(table) = table_at(&mut t, &at) else {
                continue;
            };
            let key = format!("unknown_key_{}", rng.random_range(0..1000));
            table.insert(key.clone(), Value::Integer(1));
            let field = if at.is_empty() {
                key
            } else {
                format!("{at}.{key}")
            };
            (field, "added".into(), true)
        };
        let text = toml::to_string(&t)
            .map_err(|e| Error::Config(format!("writing a mutated config: {e}")))?;
        out.push(Mutant {
            field,
            change,
            text,
            must_name,
        });
    }
    Ok(out)
}

/// Runs `load` (parse and validate a config's text) on every mutant and returns what went
/// wrong: a panic, or an error that does not name the changed field (its last path segment).
/// A mutant that loads is fine: the hostile value may be a valid one.
pub fn failures(
    mutants: &[Mutant],
    load: impl Fn(&str) -> std::result::Result<(), String>,
) -> Vec<String> {
    let mut bad = Vec::new();
    for m in mutants {
        match catch_unwind(AssertUnwindSafe(|| load(&m.text))) {
            Err(_) => bad.push(format!("{} {}: panicked", m.field, m.change)),
            Ok(Err(e)) if m.must_name => {
                let key = m.field.rsplit('.').next().unwrap_or(&m.field);
                if !e.contains(key) {
                    bad.push(format!(
                        "{} {}: the error does not name `{key}`: {e}",
                        m.field, m.change
                    ));
                }
            }
            Ok(_) => {}
        }
    }
    bad
}

/// Runs `load` (a config loader reading a file) over `n` mutants of each `(file, n)` in
/// `configs` (files under `root`, each mutant written in turn to a scratch file in the temp
/// folder, seeded by the file's position). Returns the number of cases, or an error listing
/// every failure (as [`failures`]).
pub fn check_config_files(
    root: &std::path::Path,
    configs: &[(&str, usize)],
    load: impl Fn(&std::path::Path) -> std::result::Result<(), String>,
) -> Result<usize> {
    let io = |e: std::io::Error, p: &std::path::Path| Error::Io {
        path: p.to_path_buf(),
        source: e,
    };
    let first = configs.first().map_or("none", |c| c.0);
    let dir = std::env::temp_dir().join(format!("dcem-fuzz-{}-{first}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| io(e, &dir))?;
    let scratch = dir.join("config.toml");
    let (mut cases, mut bad) = (0, Vec::new());
    for (seed, (file, n)) in configs.iter().enumerate() {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| io(e, &path))?;
        let ms = mutants(&text, *n, seed as u64)?;
        cases += ms.len();
        bad.extend(failures(&ms, |text| {
            std::fs::write(&scratch, text).map_err(|e| e.to_string())?;
            load(&scratch)
        }));
    }
    let _ = std::fs::remove_dir_all(&dir);
    if bad.is_empty() {
        Ok(cases)
    } else {
        Err(Error::Config(format!(
            "{} of {cases} malformed configs:\n{}",
            bad.len(),
            bad.join("\n")
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mutants_change_one_field_each_and_failures_are_reported() {
        let text = "name = \"a\"\n[train]\nbatch = 4\nlr = 0.1\n";
        let ms = mutants(text, 200, 1).unwrap();
        assert_eq!(ms.len(), 200);
        assert!(ms.iter().any(|m| m.change == "removed"));
        assert!(ms.iter().any(|m| m.change == "added"));
        let panics = |_: &str| -> std::result::Result<(), String> { panic!("boom") };
        assert_eq!(failures(&ms[..3], panics).len(), 3);
        let vague = |_: &str| -> std::result::Result<(), String> { Err("bad".into()) };
        assert!(
            failures(&ms, vague)
                .iter()
                .all(|f| f.contains("does not name"))
        );
    }
}
