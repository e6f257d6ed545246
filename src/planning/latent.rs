//! Latent-space planning (paper sect. 5.2, alg. 2): (D)CEM searches a low-dimensional latent
//! space `Z`, and a learned decoder maps each latent point to a whole action sequence.
//!
//! With `tau > 0` the solution, and so the decoded plan, is differentiable with respect to the
//! decoder's parameters through every iteration of the solver: a loss on the plan's cost trains
//! the decoder to make its latent space easy to search (the paper's embedded DCEM).

use burn::tensor::{Tensor, activation};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cem::{Cem, CemConfig, CemHooks, CemInit};
use crate::error::{Error, Result, check_bounds};
use crate::model::Model;
use crate::nn::{Activation, Init, Mlp};
use crate::planner::{Plan, PlanDiagnostics, Planner};

/// Maps latent points to action sequences.
pub trait ActionDecoder {
    /// Width of a latent point.
    fn latent_dim(&self) -> usize;
    /// Steps of a decoded sequence.
    fn horizon(&self) -> usize;
    /// Width of one action.
    fn action_dim(&self) -> usize;
    /// Decodes `z: [n, latent_dim]` into action sequences `[n, horizon, action_dim]`, on the
    /// autodiff tape when the decoder's parameters or `z` are tracked.
    fn decode(&self, z: Tensor<2>) -> Result<Tensor<3>>;

    /// The decoder's learnable parameters, in a fixed order (empty: none).
    fn params(&self) -> Vec<Tensor<2>> {
        Vec::new()
    }

    /// Replaces the parameters (as many, of the same shapes, as [`ActionDecoder::params`]).
    fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        crate::planner::no_params("ActionDecoder::set_params", &params)
    }
}

// ANCHOR: mlp_decoder_config
/// Options of [`MlpDecoder`]. Defaults are the paper's cartpole decoder: 2-D latent, three
/// hidden layers of 256 ELU units, the reference's scaled-normal initialisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpDecoderConfig {
    /// Width of the latent space, at least 1.
    pub latent_dim: usize,
    /// Units per hidden layer, at least 1.
    pub hidden: usize,
    /// Number of hidden layers, at least 1.
    pub hidden_layers: usize,
    /// Hidden-layer nonlinearity.
    pub activation: Activation,
    /// Parameter initialisation.
    pub init: Init,
}
// ANCHOR_END: mlp_decoder_config

impl Default for MlpDecoderConfig {
    fn default() -> Self {
        Self {
            latent_dim: 2,
            hidden: 256,
            hidden_layers: 3,
            activation: Activation::Elu,
            init: Init::ScaledNormal,
        }
    }
}

impl MlpDecoderConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        crate::limits::check_sizes(&[
            ("decoder.latent_dim", self.latent_dim),
            ("decoder.hidden", self.hidden),
            ("decoder.hidden_layers", self.hidden_layers),
        ])?;
        Ok(())
    }
}

/// An MLP decoder `z -> low + (high - low) * sigmoid(net(z))`, reshaped to
/// `[horizon, action_dim]` (time-major, as the reference's decoder).
#[derive(Clone, Debug)]
pub struct MlpDecoder {
    /// The network `latent_dim -> hidden x hidden_layers -> horizon * action_dim`.
    pub net: Mlp,
    horizon: usize,
    action_dim: usize,
    low: f64,
    high: f64,
}

impl MlpDecoder {
    /// A fresh decoder for sequences of `horizon` actions of width `action_dim`, each coordinate
    /// squashed into `[low, high]`.
    pub fn new<R: rand::Rng + ?Sized>(
        config: &MlpDecoderConfig,
        horizon: usize,
        action_dim: usize,
        (low, high): (f64, f64),
        device: &burn::tensor::Device,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        if horizon == 0 || action_dim == 0 {
            return Err(Error::option(
                "horizon",
                "the decoder needs a horizon and an action width of at least 1",
            ));
        }
        check_bounds(Some(low), Some(high))?;
        let mut sizes = vec![config.latent_dim];
        sizes.extend(std::iter::repeat_n(config.hidden, config.hidden_layers));
        sizes.push(horizon * action_dim);
        Ok(Self {
            net: Mlp::with_init(&sizes, config.activation, config.init, device, rng)?,
            horizon,
            action_dim,
            low,
            high,
        })
    }

