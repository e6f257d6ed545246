//! Add a planner: random shooting (draw action sequences uniformly in the action box, execute
//! the cheapest) as a `Planner`, put in an `MpcAgent` on the cart of `compose_agent.rs`.
//! `cargo run --release --example add_planner`
use burn::tensor::{Device, Tensor};
use dcem::agent::MpcAgent;
use dcem::model::Model;
use dcem::nn::{tensor_from_f64, to_f64_vec};
use dcem::planner::{Plan, PlanDiagnostics, Planner};
use dcem::runner::{eval_seeds, evaluate};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

#[allow(dead_code)]
#[path = "compose_agent.rs"]
pub mod compose_agent;

// ANCHOR: planner
/// Random shooting: `n` action sequences of `horizon` steps drawn uniformly in
/// `[low, high]` per batch row; the plan is the one the model says is cheapest.
pub struct RandomShooting {
    n: usize,
    horizon: usize,
    low: f64,
    high: f64,
    rng: ChaCha8Rng,
}

impl RandomShooting {
    /// A planner drawing `n >= 1` sequences per plan from a generator seeded with `seed`.
    pub fn new(n: usize, horizon: usize, low: f64, high: f64, seed: u64) -> dcem::Result<Self> {
        if n == 0 {
            return Err(dcem::Error::option(
                "n",
                "at least 1 sequence per plan, got 0",
            ));
        }
        if horizon == 0 {
            return Err(dcem::Error::option("horizon", "at least 1 step, got 0"));
        }
        if low.is_nan() || high.is_nan() || low >= high {
            return Err(dcem::Error::option(
                "low",
                format!("below high, got [{low}, {high}]"),
            ));
        }
        let rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(Self {
            n,
            horizon,
            low,
            high,
            rng,
        })
    }
}

impl Planner for RandomShooting {
    fn plan(&mut self, model: &dyn Model, states: Tensor<2>) -> dcem::Result<Plan> {
        let [batch, state_dim] = states.dims();
        let (n, h, a) = (self.n, self.horizon, model.action_dim());
        let device = states.device();
        // Every start state repeated n times, and one uniform sequence for each copy.
        let starts = to_f64_vec(states)?;
        let repeated: Vec<f64> = (0..batch * n)
            .flat_map(|i| starts[(i / n) * state_dim..(i / n + 1) * state_dim].to_vec())
            .collect();
        let samples: Vec<f64> = (0..batch * n * h * a)
            .map(|_| self.rng.random_range(self.low..self.high))
            .collect();
        let cost = model.cost(
            tensor_from_f64(&repeated, [batch * n, state_dim], &device)?,
            tensor_from_f64(&samples, [batch * n, h, a], &device)?,
        )?;
        // The cheapest sequence of each row (a non-finite cost never wins).
        let cost = to_f64_vec(cost)?;
        let mut best = Vec::with_capacity(batch * h * a);
        let mut best_cost = Vec::with_capacity(batch);
        let mut non_finite = 0;
        for row in 0..batch {
            let costs = &cost[row * n..(row + 1) * n];
            non_finite += costs.iter().filter(|c| !c.is_finite()).count();
            let key = |c: f64| if c.is_finite() { c } else { f64::INFINITY };
            let i = (0..n)
                .min_by(|&i, &j| key(costs[i]).total_cmp(&key(costs[j])))
                .unwrap_or(0);
            let k = row * n + i;
            best.extend_from_slice(&samples[k * h * a..(k + 1) * h * a]);
            best_cost.push(costs[i]);
        }
        Ok(Plan {
            actions: tensor_from_f64(&best, [batch, h, a], &device)?,
            latent: None,
            diagnostics: PlanDiagnostics {
                cost: best_cost,
                iterations: vec![1; batch],
                non_finite,
                evaluations: vec![n; batch],
            },
        })
    }

    /// Random shooting keeps no warm start between episodes: nothing to forget.
    fn reset(&mut self) {}

    fn rng_state(&self) -> Option<&ChaCha8Rng> {
        Some(&self.rng)
    }

    fn set_rng_state(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
    }
}
// ANCHOR_END: planner

// ANCHOR: use
/// Returns of three evaluation episodes of the cart with random shooting (500 sequences of 15
/// steps per plan).
pub fn run() -> dcem::Result<Vec<f64>> {
    let planner = RandomShooting::new(500, 15, -1.0, 1.0, 0)?;
    let model = Box::new(compose_agent::CartModel);
    let mut agent = MpcAgent::new(model, Box::new(planner), Device::flex());
    evaluate(&mut agent, &mut compose_agent::cart()?, &eval_seeds(3))
}
// ANCHOR_END: use

fn main() -> dcem::Result<()> {
    println!("returns: {:?}", run()?);
    Ok(())
}
