//! Differentiable policy means for Gaussian policies `pi(a | x) = N(mean(x), sigma^2)`.

use burn::tensor::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::input::{InputFilter, ObsInput};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::nn::{Activation, BeliefFilter, Ensemble, Mlp, Rssm};
use crate::planning::{LatentDcemPlanner, MlpDecoder};

/// A differentiable map from policy inputs to action means, with the parameters a policy
/// gradient trains.
pub trait PolicyMean {
    /// Width of one input row.
    fn input_dim(&self) -> usize;
    /// Width of one action.
    fn action_dim(&self) -> usize;
    /// The means `[n, action_dim]` of inputs `[n, input_dim]`, on the autodiff tape when the
    /// parameters are tracked. `seeds` (one per row) fix the noise of a stochastic mean (a
    /// sampling-based planner), so the same row and seed always give the same mean;
    /// deterministic means ignore them.
    fn mean(&self, inputs: Tensor<2>, seeds: &[u64]) -> Result<Tensor<2>>;
    /// The trained parameters, in a fixed order.
    fn params(&self) -> Vec<Tensor<2>>;
    /// Replaces the trained parameters (order and shapes of [`PolicyMean::params`]).
    fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()>;
    /// A copy with every parameter (trained or frozen) detached and moved to `device`.
    fn to_device(&self, device: &Device) -> Result<Self>
    where
        Self: Sized;
}

fn moved(params: Vec<Tensor<2>>, device: &Device) -> Vec<Tensor<2>> {
    params
        .into_iter()
        .map(|p| Tensor::<2>::from_data(p.into_data(), device))
        .collect()
}

/// A plain MLP mean (tanh hidden layers, linear output), as in CleanRL's continuous PPO.
#[derive(Clone, Debug)]
pub struct MlpPolicy {
    /// The network.
    pub net: Mlp,
}

impl MlpPolicy {
    /// A network `input_dim -> hidden x layers -> action_dim` with PyTorch's default
    /// initialisation and the output layer scaled by 0.01, so that the initial means are near 0.
    pub fn new<R: Rng + ?Sized>(
        input_dim: usize,
        action_dim: usize,
        hidden: usize,
        layers: usize,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        if input_dim == 0 || action_dim == 0 || hidden == 0 || layers == 0 {
            return Err(Error::option(
                "policy sizes",
                format!(
                    "input, action, hidden width and layer count must be at least 1, got \
                     {input_dim}, {action_dim}, {hidden}, {layers}"
                ),
            ));
        }
        let mut sizes = vec![input_dim];
        sizes.extend(std::iter::repeat_n(hidden, layers));
        sizes.push(action_dim);
        let mut net = Mlp::new(&sizes, Activation::Tanh, device, rng)?;
        if let Some(last) = net.layers.last_mut() {
            last.weight = last.weight.clone().mul_scalar(0.01);
            last.bias = last.bias.clone().mul_scalar(0.0);
        }
        Ok(Self { net })
    }
}

impl PolicyMean for MlpPolicy {
    fn input_dim(&self) -> usize {
        self.net.d_in()
    }

    fn action_dim(&self) -> usize {
        self.net.d_out()
    }

    fn mean(&self, inputs: Tensor<2>, _seeds: &[u64]) -> Result<Tensor<2>> {
        check_inputs(&inputs, self.input_dim())?;
        Ok(self.net.forward(inputs))
    }

    fn params(&self) -> Vec<Tensor<2>> {
        self.net.params()
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        self.net.set_params(params)
    }

    fn to_device(&self, device: &Device) -> Result<Self> {
        let mut out = self.clone();
        out.net.set_params(moved(self.net.params(), device))?;
        Ok(out)
    }
}

fn check_inputs(inputs: &Tensor<2>, width: usize) -> Result<()> {
    let [n, w] = inputs.dims();
    if w != width || n == 0 {
        return Err(Error::shape(
            "policy inputs",
            format!("[n >= 1, {width}]"),
            inputs.dims(),
        ));
    }
    Ok(())
}

/// Which parts of the latent DCEM controller a policy gradient fine-tunes; the others stay
/// frozen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DcemParts {
    /// The model's reward head.
    pub reward: bool,
    /// The model's transition: the GRU input layer, the GRU and the prior.
    pub transition: bool,
    /// The action decoder.
    pub decoder: bool,
}

impl DcemParts {
    /// A short label such as `reward+decoder` (`none` when everything is frozen).
    pub fn label(&self) -> String {
        let mut v = Vec::new();
        if self.reward {
            v.push("reward");
        }
        if self.transition {
            v.push("transition");
        }
        if self.decoder {
            v.push("decoder");
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join("+")
        }
    }
}

/// The learned model a [`DcemPolicy`] plans on.
#[derive(Clone, Debug)]
pub enum ControllerModel {
    /// A recurrent state-space model: the policy's inputs are its belief states (`[deter,
    /// stoch]`), filtered from the observations by a [`BeliefFilter`].
    Rssm(Box<Rssm>),
    /// A probabilistic ensemble over the observation: the inputs are the observations.
    Ensemble(Box<Ensemble>),
}

impl ControllerModel {
    /// The model as a planning [`Model`].
    pub fn as_model(&self) -> &dyn Model {
        match self {
            Self::Rssm(m) => m.as_ref(),
            Self::Ensemble(m) => m.as_ref(),
        }
    }

