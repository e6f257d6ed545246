//! Checkpoints of a planet run: the agent's state (model, optimisers, decoder, generators,
//! counters) in `checkpoints/latest.safetensors` and the replay buffer in
//! `checkpoints/buffer.bin`, both written atomically.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use dcem::replay::ReplayBuffer;
use dcem::run::{Checkpoint, RunDir};
use serde::{Deserialize, Serialize};

use crate::agent::PlanetAgent;

/// Counters saved with every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Progress {
    pub episode: usize,
    pub env_steps: usize,
    pub wall_s: f64,
}

pub(crate) fn save_checkpoint(
    dir: &RunDir,
    agent: &PlanetAgent,
    progress: &Progress,
) -> Result<()> {
    // The buffer first: a checkpoint never points past the buffer on disk, and a buffer longer
    // than its checkpoint is cut back on resume.
    agent.buffer.save(&dir.checkpoints().join("buffer.bin"))?;
    let mut ck = Checkpoint::new();
    agent.put_state(&mut ck)?;
    ck.put_meta("progress", progress)?;
    ck.put_meta("buffer_episodes", &agent.buffer.episodes().len())?;
    ck.save(&dir.checkpoints().join("latest.safetensors"))?;
    Ok(())
}

pub(crate) fn load_checkpoint(
    path: &Path,
    agent: &mut PlanetAgent,
    everything: bool,
    with_buffer: bool,
) -> Result<Progress> {
    let file = path.join("checkpoints").join("latest.safetensors");
    let ck = Checkpoint::load(&file).with_context(|| format!("loading {}", file.display()))?;
    agent.load_state(&ck, everything)?;
    if with_buffer {
        let mut buffer = ReplayBuffer::load(&path.join("checkpoints").join("buffer.bin"))?;
        let n: usize = ck.meta("buffer_episodes")?;
        ensure!(
            buffer.episodes().len() >= n,
            "the replay buffer in {} holds {} episodes, fewer than its checkpoint's {n}",
            path.display(),
            buffer.episodes().len()
        );
        ensure!(
            buffer.obs_dim() == agent.buffer.obs_dim()
                && buffer.action_dim() == agent.buffer.action_dim(),
            "the replay buffer in {} is for another environment",
            path.display()
        );
        buffer.truncate(n);
        agent.buffer = buffer;
    }
    Ok(ck.meta("progress")?)
}
