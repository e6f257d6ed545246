//! Checkpoints as safetensors files: named tensors plus JSON metadata, written atomically.
//!
//! The format is the one PyTorch users know (`safetensors.torch.load_file` reads our files), and
//! it holds no code: loading a checkpoint cannot execute anything. Two metadata entries make a
//! damaged file an error instead of wrong numbers: `dcem.format` (the version of what is
//! stored) and `dcem.crc32`, a CRC-32 over every tensor's name, dtype, shape and bytes and every
//! other metadata entry. Files written before these entries existed are still read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::{DType, Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Serialize, de::DeserializeOwned};

use super::{atomic_write, io_err};
use crate::error::{Error, Result};

/// The version of what a checkpoint stores; a file from a later version is refused.
const FORMAT: u32 = 1;
const FORMAT_KEY: &str = "dcem.format";
const CRC_KEY: &str = "dcem.crc32";

struct Stored {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Named tensors and metadata, saved to and loaded from one file.
#[derive(Default)]
pub struct Checkpoint {
    tensors: BTreeMap<String, Stored>,
    meta: HashMap<String, String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("tensors", &self.tensors.keys().collect::<Vec<_>>())
            .field("meta", &self.meta.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a float tensor (stored in f64 if it is f64, else in f32).
    pub fn put_tensor<const D: usize>(&mut self, name: &str, t: &Tensor<D>) -> Result<()> {
        let shape = t.dims().to_vec();
        let (dtype, bytes) = if t.dtype() == DType::F64 {
            let v = t
                .to_data()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .map_err(|e| Error::Data(format!("{name}: {e:?}")))?;
            (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        } else {
            let v = t
                .to_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Data(format!("{name}: {e:?}")))?;
            (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        };
        self.tensors.insert(
            name.to_string(),
            Stored {
                dtype,
                shape,
                bytes,
            },
        );
        Ok(())
    }

    /// Adds a metadata entry, serialised as JSON.
    pub fn put_meta<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        let s = serde_json::to_string(value)
            .map_err(|e| Error::Data(format!("checkpoint metadata `{key}`: {e}")))?;
        self.meta.insert(key.to_string(), s);
        Ok(())
    }

    /// Whether a tensor of that name is stored.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A stored tensor, created on `device` in the device's float dtype.
    pub fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Result<Tensor<D>> {
        let s = self.tensors.get(name).ok_or_else(|| {
            Error::Data(format!(
                "checkpoint has no tensor `{name}`: it is from another model"
            ))
        })?;
        let shape: [usize; D] = s.shape.clone().try_into().map_err(|_| {
            Error::shape(
                "checkpoint tensor rank",
                format!("{D} dimensions for `{name}`"),
                &s.shape,
            )
        })?;
        let values: Vec<f64> = match s.dtype {
            Dtype::F64 => s
                .bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            _ => s
                .bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64)
                .collect(),
        };
        let dtype = crate::nn::float_dtype(device);
        let data = if dtype == DType::F64 {
            TensorData::new(values, shape)
        } else {
            TensorData::new(
                values.into_iter().map(|v| v as f32).collect::<Vec<f32>>(),
                shape,
            )
        };
        Ok(Tensor::from_data(data, (device, dtype)))
    }

