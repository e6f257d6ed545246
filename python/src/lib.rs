//! `dcem._core`: the Rust side of the `dcem` Python package (see `python/dcem`). The Python
//! layer wraps these classes as `gymnasium.Env`s and documents the solver functions.

use burn::tensor::{Device, Tensor, TensorData};
use std::cell::RefCell;

use dcem::cem::{Cem, CemConfig, CemHooks, CemInit};
use dcem::env::{Env, Space, VecEnv};
use dcem_envs::{CartPole, CartPoleAction, CartpoleSwingup, Pendulum};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// The environments this build provides, by id.
fn names() -> Vec<&'static str> {
    let mut v = vec!["cartpole", "cartpole-continuous", "swingup", "pendulum"];
    if cfg!(feature = "mujoco") {
        v.extend(["cheetah-run", "walker-walk"]);
    }
    v
}

/// The most environments one vector env builds.
const MAX_VEC_ENVS: usize = 1 << 16;

/// A boxed environment a Python object can own (pyo3 classes are Send + Sync).
type DynEnv = Box<dyn Env + Sync>;

/// Keyword arguments of the environments that take any (as their Gymnasium references do).
#[derive(Debug, Default, Clone, Copy)]
struct EnvArgs {
    /// Pendulum's gravity (`Pendulum-v1(g=...)`).
    g: Option<f64>,
}

fn make(name: &str, args: EnvArgs) -> dcem::Result<DynEnv> {
    if args.g.is_some() && name != "pendulum" {
        return Err(dcem::Error::option(
            "g",
            format!("only `pendulum` takes a gravity `g`, not `{name}`"),
        ));
    }
    Ok(match name {
        "cartpole" => Box::new(CartPole::new(CartPoleAction::Discrete)?),
        "cartpole-continuous" => Box::new(CartPole::new(CartPoleAction::Continuous)?),
        "swingup" => Box::new(CartpoleSwingup::new(Default::default())?),
        "pendulum" => Box::new(Pendulum::with_gravity(
            args.g.unwrap_or(Pendulum::DEFAULT_GRAVITY),
        )?),
        #[cfg(feature = "mujoco")]
        "cheetah-run" => Box::new(dcem_envs::dmc::CheetahRun::new()?),
        #[cfg(feature = "mujoco")]
        "walker-walk" => Box::new(dcem_envs::dmc::WalkerWalk::new()?),
        other => {
            return Err(dcem::Error::option(
                "env",
                format!(
                    "unknown environment `{other}`; this build has {:?}",
                    names()
                ),
            ));
        }
    })
}

/// Maps the framework's errors to Python exceptions: bad input is a `ValueError`, the rest a
/// `RuntimeError`; the message is the framework's.
fn py_err(e: dcem::Error) -> PyErr {
    use dcem::Error::*;
    match e {
        InvalidOption { .. } | Shape { .. } | InvalidAction(_) | Config(_) => {
            PyValueError::new_err(e.to_string())
        }
        _ => PyRuntimeError::new_err(e.to_string()),
    }
}

/// A space as plain Python values: `("box", low, high, shape)` or `("discrete", n)`.
fn space(py: Python<'_>, s: &Space) -> PyResult<Py<PyAny>> {
    Ok(match s {
        Space::Box(b) => (
            "box",
            b.low().to_vec(),
            b.high().to_vec(),
            b.shape().to_vec(),
        )
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        Space::Discrete(n) => ("discrete", *n).into_pyobject(py)?.into_any().unbind(),
    })
}

/// One Rust environment. Observations are fresh float64 arrays.
#[pyclass(module = "dcem._core")]
struct RustEnv {
    env: DynEnv,
    name: String,
}

#[pymethods]
impl RustEnv {
    /// `g`: Pendulum's gravity (default Gymnasium's 10).
    #[new]
    #[pyo3(signature = (name, g=None))]
    fn new(name: &str, g: Option<f64>) -> PyResult<Self> {
        Ok(Self {
            env: guard(|| make(name, EnvArgs { g }))?.map_err(py_err)?,
            name: name.to_string(),
        })
    }

