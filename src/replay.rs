//! An episode replay buffer that samples fixed-length chunks of consecutive steps (PlaNet's
//! `[batch x length]` training sequences), and saves to and loads from a file.

use std::path::Path;

use rand::{Rng, RngExt};

use crate::error::{Error, Result};

/// One recorded episode: per step the observation before the action, the action, the reward.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpisodeRecord {
    /// Observations `[steps * obs_dim]`.
    pub obs: Vec<f32>,
    /// Actions `[steps * action_dim]`.
    pub actions: Vec<f32>,
    /// Rewards `[steps]`.
    pub rewards: Vec<f32>,
}

impl EpisodeRecord {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// No steps recorded.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// Appends one step (values must be finite: the error names the bad one).
    pub fn push(&mut self, obs: &[f64], action: &[f64], reward: f64) -> Result<()> {
        if let Some(v) = obs
            .iter()
            .chain(action)
            .chain([&reward])
            .find(|v| !v.is_finite())
        {
            return Err(Error::Data(format!(
                "non-finite value {v} in a step to record (obs {obs:?}, action {action:?}, \
                 reward {reward})"
            )));
        }
        self.obs.extend(obs.iter().map(|&v| v as f32));
        self.actions.extend(action.iter().map(|&v| v as f32));
        self.rewards.push(reward as f32);
        Ok(())
    }

    /// Sum of the rewards.
    pub fn total_reward(&self) -> f64 {
        self.rewards.iter().map(|&r| f64::from(r)).sum()
    }
}

/// Chunks sampled from the buffer, time-major: row `t * batch + b` is step `t` of chunk `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunks {
    /// Observations `[length * batch * obs_dim]`.
    pub obs: Vec<f64>,
    /// Actions `[length * batch * action_dim]`.
    pub actions: Vec<f64>,
    /// Rewards `[length * batch]`.
    pub rewards: Vec<f64>,
    /// Steps per chunk.
    pub length: usize,
    /// Chunks.
    pub batch: usize,
}

/// Whole episodes, sampled as chunks of consecutive steps.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayBuffer {
    obs_dim: usize,
    action_dim: usize,
    episodes: Vec<EpisodeRecord>,
}

/// Format 1: no checksum (still read). Format 2: a CRC-32 of everything before it at the end.
const MAGIC_V1: &[u8; 8] = b"DCEMRB01";
const MAGIC: &[u8; 8] = b"DCEMRB02";

impl ReplayBuffer {
    /// An empty buffer for observations and actions of these widths.
    pub fn new(obs_dim: usize, action_dim: usize) -> Self {
        Self {
            obs_dim,
            action_dim,
            episodes: Vec::new(),
        }
    }

    /// Width of an observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Width of an action.
    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    /// The stored episodes, oldest first.
    pub fn episodes(&self) -> &[EpisodeRecord] {
        &self.episodes
    }

    /// Number of stored steps.
    pub fn steps(&self) -> usize {
        self.episodes.iter().map(EpisodeRecord::len).sum()
    }

    /// Adds an episode (its arrays must agree with the buffer's widths).
    pub fn push(&mut self, episode: EpisodeRecord) -> Result<()> {
        let n = episode.len();
        if n == 0
            || episode.obs.len() != n * self.obs_dim
            || episode.actions.len() != n * self.action_dim
        {
            return Err(Error::shape(
                "ReplayBuffer::push episode",
                format!(
                    "steps >= 1 with {} obs and {} action values per step",
                    self.obs_dim, self.action_dim
                ),
                (n, episode.obs.len(), episode.actions.len()),
            ));
        }
        self.episodes.push(episode);
        Ok(())
    }

    /// Keeps the first `n` episodes (restoring the state of an older checkpoint).
    pub fn truncate(&mut self, n: usize) {
        self.episodes.truncate(n);
    }