    /// The action bounds `(low, high)`.
    pub fn bounds(&self) -> (f64, f64) {
        (self.low, self.high)
    }

    /// The same decoder with its parameters marked as requiring gradients.
    pub fn require_grad(mut self) -> Self {
        self.net = self.net.require_grad();
        self
    }

    /// A copy with parameters detached from any autodiff graph.
    pub fn detached(&self) -> Self {
        let mut d = self.clone();
        d.net = self.net.detached();
        d
    }
}

impl ActionDecoder for MlpDecoder {
    fn latent_dim(&self) -> usize {
        self.net.d_in()
    }

    fn horizon(&self) -> usize {
        self.horizon
    }

    fn action_dim(&self) -> usize {
        self.action_dim
    }

    fn decode(&self, z: Tensor<2>) -> Result<Tensor<3>> {
        let [n, l] = z.dims();
        if l != self.latent_dim() {
            return Err(Error::shape(
                "MlpDecoder::decode latent points",
                format!("[n, {}]", self.latent_dim()),
                z.dims(),
            ));
        }
        let out = activation::sigmoid(self.net.forward(z))
            .mul_scalar(self.high - self.low)
            .add_scalar(self.low);
        Ok(out.reshape([n, self.horizon, self.action_dim]))
    }

    fn params(&self) -> Vec<Tensor<2>> {
        self.net.params()
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        self.net.set_params(params)
    }
}

// ANCHOR: latent_planner_config
/// Options of [`LatentDcemPlanner`]. Defaults are the paper's embedded DCEM: latent points in
/// `[-1, 1]`, 100 samples, 10 elites, 10 iterations, initial sigma 0.5, `tau = 1` on normalised
/// values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatentPlannerConfig {
    /// Lower bound of every latent coordinate.
    pub z_low: f64,
    /// Upper bound of every latent coordinate.
    pub z_high: f64,
    /// Seed of the planner's own noise generator.
    pub seed: u64,
    /// The solver over the latent space (its `lb`/`ub` must be unset: `z_low`/`z_high` are used).
    /// The search starts from the middle of the latent box.
    pub cem: CemConfig,
}
// ANCHOR_END: latent_planner_config

impl Default for LatentPlannerConfig {
    fn default() -> Self {
        Self {
            z_low: -1.0,
            z_high: 1.0,
            seed: 0,
            cem: CemConfig {
                n_sample: 100,
                n_elite: 10,
                n_iter: 10,
                tau: 1.0,
                init_sigma: 0.5,
                normalize: true,
                ..CemConfig::default()
            },
        }
    }
}

impl LatentPlannerConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        super::checks::check_search_box(("z_low", self.z_low), ("z_high", self.z_high), &self.cem)?;
        if self.cem.noise_beta != 0.0 {
            return Err(Error::option(
                "cem.noise_beta",
                "a latent point has no time axis to colour the noise along: set it to 0 (the \
                 full-space planner takes it)",
            ));
        }
        if self.cem.shift_elites {
            return Err(Error::option(
                "cem.shift_elites",
                "latent points have no time steps to shift: set it to false (keep_elites still \
                 keeps elites between the iterations of a solve)",
            ));
        }
        self.cem.validate()
    }
}

/// Plans by searching the latent space of an [`ActionDecoder`] with CEM (`tau = 0`) or DCEM
/// (`tau > 0`): each sample `z` is decoded to an action sequence and rolled out through the
/// model. The plan's actions are the decoded solution, differentiable with respect to the
/// decoder (and anything the model's cost depends on) when those are tracked.
#[derive(Debug)]
pub struct LatentDcemPlanner<D> {
    config: LatentPlannerConfig,
    decoder: D,
    solver: Cem,
    rng: ChaCha8Rng,
}

impl<D: ActionDecoder> LatentDcemPlanner<D> {
    /// Validates `config` and builds the planner around `decoder`.
    pub fn new(config: LatentPlannerConfig, decoder: D) -> Result<Self> {
        config.validate()?;
        let cem = super::checks::clamped(&config.cem, config.z_low, config.z_high);
        Ok(Self {
            solver: Cem::new(cem)?,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            decoder,
            config,
        })
    }

