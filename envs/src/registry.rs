//! Environments by name: the built-in kinds of [`EnvSpec`] and the kinds a crate registers
//! with [`register_env`] (as Gymnasium's `register`), so that a config's `[env] kind = "..."`
//! builds an environment the library does not ship. Register before loading such a config:
//! the config is checked against the registry when it is read.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use dcem::env::Env;
use dcem::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::{EnvSpec, default_swingup_steps, episode_steps_named, gym_id_named};

/// A registered constructor: the `[env]` section's keys other than `kind` in, the environment
/// out (an error naming the option it refuses).
pub type EnvConstructor = fn(&toml::Table) -> Result<Box<dyn Env>>;

static REGISTRY: RwLock<BTreeMap<String, EnvConstructor>> = RwLock::new(BTreeMap::new());

/// The kinds [`EnvSpec`] builds itself.
pub const BUILTIN_KINDS: [&str; 5] = ["swingup", "cartpole", "cheetah_run", "walker_walk", "gym"];

/// Registers `kind`, so that configs can name it. A built-in kind cannot be replaced; registering
/// a kind again replaces its constructor (as re-running a registration does).
pub fn register_env(kind: &str, constructor: EnvConstructor) -> Result<()> {
    if kind.is_empty() || BUILTIN_KINDS.contains(&kind) {
        return Err(Error::option(
            "kind",
            format!("{kind:?} is built in or empty: register the environment under its own name"),
        ));
    }
    REGISTRY
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(kind.to_string(), constructor);
    Ok(())
}

/// The kinds registered so far, sorted.
pub fn registered_kinds() -> Vec<String> {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .keys()
        .cloned()
        .collect()
}

fn constructor(kind: &str) -> Option<EnvConstructor> {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(kind)
        .copied()
}

fn unknown(kind: &str) -> String {
    let registered = registered_kinds();
    format!(
        "`kind`: unknown env kind {kind:?}; the built-in kinds are {}{}; a crate's own \
         environments are registered with dcem_envs::register_env before the config is loaded",
        BUILTIN_KINDS.join(", "),
        if registered.is_empty() {
            String::new()
        } else {
            format!(", the registered ones {}", registered.join(", "))
        }
    )
}

/// Builds a registered kind.
pub(crate) fn make(kind: &str, options: &toml::Table) -> Result<Box<dyn Env>> {
    let ctor = constructor(kind).ok_or_else(|| Error::Config(unknown(kind)))?;
    ctor(options)
}

/// The built-in kinds as serde reads and writes them.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Builtin {
    Swingup {
        #[serde(
            default = "default_swingup_steps",
            deserialize_with = "episode_steps_named"
        )]
        episode_steps: usize,
    },
    Cartpole {},
    CheetahRun {},
    WalkerWalk {},
    Gym {
        #[serde(deserialize_with = "gym_id_named")]
        id: String,
    },
}

impl<'de> Deserialize<'de> for EnvSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(d)?;
        let kind = match table.get("kind") {
            Some(toml::Value::String(k)) => k.clone(),
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`kind` must be a string, got {other}"
                )));
            }
            None => return Err(D::Error::custom("missing `kind` (e.g. kind = \"swingup\")")),
        };
        if BUILTIN_KINDS.contains(&kind.as_str()) {
            let b = Builtin::deserialize(toml::Value::Table(table))
                .map_err(|e| D::Error::custom(e.message().to_string()))?;
            return Ok(match b {
                Builtin::Swingup { episode_steps } => EnvSpec::Swingup { episode_steps },
                Builtin::Cartpole {} => EnvSpec::Cartpole {},
                Builtin::CheetahRun {} => EnvSpec::CheetahRun {},
                Builtin::WalkerWalk {} => EnvSpec::WalkerWalk {},
                Builtin::Gym { id } => EnvSpec::Gym { id },
            });
        }
        if constructor(&kind).is_none() {
            return Err(D::Error::custom(unknown(&kind)));
        }
        table.remove("kind");
        Ok(EnvSpec::Registered {
            kind,
            options: table,
        })
    }
}

impl Serialize for EnvSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let b = match self {
            EnvSpec::Swingup { episode_steps } => Builtin::Swingup {
                episode_steps: *episode_steps,
            },
            EnvSpec::Cartpole {} => Builtin::Cartpole {},
            EnvSpec::CheetahRun {} => Builtin::CheetahRun {},
            EnvSpec::WalkerWalk {} => Builtin::WalkerWalk {},
            EnvSpec::Gym { id } => Builtin::Gym { id: id.clone() },
            EnvSpec::Registered { kind, options } => {
                let mut t = options.clone();
                t.insert("kind".into(), toml::Value::String(kind.clone()));
                return t.serialize(s);
            }
        };
        b.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CartpoleSwingup;

    fn short_swingup(options: &toml::Table) -> Result<Box<dyn Env>> {
        let steps = match options.get("steps") {
            Some(toml::Value::Integer(n)) if *n > 0 => *n as usize,
            Some(v) => {
                return Err(Error::option(
                    "steps",
                    format!("a positive integer, got {v}"),
                ));
            }
            None => 10,
        };
        Ok(Box::new(CartpoleSwingup::new(crate::SwingupConfig {
            episode_steps: steps,
        })?))
    }

    #[test]
    fn a_registered_kind_is_read_built_and_written_back() {
        #[derive(Deserialize, Serialize)]
        struct Cfg {
            env: EnvSpec,
        }
        let text = "[env]\nkind = \"registry_test_swingup\"\nsteps = 7\n";
        let err = toml::from_str::<Cfg>(text)
            .err()
            .expect("not registered yet")
            .to_string();
        assert!(
            err.contains("`kind`") && err.contains("register_env"),
            "{err}"
        );
        register_env("registry_test_swingup", short_swingup).unwrap();
        let cfg: Cfg = toml::from_str(text).unwrap();
        let env = crate::make_env(&cfg.env).unwrap();
        assert_eq!(env.max_episode_steps(), Some(7));
        assert_eq!(cfg.env.name(), "registry_test_swingup");
        let again: Cfg = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(again.env, cfg.env);
        let bad = text.replace("steps = 7", "steps = -1");
        let cfg: Cfg = toml::from_str(&bad).unwrap();
        let err = crate::make_env(&cfg.env).err().unwrap().to_string();
        assert!(err.contains("steps"), "{err}");
        assert!(register_env("swingup", short_swingup).is_err());
    }

    #[test]
    fn built_in_kinds_keep_their_errors() {
        #[derive(Deserialize)]
        struct Cfg {
            #[allow(dead_code)]
            env: EnvSpec,
        }
        let err = toml::from_str::<Cfg>("[env]\nkind = \"swingup\"\nepisode_steps = \"x\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("episode_steps"), "{err}");
        let err = toml::from_str::<Cfg>("[env]\nkind = \"cartpole\"\ntypo = 1\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("typo"), "{err}");
        let cfg: Cfg = toml::from_str("[env]\nkind = \"swingup\"\n").unwrap();
        assert_eq!(cfg.env, EnvSpec::default());
    }
}