    /// Names of [`ControllerModel::params`] (for checkpoints).
    pub fn param_names(&self) -> Vec<String> {
        match self {
            Self::Rssm(m) => m.param_names(),
            Self::Ensemble(m) => m.param_names(),
        }
    }

    /// Every parameter of the model (trained or frozen by a policy gradient).
    pub fn params(&self) -> Vec<Tensor<2>> {
        match self {
            Self::Rssm(m) => m.params(),
            Self::Ensemble(m) => m.params(),
        }
    }

    /// Replaces every parameter (order and shapes of [`ControllerModel::params`]).
    pub fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        match self {
            Self::Rssm(m) => m.set_params(params),
            Self::Ensemble(m) => m.set_params(params),
        }
    }

    /// A copy with every tensor (the ensemble's normaliser included) detached and moved to
    /// `device`.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        Ok(match self {
            Self::Rssm(m) => {
                let mut out = m.clone();
                out.set_params(moved(m.params(), device))?;
                Self::Rssm(out)
            }
            Self::Ensemble(m) => Self::Ensemble(Box::new(m.to_device(device))),
        })
    }

    /// What turns observations into this model's policy inputs: the belief filter of the RSSM,
    /// the observation itself for the ensemble.
    pub fn input_filter(&self) -> Box<dyn InputFilter> {
        match self {
            Self::Rssm(m) => Box::new(BeliefFilter::new(m.as_ref().clone())),
            Self::Ensemble(_) => Box::new(ObsInput),
        }
    }
}

/// The latent DCEM controller over a learned model as a policy mean (paper sect. 5.2.2, phase
/// 3): `mean(x) = first action of decoder(z*(x))`, where `z*(x)` is the DCEM solution of the
/// latent planning problem from the model state `x` under the model's imagined reward. With an
/// RSSM, `x` is a belief state (`[deter, stoch]`, taken as given: the filter that produced it is
/// not differentiated); with an ensemble, the observation. The mean is differentiable through
/// every solver iteration with respect to the decoder and the model's parameters; [`DcemParts`]
/// picks which of them are trained. The ensemble predicts the reward and the next observation
/// with one network per member, so its `reward` and `transition` parts are one group, trained
/// when either is set.
#[derive(Debug)]
pub struct DcemPolicy {
    /// The learned model the controller plans on.
    pub model: ControllerModel,
    /// The latent planner with its decoder.
    pub planner: LatentDcemPlanner<MlpDecoder>,
    /// The trained parts.
    pub parts: DcemParts,
}

impl DcemPolicy {
    /// The trained model parameters, in the order of [`PolicyMean::params`].
    fn model_params(&self) -> Vec<Tensor<2>> {
        match &self.model {
            ControllerModel::Rssm(m) => {
                let mut g: Vec<&Mlp> = Vec::new();
                if self.parts.transition {
                    g.extend([&m.input, &m.gru, &m.prior]);
                }
                if self.parts.reward {
                    g.push(&m.reward_head);
                }
                g.into_iter().flat_map(Mlp::params).collect()
            }
            ControllerModel::Ensemble(m) => {
                if self.parts.transition || self.parts.reward {
                    m.params()
                } else {
                    Vec::new()
                }
            }
        }
    }
}

impl PolicyMean for DcemPolicy {
    fn input_dim(&self) -> usize {
        self.model.as_model().state_dim()
    }

    fn action_dim(&self) -> usize {
        self.model.as_model().action_dim()
    }

    fn mean(&self, inputs: Tensor<2>, seeds: &[u64]) -> Result<Tensor<2>> {
        check_inputs(&inputs, self.input_dim())?;
        let plan = self
            .planner
            .plan_seeded(self.model.as_model(), inputs, seeds)?;
        Ok(plan.first_action())
    }

    fn params(&self) -> Vec<Tensor<2>> {
        let mut p = self.model_params();
        if self.parts.decoder {
            p.extend(self.planner.decoder().net.params());
        }
        p
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        let want = self.params().len();
        if params.len() != want {
            return Err(Error::shape(
                "DcemPolicy::set_params",
                format!("{want} tensors"),
                params.len(),
            ));
        }
        let mut it = params.into_iter();
        let mut take = |m: &mut Mlp| -> Result<()> {
            let n = m.params().len();
            m.set_params(it.by_ref().take(n).collect())
        };
        match &mut self.model {
            ControllerModel::Rssm(m) => {
                if self.parts.transition {
                    take(&mut m.input)?;
                    take(&mut m.gru)?;
                    take(&mut m.prior)?;
                }
                if self.parts.reward {
                    take(&mut m.reward_head)?;
                }
            }
            ControllerModel::Ensemble(m) => {
                if self.parts.transition || self.parts.reward {
                    let n = m.params().len();
                    m.set_params(it.by_ref().take(n).collect())?;
                }
            }
        }
        if self.parts.decoder {
            let net = &mut self.planner.decoder_mut().net;
            let n = net.params().len();
            net.set_params(it.by_ref().take(n).collect())?;
        }
        Ok(())
    }

    fn to_device(&self, device: &Device) -> Result<Self> {
        let mut decoder = self.planner.decoder().clone();
        decoder
            .net
            .set_params(moved(self.planner.decoder().net.params(), device))?;
        Ok(Self {
            model: self.model.to_device(device)?,
            planner: LatentDcemPlanner::new(self.planner.config().clone(), decoder)?,
            parts: self.parts,
        })
    }
}