    /// The planner's options.
    pub fn config(&self) -> &LatentPlannerConfig {
        &self.config
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The decoder, to update its parameters.
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
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

    /// [`Planner::plan`] with solver hooks (an iteration callback that sees the latent samples,
    /// their costs and elite weights of every iteration).
    pub fn plan_with(
        &mut self,
        model: &dyn Model,
        states: Tensor<2>,
        hooks: CemHooks<'_>,
    ) -> Result<Plan> {
        // The generator is taken out for the plan (the planner is borrowed whole) and put back.
        let mut rng = std::mem::replace(&mut self.rng, ChaCha8Rng::seed_from_u64(0));
        let plan = self.plan_on(model, states, Noise::Rng(&mut rng), hooks);
        self.rng = rng;
        plan
    }

    /// Plans with one noise seed per start state instead of the planner's generator (see
    /// [`Cem::solve_seeded`]): the plan for a row is a deterministic function of the row's
    /// state, its seed and the parameters, whatever else is in the batch. A policy built on the
    /// planner uses this so that the action mean it acted with can be recomputed, on the
    /// autodiff tape, inside a training batch.
    pub fn plan_seeded(&self, model: &dyn Model, states: Tensor<2>, seeds: &[u64]) -> Result<Plan> {
        self.plan_on(model, states, Noise::Seeds(seeds), CemHooks::default())
    }
}

enum Noise<'a> {
    Rng(&'a mut ChaCha8Rng),
    Seeds(&'a [u64]),
}

impl<D: ActionDecoder> LatentDcemPlanner<D> {
    /// One plan, its noise from `noise`.
    fn plan_on(
        &self,
        model: &dyn Model,
        states: Tensor<2>,
        noise: Noise<'_>,
        hooks: CemHooks<'_>,
    ) -> Result<Plan> {
        let (solver, decoder, config) = (&self.solver, &self.decoder, &self.config);
        let batch = super::checks::check_states("LatentDcemPlanner::plan states", &states, model)?;
        let sd = model.state_dim();
        if decoder.action_dim() != model.action_dim() {
            return Err(Error::shape(
                "LatentDcemPlanner decoder action width",
                format!("the model's action width {}", model.action_dim()),
                decoder.action_dim(),
            ));
        }
        let l = decoder.latent_dim();
        let device = states.device();
        let mid = 0.5 * (config.z_low + config.z_high);
        let init = CemInit::scalar(batch, l, mid, config.cem.init_sigma, &device);
        let mut failure = None;
        let objective = |x: Tensor<3>| {
            let n = x.dims()[1];
            let run = || -> Result<Tensor<2>> {
                let actions = decoder.decode(x.reshape([batch * n, l]))?;
                let starts = states
                    .clone()
                    .unsqueeze_dim::<3>(1)
                    .expand([batch, n, sd])
                    .reshape([batch * n, sd]);
                let cost = model.cost(starts, actions)?;
                if cost.dims() != [batch * n] {
                    return Err(Error::shape(
                        "Model::cost output",
                        format!("[{}]", batch * n),
                        cost.dims(),
                    ));
                }
                Ok(cost.reshape([batch, n]))
            };
            run().unwrap_or_else(|e| {
                failure.get_or_insert(e);
                Tensor::<2>::zeros([batch, n], &device)
            })
        };
        let solution = match noise {
            Noise::Rng(rng) => solver.solve_with(objective, init, rng, hooks)?,
            Noise::Seeds(seeds) => solver.solve_seeded(objective, init, seeds, hooks)?,
        };
        if let Some(e) = failure {
            return Err(e);
        }
        let actions = decoder.decode(solution.mu.clone())?;
        let cost = crate::lml::read_f64(&model.cost(states.detach(), actions.clone().detach())?)?;
        Ok(Plan {
            actions,
            latent: Some(solution.mu),
            diagnostics: PlanDiagnostics {
                cost,
                iterations: solution.iterations,
                non_finite: solution.non_finite,
                evaluations: solution.evaluations,
            },
        })
    }
}

impl<D: ActionDecoder> Planner for LatentDcemPlanner<D> {
    fn plan(&mut self, model: &dyn Model, states: Tensor<2>) -> Result<Plan> {
        self.plan_with(model, states, CemHooks::default())
    }

    /// Nothing to forget: every solve starts from the middle of the latent box.
    fn reset(&mut self) {}

    /// The decoder's parameters.
    fn params(&self) -> Vec<Tensor<2>> {
        self.decoder.params()
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        self.decoder.set_params(params)
    }

    fn rng_state(&self) -> Option<&ChaCha8Rng> {
        Some(&self.rng)
    }

    fn set_rng_state(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
    }
}
