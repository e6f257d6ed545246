//! Full-space CEM/DCEM planning: optimise the `horizon x action_dim` action sequence directly.

use burn::tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cem::{Cem, CemConfig, CemHooks, CemInit};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::planner::{Plan, PlanDiagnostics, Planner, shift_plan};

// ANCHOR: cem_planner_config
/// Options of [`CemPlanner`]. Defaults are PlaNet's planner: horizon 12, 1000 samples,
/// 100 elites, 10 iterations, hard elites, actions in [-1, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CemPlannerConfig {
    /// Planning horizon (steps), at least 1.
    pub horizon: usize,
    /// Lower bound of every action coordinate.
    pub action_low: f64,
    /// Upper bound of every action coordinate.
    pub action_high: f64,
    /// Start each solve from the previous plan shifted by one step (model-predictive control).
    pub warm_start: bool,
    /// Seed of the planner's own noise generator.
    pub seed: u64,
    /// The solver. Its `lb`/`ub` must be unset: the action bounds above are used.
    pub cem: CemConfig,
}
// ANCHOR_END: cem_planner_config

impl Default for CemPlannerConfig {
    fn default() -> Self {
        Self {
            horizon: 12,
            action_low: -1.0,
            action_high: 1.0,
            warm_start: true,
            seed: 0,
            cem: CemConfig {
                n_sample: 1000,
                n_elite: 100,
                n_iter: 10,
                tau: 0.0,
                iter_eps: 0.0,
                ..CemConfig::default()
            },
        }
    }
}

impl CemPlannerConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.horizon == 0 {
            return Err(Error::option("horizon", "must be at least 1"));
        }
        crate::limits::check_dim("horizon", self.horizon)?;
        super::checks::check_search_box(
            ("action_low", self.action_low),
            ("action_high", self.action_high),
            &self.cem,
        )?;
        self.cem.validate()
    }
}

/// Full-space CEM/DCEM planner: the decision variable is the flattened action sequence
/// `[horizon * action_dim]` per batch row; every sample is rolled out through the model.
/// With `cem.tau > 0` and tracked inputs the plan is differentiable.
#[derive(Debug)]
pub struct CemPlanner {
    config: CemPlannerConfig,
    solver: Cem,
    rng: ChaCha8Rng,
    previous: Option<Tensor<3>>,
    /// iCEM's kept elites of the last solve, shifted by one step (`cem.shift_elites`).
    carried: Option<Tensor<3>>,
}

impl CemPlanner {
    /// Validates `config` and builds the planner.
    pub fn new(config: CemPlannerConfig) -> Result<Self> {
        config.validate()?;
        let cem = super::checks::clamped(&config.cem, config.action_low, config.action_high);
        Ok(Self {
            solver: Cem::new(cem)?.with_time_steps(config.horizon),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            previous: None,
            carried: None,
            config,
        })
    }

    /// The planner's options.
    pub fn config(&self) -> &CemPlannerConfig {
        &self.config
    }

    /// The planner's noise generator (saved with checkpoints so a resumed run draws the same
    /// samples).
    pub fn rng(&self) -> &ChaCha8Rng {
        &self.rng
    }

    /// Replaces the noise generator (restoring a checkpoint).
    pub fn set_rng(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
    }

    fn mid_action(&self) -> f64 {
        0.5 * (self.config.action_low + self.config.action_high)
    }
}

impl CemPlanner {
    /// [`Planner::plan`] with solver hooks (an iteration callback that sees every iteration's
    /// samples, values and weights, e.g. for plots; or a projection of the samples).
    pub fn plan_with(
        &mut self,
        model: &dyn Model,
        states: Tensor<2>,
        hooks: CemHooks<'_>,
    ) -> Result<Plan> {
        let batch = super::checks::check_states("CemPlanner::plan states", &states, model)?;
        let sd = model.state_dim();
        let (h, a) = (self.config.horizon, model.action_dim());
        let device = states.device();
        let mu = match self.previous.take() {
            Some(prev) if self.config.warm_start && prev.dims() == [batch, h, a] => {
                shift_plan(prev, self.mid_action()).reshape([batch, h * a])
            }
            _ => Tensor::<2>::zeros([batch, h * a], &device).add_scalar(self.mid_action()),
        };
        let mut init = CemInit::new(
            mu,
            Tensor::<2>::ones([batch, 1], &device).mul_scalar(self.config.cem.init_sigma),
        );
        if let Some(kept) = self.carried.take()
            && kept.dims()[0] == batch
            && kept.dims()[2] == h * a
        {
            init = init.with_carried(kept);
        }
        let mut model_error = None;
        let objective = |x: Tensor<3>| {
            let n = x.dims()[1];
            let actions = x.reshape([batch * n, h, a]);
            let starts = states
                .clone()
                .unsqueeze_dim::<3>(1)
                .expand([batch, n, sd])
                .reshape([batch * n, sd]);
            match model.cost(starts, actions) {
                Ok(cost) if cost.dims() == [batch * n] => cost.reshape([batch, n]),
                Ok(cost) => {
                    model_error.get_or_insert(Error::shape(
                        "Model::cost output",
                        format!("[{}]", batch * n),
                        cost.dims(),
                    ));
                    Tensor::<2>::zeros([batch, n], &device)
                }
                Err(e) => {
                    model_error.get_or_insert(e);
                    Tensor::<2>::zeros([batch, n], &device)
                }
            }
        };
        let solution = self
            .solver
            .solve_with(objective, init, &mut self.rng, hooks)?;
        if let Some(e) = model_error {
            return Err(e);
        }
        let actions = solution.mu.reshape([batch, h, a]);
        let cost = crate::lml::read_f64(&model.cost(states, actions.clone())?)?;
        if self.config.warm_start {
            self.previous = Some(actions.clone().detach());
        }
        if self.config.cem.shift_elites
            && let Some(kept) = solution.kept
        {
            let m = kept.dims()[1];
            let shifted = shift_plan(kept.detach().reshape([batch * m, h, a]), self.mid_action());
            self.carried = Some(shifted.reshape([batch, m, h * a]));
        }
        Ok(Plan {
            actions,
            latent: None,
            diagnostics: PlanDiagnostics {
                cost,
                iterations: solution.iterations,
                non_finite: solution.non_finite,
                evaluations: solution.evaluations,
            },
        })
    }
}

impl Planner for CemPlanner {
    fn plan(&mut self, model: &dyn Model, states: Tensor<2>) -> Result<Plan> {
        self.plan_with(model, states, CemHooks::default())
    }

    fn reset(&mut self) {
        self.previous = None;
        self.carried = None;
    }

    fn rng_state(&self) -> Option<&ChaCha8Rng> {
        Some(&self.rng)
    }

    fn set_rng_state(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
    }
}