    /// Samples `batch` chunks of `length` consecutive steps: an episode uniformly among those
    /// long enough, then a uniform start within it.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        batch: usize,
        length: usize,
        rng: &mut R,
    ) -> Result<Chunks> {
        self.sample_recent(batch, length, 0, rng)
    }

    /// [`ReplayBuffer::sample`] from the last `recent` episodes only (0: all of them).
    pub fn sample_recent<R: Rng + ?Sized>(
        &self,
        batch: usize,
        length: usize,
        recent: usize,
        rng: &mut R,
    ) -> Result<Chunks> {
        let first = if recent == 0 {
            0
        } else {
            self.episodes.len().saturating_sub(recent)
        };
        let long: Vec<&EpisodeRecord> = self.episodes[first..]
            .iter()
            .filter(|e| e.len() >= length)
            .collect();
        if long.is_empty() || batch == 0 || length == 0 {
            return Err(Error::Data(format!(
                "cannot sample {batch} chunks of {length} steps: the buffer holds no episode that \
                 long ({} episodes, longest {} steps); lower the chunk length",
                self.episodes.len(),
                self.episodes
                    .iter()
                    .map(EpisodeRecord::len)
                    .max()
                    .unwrap_or(0)
            )));
        }
        let (o, a) = (self.obs_dim, self.action_dim);
        let mut obs = vec![0.0; length * batch * o];
        let mut actions = vec![0.0; length * batch * a];
        let mut rewards = vec![0.0; length * batch];
        for b in 0..batch {
            let ep = long[rng.random_range(0..long.len())];
            let start = rng.random_range(0..=ep.len() - length);
            for t in 0..length {
                let (src, row) = (start + t, t * batch + b);
                for (dst, v) in obs[row * o..(row + 1) * o]
                    .iter_mut()
                    .zip(&ep.obs[src * o..(src + 1) * o])
                {
                    *dst = f64::from(*v);
                }
                for (dst, v) in actions[row * a..(row + 1) * a]
                    .iter_mut()
                    .zip(&ep.actions[src * a..(src + 1) * a])
                {
                    *dst = f64::from(*v);
                }
                rewards[row] = f64::from(ep.rewards[src]);
            }
        }
        Ok(Chunks {
            obs,
            actions,
            rewards,
            length,
            batch,
        })
    }

    /// Writes the buffer to `path` (through a temporary file and a rename), with a CRC-32 of
    /// its contents at the end so that a damaged file is found on loading.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes =
            Vec::with_capacity(36 + 4 * self.steps() * (self.obs_dim + self.action_dim + 1));
        bytes.extend_from_slice(MAGIC);
        for v in [self.obs_dim, self.action_dim, self.episodes.len()] {
            bytes.extend_from_slice(&(v as u64).to_le_bytes());
        }
        for ep in &self.episodes {
            bytes.extend_from_slice(&(ep.len() as u64).to_le_bytes());
            for v in ep.obs.iter().chain(&ep.actions).chain(&ep.rewards) {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        crate::run::atomic_write(path, &bytes)
    }

    /// Reads a buffer written by [`ReplayBuffer::save`]. A file that is not one, is cut short,
    /// fails its checksum or holds impossible sizes is an error naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Data(format!("cannot read replay buffer {}: {e}", path.display()))
        })?;
        let bad = |what: &str| {
            Error::Data(format!(
                "replay buffer {} is {what}; resume from a copy of the run, or start the run                  again with --overwrite",
                path.display()
            ))
        };
        let magic = bytes
            .get(..8)
            .ok_or_else(|| bad("not a dcem replay buffer file"))?;
        let body = if magic == MAGIC {
            let split = bytes.len().checked_sub(4).ok_or_else(|| bad("truncated"))?;
            let (body, crc) = bytes.split_at(split);
            let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
            if crc32fast::hash(body) != stored {
                return Err(bad("damaged (its checksum does not match its contents)"));
            }
            body
        } else if magic == MAGIC_V1 {
            &bytes[..]
        } else {
            return Err(bad("not a dcem replay buffer file"));
        };
        let mut pos = 8;
        let word = |pos: &mut usize| -> Result<usize> {
            let b = body.get(*pos..*pos + 8).ok_or_else(|| bad("truncated"))?;
            *pos += 8;
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            usize::try_from(u64::from_le_bytes(w)).map_err(|_| bad("corrupt (a size too large)"))
        };
        let (o, a, n) = (word(&mut pos)?, word(&mut pos)?, word(&mut pos)?);
        let width = o
            .checked_add(a)
            .and_then(|w| w.checked_add(1))
            .ok_or_else(|| bad("corrupt (observation or action width)"))?;
        let mut out = Self::new(o, a);
        for _ in 0..n {
            let len = word(&mut pos)?;
            let end = len
                .checked_mul(width)
                .and_then(|f| f.checked_mul(4))
                .and_then(|b| b.checked_add(pos))
                .ok_or_else(|| bad("corrupt (episode length)"))?;
            let raw = body.get(pos..end).ok_or_else(|| bad("truncated"))?;
            pos = end;
            let v: Vec<f32> = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            out.push(EpisodeRecord {
                obs: v[..len * o].to_vec(),
                actions: v[len * o..len * (o + a)].to_vec(),
                rewards: v[len * (o + a)..].to_vec(),
            })?;
        }
        if pos != body.len() {
            return Err(bad("longer than its header says (corrupt)"));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;

    fn episode(len: usize, base: f64) -> EpisodeRecord {
        let mut e = EpisodeRecord::default();
        for t in 0..len {
            let x = base + t as f64;
            e.push(&[x, -x], &[0.5 * x], x).unwrap();
        }
        e
    }

    #[test]
    fn chunks_are_consecutive_steps_of_one_episode() {
        let mut buf = ReplayBuffer::new(2, 1);
        buf.push(episode(10, 0.0)).unwrap();
        buf.push(episode(3, 1000.0)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let c = buf.sample(8, 5, &mut rng).unwrap();
        for b in 0..8 {
            let first = c.rewards[b];
            assert!(
                first < 1000.0,
                "the short episode cannot give a 5-step chunk"
            );
            for t in 0..5 {
                let row = t * 8 + b;
                assert_eq!(c.rewards[row], first + t as f64);
                assert_eq!(c.obs[row * 2], first + t as f64);
                assert_eq!(c.obs[row * 2 + 1], -(first + t as f64));
                assert_eq!(c.actions[row], 0.5 * (first + t as f64));
            }
        }
        assert!(buf.sample(1, 11, &mut rng).is_err());
    }

    #[test]
    fn recent_sampling_draws_from_the_last_episodes_only() {
        let mut buf = ReplayBuffer::new(2, 1);
        for k in 0..5 {
            buf.push(episode(6, 100.0 * k as f64)).unwrap();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let c = buf.sample_recent(64, 2, 2, &mut rng).unwrap();
        assert!(c.rewards.iter().all(|&r| r >= 300.0), "{:?}", c.rewards);
        assert!(c.rewards.iter().any(|&r| r < 400.0) && c.rewards.iter().any(|&r| r >= 400.0));
        // More than the buffer holds, or 0: all episodes; the same draws as `sample`.
        let (mut a, mut b) = (ChaCha8Rng::seed_from_u64(3), ChaCha8Rng::seed_from_u64(3));
        assert_eq!(
            buf.sample_recent(16, 3, 0, &mut a).unwrap(),
            buf.sample(16, 3, &mut b).unwrap()
        );
        assert_eq!(
            buf.sample_recent(16, 3, 50, &mut a).unwrap(),
            buf.sample(16, 3, &mut b).unwrap()
        );
    }

    #[test]
    fn save_and_load_round_trip_and_reject_garbage() {
        let dir = std::env::temp_dir().join(format!("dcem-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("buffer.bin");
        let mut buf = ReplayBuffer::new(2, 1);
        buf.push(episode(4, 0.0)).unwrap();
        buf.push(episode(7, 10.0)).unwrap();
        buf.save(&path).unwrap();
        assert_eq!(ReplayBuffer::load(&path).unwrap(), buf);
        let good = std::fs::read(&path).unwrap();
        let err = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            ReplayBuffer::load(&path).unwrap_err().to_string()
        };
        assert!(err(b"not a buffer").contains("not a dcem replay buffer"));
        // A flipped bit anywhere, in the header or the data, fails the checksum.
        for at in [9, 40, good.len() / 2, good.len() - 5] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x10;
            let e = err(&bytes);
            assert!(e.contains("checksum") && e.contains("--overwrite"), "{e}");
        }
        assert!(err(&good[..good.len() - 7]).contains("checksum"));
        // Format 1 (no checksum) is still read, and impossible sizes in its header are errors,
        // not panics or huge allocations.
        let mut v1 = good[..good.len() - 4].to_vec();
        v1[..8].copy_from_slice(MAGIC_V1);
        std::fs::write(&path, &v1).unwrap();
        assert_eq!(ReplayBuffer::load(&path).unwrap(), buf);
        for (at, value) in [
            (8, u64::MAX),
            (16, u64::MAX - 1),
            (24, u64::MAX),
            (32, u64::MAX / 3),
        ] {
            let mut bytes = v1.clone();
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            let e = err(&bytes);
            assert!(e.contains("corrupt") || e.contains("truncated"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_finite_steps_are_refused() {
        let mut e = EpisodeRecord::default();
        assert!(e.push(&[f64::NAN], &[0.0], 0.0).is_err());
        assert!(e.is_empty());
    }
}