    /// A metadata entry.
    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let s = self.meta.get(key).ok_or_else(|| {
            Error::Data(format!(
                "checkpoint has no metadata `{key}`: it is from another run kind"
            ))
        })?;
        serde_json::from_str(s)
            .map_err(|e| Error::Data(format!("checkpoint metadata `{key}`: {e}")))
    }

    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(k, s)| {
                TensorView::new(s.dtype, s.shape.clone(), &s.bytes)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| Error::Data(format!("checkpoint tensor `{k}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut meta = self.meta.clone();
        meta.insert(FORMAT_KEY.to_string(), FORMAT.to_string());
        meta.insert(
            CRC_KEY.to_string(),
            checksum(&self.tensors, &meta).to_string(),
        );
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::Data(format!("serialising checkpoint: {e}")))?;
        atomic_write(path, &bytes)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`]. A missing file, a damaged one (its
    /// checksum does not match) or one from a later format is an error naming the file and
    /// what to do.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::Data(format!(
                "no checkpoint at {}: a run stopped before its first checkpoint has none; start it \
                 again with --overwrite",
                path.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let parsed = SafeTensors::deserialize(&bytes).map_err(|e| {
            Error::Data(format!(
                "{} is not a readable checkpoint: {e}",
                path.display()
            ))
        })?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        let mut ck = Self::new();
        ck.meta = header.metadata().clone().unwrap_or_default();
        for (name, view) in parsed.tensors() {
            if !matches!(view.dtype(), Dtype::F32 | Dtype::F64) {
                return Err(Error::Data(format!(
                    "{}: tensor `{name}` has dtype {:?}; only f32 and f64 are read",
                    path.display(),
                    view.dtype()
                )));
            }
            ck.tensors.insert(
                name,
                Stored {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                },
            );
        }
        let damaged = |what: String| {
            Error::Data(format!(
                "checkpoint {} {what}; resume from a copy of the run, or start it again with \
                 --overwrite",
                path.display()
            ))
        };
        if let Some(format) = ck.meta.remove(FORMAT_KEY) {
            let stored = ck.meta.remove(CRC_KEY);
            let mut meta = ck.meta.clone();
            meta.insert(FORMAT_KEY.to_string(), format.clone());
            let computed = checksum(&ck.tensors, &meta).to_string();
            if stored.as_deref() != Some(computed.as_str()) {
                return Err(damaged(
                    "is damaged (its checksum does not match its contents)".into(),
                ));
            }
            match format.parse::<u32>() {
                Ok(v) if v <= FORMAT => {}
                _ => {
                    return Err(damaged(format!(
                        "has format {format}, newer than this build reads ({FORMAT}): use the \
                         version that wrote it"
                    )));
                }
            }
        }
        Ok(ck)
    }
}

/// CRC-32 over the tensors (name, dtype, shape, bytes) and the metadata other than the
/// checksum itself, both in sorted order.
fn checksum(tensors: &BTreeMap<String, Stored>, meta: &HashMap<String, String>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let mut field = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    for (name, t) in tensors {
        field(name.as_bytes());
        field(format!("{:?}", t.dtype).as_bytes());
        let shape: Vec<u8> = t
            .shape
            .iter()
            .flat_map(|d| (*d as u64).to_le_bytes())
            .collect();
        field(&shape);
        field(&t.bytes);
    }
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != CRC_KEY).collect();
    keys.sort();
    for k in keys {
        field(k.as_bytes());
        field(meta[k].as_bytes());
    }
    h.finalize()
}

impl Checkpoint {
    /// Stores a generator's exact position in its stream.
    pub fn put_rng(&mut self, key: &str, rng: &rand::rngs::ChaCha8Rng) -> Result<()> {
        self.put_meta(key, &rng.serialize_state().to_vec())
    }

    /// A generator restored to the position stored by [`Checkpoint::put_rng`].
    pub fn rng(&self, key: &str) -> Result<rand::rngs::ChaCha8Rng> {
        let bytes: Vec<u8> = self.meta(key)?;
        let state: [u8; 49] = bytes
            .try_into()
            .map_err(|_| Error::Data(format!("checkpoint metadata `{key}` is not an RNG state")))?;
        Ok(rand::rngs::ChaCha8Rng::deserialize_state(&state))
    }
}

impl Checkpoint {
    /// Stores a network's parameters as `<prefix>.<param name>`.
    pub fn put_mlp(&mut self, prefix: &str, net: &crate::nn::Mlp) -> Result<()> {
        for (name, p) in net.param_names().iter().zip(net.params()) {
            self.put_tensor(&format!("{prefix}.{name}"), &p)?;
        }
        Ok(())
    }

    /// Loads the parameters stored by [`Checkpoint::put_mlp`] into `net` (whose architecture
    /// must match; a shape mismatch is an error naming the parameter).
    pub fn load_mlp(&self, prefix: &str, net: &mut crate::nn::Mlp, device: &Device) -> Result<()> {
        let params = net
            .param_names()
            .iter()
            .map(|n| self.tensor::<2>(&format!("{prefix}.{n}"), device))
            .collect::<Result<Vec<_>>>()?;
        net.set_params(params)
    }

    /// Stores an optimiser's state as `<prefix>.m.<i>`, `<prefix>.v.<i>`, `<prefix>.lr`,
    /// `<prefix>.steps`.
    pub fn put_adam(&mut self, prefix: &str, adam: &crate::optim::Adam) -> Result<()> {
        let st = adam.state();
        for (i, (m, v)) in st.m.iter().zip(&st.v).enumerate() {
            if let (Some(m), Some(v)) = (m, v) {
                self.put_tensor(&format!("{prefix}.m.{i}"), m)?;
                self.put_tensor(&format!("{prefix}.v.{i}"), v)?;
            }
        }
        self.put_meta(&format!("{prefix}.lr"), &st.lr)?;
        self.put_meta(&format!("{prefix}.steps"), &st.steps)
    }

    /// An optimiser for `n_params` parameters restored from [`Checkpoint::put_adam`].
    pub fn adam(
        &self,
        prefix: &str,
        config: crate::optim::AdamConfig,
        n_params: usize,
        device: &Device,
    ) -> Result<crate::optim::Adam> {
        let mut adam = crate::optim::Adam::new(config, n_params)?;
        let mut st = adam.state();
        st.lr = self.meta(&format!("{prefix}.lr"))?;
        st.steps = self.meta(&format!("{prefix}.steps"))?;
        for i in 0..n_params {
            if self.has_tensor(&format!("{prefix}.m.{i}")) {
                st.m[i] = Some(self.tensor(&format!("{prefix}.m.{i}"), device)?);
                st.v[i] = Some(self.tensor(&format!("{prefix}.v.{i}"), device)?);
            }
        }
        adam.load_state(st)?;
        Ok(adam)
    }
}
