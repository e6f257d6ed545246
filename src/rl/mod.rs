//! On-policy reinforcement learning: generalised advantage estimation and PPO for Gaussian
//! policies around any differentiable mean, from a plain MLP to the latent DCEM controller over
//! a learned model (the paper's phase 3: the controller is the policy class, and the policy
//! gradient reaches the model's reward and transition parameters and the action decoder through
//! the solver).

pub mod agent;
pub mod collect;
pub mod curves;
pub mod gae;
pub mod input;
pub mod policy;
pub mod ppo;

pub use agent::PpoAgent;
pub use collect::{Budget, Collected, Collector, CollectorState, PlanSeeds};
pub use curves::write_ppo_curves;
pub use input::{InputFilter, ObsInput};

pub use gae::gae;
pub use policy::{ControllerModel, DcemParts, DcemPolicy, MlpPolicy, PolicyMean};
pub use ppo::{
    PPO_LOSS_METRICS, Ppo, PpoConfig, PpoLoss, PpoStats, RolloutBatch, gaussian_log_prob, ppo_loss,
};
