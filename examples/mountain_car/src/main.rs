//! `mountain_car`: the example's environment driven by the framework's pieces.
//!
//! ```text
//! cargo run --release -p mountain-car-example -- mpc                          # CEM on the example's own model
//! cargo run --release -p mountain-car-example -- planet [EPISODES] [RUNS_DIR]  # the planet agent, learning its model
//! ```
//!
//! `planet` refuses an existing `RUNS_DIR/planet_mountain_car/`: remove it or give another
//! `RUNS_DIR`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Result, bail};
use mountain_car_example::{mpc_returns, planet_config, train_planet};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("mpc") | None => println!("MPC returns: {:?}", mpc_returns(3)?),
        Some("planet") => {
            let mut config = planet_config()?;
            if let Some(n) = args.get(1) {
                config.train.episodes = n.parse()?;
            }
            let runs = std::path::PathBuf::from(args.get(2).map_or("runs", String::as_str));
            let summary = train_planet(&config, &runs, dcem::run::Existing::Refuse)?;
            let eval = summary.eval.map_or(f64::NAN, |e| e.mean);
            println!(
                "planet agent, final evaluation: {eval:.1} ({})",
                summary.dir.display()
            );
        }
        Some(other) => {
            bail!("unknown command {other:?}: use `mpc` or `planet [EPISODES] [RUNS_DIR]`")
        }
    }
    Ok(())
}