    /// The id this environment was made from.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// `("box", low, high, shape)` or `("discrete", n)`.
    fn observation_space(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        space(py, self.env.observation_space())
    }

    /// `("box", low, high, shape)` or `("discrete", n)`.
    fn action_space(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        space(py, self.env.action_space())
    }

    /// Starts an episode; `seed` reseeds the environment's generator.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let obs = guard(|| self.env.reset(seed))?.map_err(py_err)?;
        Ok(PyArray1::from_vec(py, obs))
    }

    /// Applies `action` (a float64 array); returns `(obs, reward, terminated, truncated)`.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, f64, bool, bool)> {
        let action = action.as_slice()?.to_vec();
        let s = py
            .detach(|| guard(|| self.env.step(&action)))?
            .map_err(py_err)?;
        Ok((
            PyArray1::from_vec(py, s.obs),
            s.reward,
            s.terminated,
            s.truncated,
        ))
    }
}

/// `n` Rust environments of one id stepped in parallel (rayon) with next-step autoreset.
#[pyclass(module = "dcem._core")]
struct RustVecEnv {
    venv: VecEnv<DynEnv>,
}

#[pymethods]
impl RustVecEnv {
    /// `g`: Pendulum's gravity (default Gymnasium's 10).
    #[new]
    #[pyo3(signature = (name, n, g=None))]
    fn new(name: &str, n: usize, g: Option<f64>) -> PyResult<Self> {
        if n == 0 {
            return Err(PyValueError::new_err("num_envs must be at least 1"));
        }
        if n > MAX_VEC_ENVS {
            return Err(PyValueError::new_err(format!(
                "num_envs must be at most {MAX_VEC_ENVS} (each environment is built at once), \
                 got {n}"
            )));
        }
        let envs = guard(|| {
            (0..n)
                .map(|_| make(name, EnvArgs { g }))
                .collect::<dcem::Result<Vec<_>>>()
        })?
        .map_err(py_err)?;
        Ok(Self {
            venv: VecEnv::new(envs).map_err(py_err)?,
        })
    }

    /// Number of environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.venv.len()
    }

    /// The space of one environment's observation.
    fn observation_space(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        space(py, self.venv.envs()[0].observation_space())
    }

    /// The space of one environment's action.
    fn action_space(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        space(py, self.venv.envs()[0].action_space())
    }

    /// Resets every environment (environment `i` with `seed + i`); observations `[n, obs_dim]`.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let obs = py
            .detach(|| guard(|| self.venv.reset(seed)))?
            .map_err(py_err)?;
        let (n, d) = (self.venv.len(), self.venv.obs_dim());
        PyArray1::from_vec(py, obs).reshape([n, d])
    }

    /// Resets environment `i` with `seeds[i]` (`None`: continues its stream); observations
    /// `[n, obs_dim]`.
    fn reset_each<'py>(
        &mut self,
        py: Python<'py>,
        seeds: Vec<Option<u64>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let obs = py
            .detach(|| guard(|| self.venv.reset_each(&seeds)))?
            .map_err(py_err)?;
        let (n, d) = (self.venv.len(), self.venv.obs_dim());
        PyArray1::from_vec(py, obs).reshape([n, d])
    }

    /// Steps with `actions` `[n, action_dim]`; returns `(obs, rewards, terminated, truncated)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyArray1<bool>>,
    )> {
        let (n, a) = (self.venv.len(), self.venv.action_dim());
        if actions.shape() != [n, a] {
            return Err(PyValueError::new_err(format!(
                "actions must have shape ({n}, {a}), got {:?}",
                actions.shape()
            )));
        }
        let actions = actions.as_slice()?.to_vec();
        let s = py
            .detach(|| guard(|| self.venv.step(&actions)))?
            .map_err(py_err)?;
        let d = self.venv.obs_dim();
        Ok((
            PyArray1::from_vec(py, s.obs).reshape([n, d])?,
            PyArray1::from_vec(py, s.reward),
            PyArray1::from_vec(py, s.terminated),
            PyArray1::from_vec(py, s.truncated),
        ))
    }
}

