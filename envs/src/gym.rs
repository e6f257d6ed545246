//! [`GymEnv`] (feature `python`): any Python Gymnasium environment as an [`Env`], driven through
//! an embedded Python interpreter, so that every Rust agent can train on any Gymnasium id.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dcem::env::{BoxSpace, Env, Space, Step};
use dcem::{Error, Result};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A Python error as the framework's error, with the Python traceback's message.
fn py_error(what: &str, e: PyErr) -> Error {
    Python::attach(|py| {
        let tb = e
            .traceback(py)
            .and_then(|t| t.format().ok())
            .unwrap_or_default();
        Error::Config(format!(
            "{what}: {e}{}",
            if tb.is_empty() {
                String::new()
            } else {
                format!("\n{tb}")
            }
        ))
    })
}

/// The site-packages folder of the venv to use: `$VIRTUAL_ENV`, else the project's `.venv`.
fn venv_site_packages(py: Python<'_>) -> Option<PathBuf> {
    let venv = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let version = py.version_info();
    let site = venv
        .join("lib")
        .join(format!("python{}.{}", version.major, version.minor))
        .join("site-packages");
    site.is_dir().then_some(site)
}

/// Starts the interpreter once and puts the venv's packages on its path.
fn init() -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        Python::initialize();
        Python::attach(|py| -> std::result::Result<(), String> {
            if let Some(site) = venv_site_packages(py) {
                let site_mod = py.import("site").map_err(|e| e.to_string())?;
                site_mod
                    .call_method1("addsitedir", (site.to_string_lossy().into_owned(),))
                    .map_err(|e| e.to_string())?;
            }
            py.import("gymnasium").map(|_| ()).map_err(|e| {
                format!(
                    "cannot import gymnasium ({e}); run scripts/setup_venv.sh, or activate a \
                     venv that has gymnasium (VIRTUAL_ENV)"
                )
            })
        })
    })
    .clone()
    .map_err(Error::Config)
}

/// `numpy.asarray(x, float64).ravel()` as a Vec.
fn flat_f64(np: &Bound<'_, PyModule>, x: &Bound<'_, PyAny>, what: &str) -> Result<Vec<f64>> {
    np.call_method1("asarray", (x, "float64"))
        .and_then(|a| a.call_method0("ravel"))
        .and_then(|a| a.call_method0("tolist"))
        .and_then(|a| a.extract())
        .map_err(|e| py_error(what, e))
}

fn space(py: Python<'_>, s: &Bound<'_, PyAny>, what: &str) -> Result<Space> {
    let np = py.import("numpy").map_err(|e| py_error("numpy", e))?;
    let kind: String = s
        .get_type()
        .name()
        .and_then(|n| n.extract())
        .map_err(|e| py_error(what, e))?;
    let floats = |attr: &str| -> Result<Vec<f64>> {
        flat_f64(&np, &s.getattr(attr).map_err(|e| py_error(what, e))?, what)
    };
    match kind.as_str() {
        "Box" => {
            let shape: Vec<usize> = s
                .getattr("shape")
                .and_then(|v| v.extract())
                .map_err(|e| py_error(what, e))?;
            Ok(Space::Box(BoxSpace::new(
                floats("low")?,
                floats("high")?,
                shape,
            )?))
        }
        "Discrete" => {
            let n: usize = s
                .getattr("n")
                .and_then(|v| v.extract())
                .map_err(|e| py_error(what, e))?;
            let start: i64 = s
                .getattr("start")
                .and_then(|v| v.extract())
                .map_err(|e| py_error(what, e))?;
            if start != 0 {
                return Err(Error::option(
                    "GymEnv",
                    format!("{what}: Discrete spaces must start at 0, this one starts at {start}"),
                ));
            }
            Ok(Space::Discrete(n))
        }
        other => Err(Error::option(
            "GymEnv",
            format!("{what}: only Box and Discrete spaces are supported, got {other}"),
        )),
    }
}

/// A Python Gymnasium environment (`gymnasium.make(id, **kwargs)`) as an [`Env`].
///
/// Observations are flattened to f64; actions are passed as a numpy array of the action space's
/// dtype (Box) or an int (Discrete: an integer in range, else an `InvalidAction` error).
/// `reset(Some(seed))` is `env.reset(seed=seed)`; `reset(None)` continues the environment's own
/// generator. Gymnasium's `TimeLimit` from
/// `make` sets `truncated` as usual. Python exceptions become [`Error::Config`] errors carrying
/// the Python message and traceback.
///
/// The interpreter is the libpython this crate was built against (its rpath is set by
/// `envs/build.rs`); it gets the packages of `$VIRTUAL_ENV`, or of the project's `.venv`.
pub struct GymEnv {
    env: Py<PyAny>,
    id: String,
    obs_space: Space,
    act_space: Space,
    act_dtype: Py<PyAny>,
    numpy: Py<PyModule>,
    /// `env.spec.max_episode_steps`, where the registration sets one.
    max_steps: Option<usize>,
}

impl std::fmt::Debug for GymEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GymEnv").field("id", &self.id).finish()
    }
}

impl GymEnv {
    /// `gymnasium.make(id)`.
    pub fn new(id: &str) -> Result<Self> {
        Self::with_kwargs(id, &[])
    }

