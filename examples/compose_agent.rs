//! Compose an agent: your own `Env` and `Model`, the framework's `CemPlanner` in an
//! `MpcAgent`, run by the episode runner. `cargo run --release --example compose_agent`
use burn::tensor::{Device, Tensor, s};
use dcem::agent::MpcAgent;
use dcem::env::{BoxSpace, Env, Space, Step, TimeLimit, VecEnv};
use dcem::model::{Model, Rollout};
use dcem::planning::{CemPlanner, CemPlannerConfig};
use dcem::runner::{eval_seeds, evaluate, evaluate_batched};

/// A cart on a line, pushed towards the origin: x += 0.1 v, then v += 0.1 a, reward -x^2.
#[rustfmt::skip]
pub struct Cart { state: [f64; 2], obs: Space, act: Space }
#[rustfmt::skip]
impl Env for Cart {
    fn observation_space(&self) -> &Space { &self.obs }
    fn action_space(&self) -> &Space { &self.act }
    fn reset(&mut self, seed: Option<u64>) -> dcem::Result<Vec<f64>> {
        self.state = [1.0 + (seed.unwrap_or(0) % 3) as f64, 0.0];
        Ok(self.state.to_vec())
    }
    fn step(&mut self, a: &[f64]) -> dcem::Result<Step> {
        let [x, v] = self.state;
        self.state = [x + 0.1 * v, v + 0.1 * a[0].clamp(-1.0, 1.0)];
        let reward = -self.state[0] * self.state[0];
        Ok(Step { obs: self.state.to_vec(), reward, terminated: false, truncated: false })
    }
}

/// The same dynamics on batches of tensors: cost = sum of x^2 over the plan.
pub struct CartModel;
#[rustfmt::skip]
impl Model for CartModel {
    fn state_dim(&self) -> usize { 2 }
    fn action_dim(&self) -> usize { 1 }
    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, _keep: bool) -> dcem::Result<Rollout> {
        let [b, h, _] = actions.dims();
        let (mut x, mut v) = (states.clone().slice(s![.., 0..1]), states.slice(s![.., 1..2]));
        let mut cost = x.zeros_like();
        for t in 0..h {
            x = x + v.clone().mul_scalar(0.1);
            v = v + actions.clone().slice(s![.., t..t + 1, ..]).reshape([b, 1]).mul_scalar(0.1);
            cost = cost + x.clone().square();
        }
        Ok(Rollout { cost: cost.reshape([b]), states: None })
    }
}

/// A cart that stops after 50 steps.
#[rustfmt::skip]
pub fn cart() -> dcem::Result<TimeLimit<Cart>> {
    let (obs, act) = (BoxSpace::uniform(2, -1e3, 1e3)?, BoxSpace::uniform(1, -1.0, 1.0)?);
    TimeLimit::new(Cart { state: [0.0; 2], obs: Space::Box(obs), act: Space::Box(act) }, 50)
}

/// The planner in an agent, its tensors on `device` (`dcem::device::parse_device("wgpu")` for
/// a GPU in a build with the `wgpu` feature).
fn agent(device: Device) -> dcem::Result<MpcAgent> {
    let config = CemPlannerConfig {
        horizon: 15,
        ..CemPlannerConfig::default()
    };
    Ok(MpcAgent::new(
        Box::new(CartModel),
        Box::new(CemPlanner::new(config)?),
        device,
    ))
}

/// Returns of three evaluation episodes, one after the other.
pub fn run() -> dcem::Result<Vec<f64>> {
    evaluate(&mut agent(Device::flex())?, &mut cart()?, &eval_seeds(3))
}

/// The same three episodes side by side: one planning call per step for all three carts.
pub fn run_batched() -> dcem::Result<Vec<f64>> {
    let mut carts = VecEnv::new(vec![cart()?, cart()?, cart()?])?;
    evaluate_batched(&mut agent(Device::flex())?, &mut carts, &eval_seeds(3))
}

fn main() -> dcem::Result<()> {
    println!("returns: {:?}", run()?);
    println!("batched: {:?}", run_batched()?);
    Ok(())
}