/// The CEM/DCEM solver on a Python objective: see `dcem.cem` and `dcem.dcem`.
#[pyfunction]
#[pyo3(signature = (f, nx, *, n_batch, n_sample, n_elite, n_iter, tau, init_mu, init_sigma, lb, ub, normalize, iter_eps, sigma_floor, seed, noise_beta, time_steps, keep_elites, population_decay, add_mean_last, return_best, noise))]
#[allow(clippy::too_many_arguments)]
fn solve<'py>(
    py: Python<'py>,
    f: Bound<'py, PyAny>,
    nx: usize,
    n_batch: usize,
    n_sample: usize,
    n_elite: usize,
    n_iter: usize,
    tau: f64,
    init_mu: Option<PyReadonlyArray2<'py, f64>>,
    init_sigma: f64,
    lb: Option<f64>,
    ub: Option<f64>,
    normalize: bool,
    iter_eps: f64,
    sigma_floor: f64,
    seed: u64,
    noise_beta: f64,
    time_steps: Option<usize>,
    keep_elites: f64,
    population_decay: f64,
    add_mean_last: bool,
    return_best: bool,
    noise: Option<numpy::PyReadonlyArrayDyn<'py, f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    if nx == 0 || n_batch == 0 {
        return Err(PyValueError::new_err(format!(
            "nx and n_batch must be at least 1, got nx={nx}, n_batch={n_batch}"
        )));
    }
    dcem::limits::check_dim("nx", nx).map_err(py_err)?;
    dcem::limits::check_dim("n_batch", n_batch).map_err(py_err)?;
    dcem::limits::MemoryEstimate::new()
        .add("mean and deviation [n_batch, nx]", 4.0, &[n_batch, nx])
        .check("this solve")
        .map_err(py_err)?;
    let config = CemConfig {
        n_sample,
        n_elite,
        n_iter,
        tau,
        lb,
        ub,
        init_sigma,
        normalize,
        iter_eps,
        sigma_floor,
        noise_beta,
        keep_elites,
        shift_elites: false,
        population_decay,
        add_mean_last,
        return_best,
    };
    let mut solver = Cem::new(config).map_err(py_err)?;
    if let Some(t) = time_steps {
        if t == 0 || !nx.is_multiple_of(t) {
            return Err(PyValueError::new_err(format!(
                "time_steps must divide nx ({nx}) into whole steps, got {t}"
            )));
        }
        solver = solver.with_time_steps(t);
    }
    let device = Device::flex();
    let init = match init_mu {
        None => CemInit::scalar(n_batch, nx, 0.0, init_sigma, &device),
        Some(mu) => {
            if mu.shape() != [n_batch, nx] {
                return Err(PyValueError::new_err(format!(
                    "init_mu must have shape ({n_batch}, {nx}), got {:?}",
                    mu.shape()
                )));
            }
            let values: Vec<f32> = mu.as_array().iter().map(|v| *v as f32).collect();
            let mu = Tensor::<2>::from_data(TensorData::new(values, [n_batch, nx]), &device);
            CemInit::new(
                mu,
                Tensor::ones([n_batch, 1], &device).mul_scalar(init_sigma),
            )
        }
    };
    // The objective: samples [B, N, nx] to numpy, values [B, N] back. Values are ranked in f32,
    // so each row's are first mapped, in f64, by one affine map fixed at the first call:
    // minus that call's lowest value (every ranking and soft top-k is unchanged by a shift),
    // and, where the ranking is also unchanged by a scale (hard elites, or normalised values),
    // divided by that call's spread. `1e8 + q(x)` and `1e-50 q(x)` are then solved like `q`.
    // The lowest raw value per row is kept in f64 for `best_value`. An exception from `f` or an
    // interrupt (Ctrl-C) ends the solve after that iteration and is raised.
    let scale_free = tau == 0.0 || normalize;
    let affine: RefCell<Option<Vec<(f64, f64)>>> = RefCell::new(None);
    let best = RefCell::new(vec![f64::INFINITY; n_batch]);
    let failure: RefCell<Option<PyErr>> = RefCell::new(None);
    let objective = |x: Tensor<3>| -> Tensor<2> {
        let [b, n, _] = x.dims();
        let nan = || Tensor::<2>::full([b, n], f32::NAN, &x.device());
        if failure.borrow().is_some() {
            return nan();
        }
        let result = (|| -> PyResult<Vec<f32>> {
            py.check_signals()?;
            let data = x
                .to_data_as::<f64>()
                .try_into_vec::<f64>()
                .map_err(|e| PyRuntimeError::new_err(format!("{e:?}")))?;
            let arr = PyArray1::from_vec(py, data).reshape([b, n, nx])?;
            let out = f.call1((arr,))?;
            let values =
                numpy::PyArrayLike2::<f64, numpy::AllowTypeChange>::extract(out.as_borrowed())
                    .map_err(|_| {
                        PyValueError::new_err(format!(
                            "the objective must return a float array of shape ({b}, {n})"
                        ))
                    })?;
            if values.shape() != [b, n] {
                return Err(PyValueError::new_err(format!(
                    "the objective must return shape ({b}, {n}), got {:?}",
                    values.shape()
                )));
            }
            let values = values.as_array();
            let rows: Vec<Vec<f64>> = values.rows().into_iter().map(|r| r.to_vec()).collect();
            let mut best = best.borrow_mut();
            for (bst, row) in best.iter_mut().zip(&rows) {
                for v in row.iter().filter(|v| v.is_finite()) {
                    *bst = bst.min(*v);
                }
            }
            let mut affine = affine.borrow_mut();
            let maps = affine.get_or_insert_with(|| {
                rows.iter()
                    .map(|row| {
                        let finite = row.iter().copied().filter(|v| v.is_finite());
                        let lo = finite.clone().fold(f64::INFINITY, f64::min);
                        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
                        if !lo.is_finite() {
                            (0.0, 1.0)
                        } else if scale_free && hi > lo {
                            (lo, hi - lo)
                        } else {
                            (lo, 1.0)
                        }
                    })
                    .collect()
            });
            Ok(rows
                .iter()
                .zip(maps.iter())
                .flat_map(|(row, (shift, scale))| {
                    row.iter().map(move |v| ((v - shift) / scale) as f32)
                })
                .collect())
        })();
        match result {
            Ok(v) => Tensor::<2>::from_data(TensorData::new(v, [b, n]), &x.device()),
            Err(e) => {
                *failure.borrow_mut() = Some(e);
                nan()
            }
        }
    };
    let mut stop = || failure.borrow().is_some();
    let hooks = CemHooks {
        on_iter: None,
        project: None,
        stop: Some(&mut stop),
    };
    let solution = match noise {
        Some(noise) => {
            let want = [n_iter, n_batch, n_sample, nx];
            if noise.shape() != want {
                return Err(PyValueError::new_err(format!(
                    "noise must have shape (n_iter, n_batch, n_sample, nx) = {want:?}, got {:?}",
                    noise.shape()
                )));
            }
            let values: Vec<f32> = noise.as_array().iter().map(|v| *v as f32).collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(PyValueError::new_err(
                    "noise must be finite (standard-normal draws)",
                ));
            }
            guard(|| solver.solve_given_noise(objective, init, &values, hooks))?
        }
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            guard(|| solver.solve_with(objective, init, &mut rng, hooks))?
        }
    };
    if let Some(e) = failure.take() {
        return Err(e);
    }
    let solution = solution.map_err(py_err)?;
    let read = |t: &Tensor<2>| -> PyResult<Vec<f64>> {
        t.to_data_as::<f64>()
            .try_into_vec::<f64>()
            .map_err(|e| PyRuntimeError::new_err(format!("{e:?}")))
    };
    let out = PyDict::new(py);
    out.set_item(
        "mu",
        PyArray1::from_vec(py, read(&solution.mu)?).reshape([n_batch, nx])?,
    )?;
    let sigma = read(&solution.sigma)?;
    let cols = sigma.len() / n_batch;
    out.set_item(
        "sigma",
        PyArray1::from_vec(py, sigma).reshape([n_batch, cols])?,
    )?;
    out.set_item("best_value", PyArray1::from_vec(py, best.take()))?;
    out.set_item("iterations", solution.iterations)?;
    out.set_item("non_finite", solution.non_finite)?;
    out.set_item("evaluations", solution.evaluations)?;
    Ok(out)
}