    /// `gymnasium.make(id, **kwargs)`, each keyword argument's value given as a Python
    /// expression (for example `("render_mode", "None")` or `("g", "9.81")`).
    pub fn with_kwargs(id: &str, kwargs: &[(&str, &str)]) -> Result<Self> {
        init()?;
        // One `make` at a time: concurrent first imports of an environment's module from
        // several threads can see it half-initialised. The lock is always taken before the GIL.
        static MAKE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = MAKE.lock().unwrap_or_else(|p| p.into_inner());
        Python::attach(|py| {
            let gym = py
                .import("gymnasium")
                .map_err(|e| py_error("import gymnasium", e))?;
            let kw = PyDict::new(py);
            for (k, v) in kwargs {
                let code = std::ffi::CString::new(*v)
                    .map_err(|_| Error::option("GymEnv kwargs", format!("`{k}` contains NUL")))?;
                let value = py
                    .eval(&code, None, None)
                    .map_err(|e| py_error(&format!("GymEnv keyword `{k}`"), e))?;
                kw.set_item(*k, value).map_err(|e| py_error("kwargs", e))?;
            }
            let env = gym
                .call_method("make", (id,), Some(&kw))
                .map_err(|e| py_error(&format!("gymnasium.make({id:?})"), e))?;
            let obs_space = space(
                py,
                &env.getattr("observation_space")
                    .map_err(|e| py_error(id, e))?,
                "observation_space",
            )?;
            let act = env.getattr("action_space").map_err(|e| py_error(id, e))?;
            let act_space = space(py, &act, "action_space")?;
            let act_dtype = act.getattr("dtype").map_err(|e| py_error(id, e))?.unbind();
            let numpy = py
                .import("numpy")
                .map_err(|e| py_error("numpy", e))?
                .unbind();
            // `spec` is None for an env made without the registry, and so may be its limit.
            let max_steps = env
                .getattr("spec")
                .ok()
                .filter(|spec| !spec.is_none())
                .and_then(|spec| spec.getattr("max_episode_steps").ok())
                .and_then(|steps| steps.extract::<usize>().ok());
            Ok(Self {
                env: env.unbind(),
                id: id.to_string(),
                obs_space,
                act_space,
                act_dtype,
                numpy,
                max_steps,
            })
        })
    }

    /// The Gymnasium id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Env for GymEnv {
    spaces_in_fields!();

    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        Python::attach(|py| {
            let kw = PyDict::new(py);
            kw.set_item("seed", seed)
                .map_err(|e| py_error("reset", e))?;
            let out = self
                .env
                .bind(py)
                .call_method("reset", (), Some(&kw))
                .map_err(|e| py_error(&format!("{}.reset", self.id), e))?;
            let obs = out.get_item(0).map_err(|e| py_error("reset", e))?;
            flat_f64(self.numpy.bind(py), &obs, "observation")
        })
    }

    fn step(&mut self, action: &[f64]) -> Result<Step> {
        if action.len() != self.act_space.flat_dim() {
            return Err(Error::InvalidAction(format!(
                "{}: expected {} value(s), got {}",
                self.id,
                self.act_space.flat_dim(),
                action.len()
            )));
        }
        if action.iter().any(|v| v.is_nan()) {
            return Err(Error::InvalidAction(format!(
                "{}: action {action:?} contains NaN",
                self.id
            )));
        }
        if let Space::Discrete(n) = self.act_space
            && (action[0].fract() != 0.0 || action[0] < 0.0 || action[0] >= n as f64)
        {
            return Err(Error::InvalidAction(format!(
                "{}: a Discrete({n}) action must be an integer in 0..{n}, got {}",
                self.id, action[0]
            )));
        }
        Python::attach(|py| {
            let np = self.numpy.bind(py);
            let a = match &self.act_space {
                Space::Discrete(_) => (action[0] as i64)
                    .into_pyobject(py)
                    .map_err(|e| match e {})?
                    .into_any(),
                Space::Box(b) => np
                    .call_method1("asarray", (action.to_vec(), self.act_dtype.bind(py)))
                    .and_then(|a| a.call_method1("reshape", (b.shape().to_vec(),)))
                    .map_err(|e| py_error("action", e))?,
            };
            let out = self
                .env
                .bind(py)
                .call_method1("step", (a,))
                .map_err(|e| py_error(&format!("{}.step", self.id), e))?;
            let item = |i: usize| out.get_item(i).map_err(|e| py_error("step", e));
            Ok(Step {
                obs: flat_f64(np, &item(0)?, "observation")?,
                reward: item(1)?.extract().map_err(|e| py_error("reward", e))?,
                terminated: item(2)?.extract().map_err(|e| py_error("terminated", e))?,
                truncated: item(3)?.extract().map_err(|e| py_error("truncated", e))?,
            })
        })
    }

    /// A Python step: microseconds.
    fn step_cost_hint_ns(&self) -> u64 {
        20_000
    }

    /// Gymnasium's `spec.max_episode_steps` (the `TimeLimit` that `gymnasium.make` adds).
    fn max_episode_steps(&self) -> Option<usize> {
        self.max_steps
    }
}