/// Runs `work`, turning a panic inside the Rust code into a `RuntimeError` (pyo3 would raise
/// `PanicException`, which `except Exception` does not catch).
fn guard<T>(work: impl FnOnce() -> T) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        PyRuntimeError::new_err(format!(
            "internal error in the Rust solver or environment (a bug: please report it): {msg}"
        ))
    })
}

/// The LML projection (soft top-`k` at temperature `tau`) of each row of `x` `[batch, n]`,
/// computed in f64 by the framework's solver (`dcem::lml::lml_f64`).
#[pyfunction]
fn lml<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    k: f64,
    tau: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let [b, n] = [x.shape()[0], x.shape()[1]];
    if b == 0 || n == 0 {
        return Err(PyValueError::new_err(format!(
            "x must have at least one row and one column, got shape ({b}, {n})"
        )));
    }
    dcem::limits::check_dim("rows", b).map_err(py_err)?;
    dcem::limits::check_dim("columns", n).map_err(py_err)?;
    let values: Vec<f64> = x.as_array().iter().copied().collect();
    let y = py
        .detach(|| guard(|| dcem::lml::lml_f64(&values, n, k, tau)))?
        .map_err(py_err)?;
    PyArray1::from_vec(py, y).reshape([b, n])
}

/// The `rgb_array` frame `[height, width, 3]` (uint8) of environment `name` at observation
/// `obs`, drawn by `dcem_envs::render` (the cart-pole environments and the pendulum).
#[pyfunction]
fn render<'py>(
    py: Python<'py>,
    name: &str,
    obs: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, numpy::PyArray3<u8>>> {
    use dcem_envs::render::{cartpole_frame, pendulum_frame, swingup_frame};
    let draw = match name {
        "cartpole" | "cartpole-continuous" => cartpole_frame,
        "swingup" => swingup_frame,
        "pendulum" => pendulum_frame,
        other => {
            return Err(PyValueError::new_err(format!(
                "`{other}` has no drawing; the cart-pole environments and `pendulum` have"
            )));
        }
    };
    let frame = draw(obs.as_slice()?).map_err(py_err)?;
    let (h, w) = (frame.height(), frame.width());
    PyArray1::from_vec(py, frame.rgb().to_vec()).reshape([h, w, 3])
}

/// The environment ids this build provides.
#[pyfunction]
fn env_ids() -> Vec<&'static str> {
    names()
}

/// Takes dm_control's model files from `suite` (the `dm_control/suite` folder of the package
/// the running interpreter imports) instead of looking for them.
#[cfg(feature = "mujoco")]
#[pyfunction]
fn use_dm_control_suite(suite: std::path::PathBuf) -> PyResult<()> {
    dcem_envs::dmc::use_suite_dir(suite).map_err(py_err)
}

/// The module: `dcem._core`, or `dcem._core_mujoco` when built with MuJoCo (a separate
/// extension, loaded only where the `mujoco` package provides libmujoco).
#[pymodule]
#[cfg_attr(feature = "mujoco", pyo3(name = "_core_mujoco"))]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RustEnv>()?;
    m.add_class::<RustVecEnv>()?;
    m.add_function(wrap_pyfunction!(solve, m)?)?;
    m.add_function(wrap_pyfunction!(env_ids, m)?)?;
    m.add_function(wrap_pyfunction!(lml, m)?)?;
    m.add_function(wrap_pyfunction!(render, m)?)?;
    #[cfg(feature = "mujoco")]
    m.add_function(wrap_pyfunction!(use_dm_control_suite, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
