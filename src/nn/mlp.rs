//! Multi-layer perceptron with an explicit input gradient.

use std::ops::Range;

use burn::tensor::activation;
use burn::tensor::{Device, Tensor};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::{fast, tensor_from_f64};
use crate::error::{Error, Result};

/// Hidden-layer nonlinearity of an [`Mlp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, a)`.
    Relu,
    /// `a` for `a > 0`, else `exp(a) - 1` (alpha 1).
    Elu,
    /// `log(1 + exp(a))`.
    Softplus,
    /// `tanh(a)`.
    Tanh,
}

impl Activation {
    /// The activation applied element-wise. For f32 on the CPU, softplus and ELU take a fused
    /// host kernel (value and slope in one pass; see `nn::fast`); elsewhere they are tensor
    /// operations, softplus as the overflow-safe `max(a, 0) + ln(1 + exp(-|a|))` (absolute error
    /// below f32 resolution).
    pub fn apply<const D: usize>(self, a: Tensor<D>) -> Tensor<D> {
        let kind = match self {
            Self::Softplus => Some(fast::Kind::Softplus),
            Self::Elu => Some(fast::Kind::Elu),
            Self::Relu | Self::Tanh => None,
        };
        if let Some(kind) = kind
            && fast::fused_applies(&a)
            && let Some(t) = fast::fused(kind, a.clone())
        {
            return t;
        }
        match self {
            Self::Relu => activation::relu(a),
            Self::Elu => activation::elu(a, 1.0),
            Self::Softplus => {
                activation::relu(a.clone()) + a.abs().neg().exp().add_scalar(1.0).log()
            }
            Self::Tanh => a.tanh(),
        }
    }

    /// Its derivative at `a`, as a tensor expression (differentiable again where the
    /// activation is twice differentiable).
    pub fn derivative<const D: usize>(self, a: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => Tensor::zeros_like(&a).mask_fill(a.greater_elem(0.0), 1.0),
            Self::Elu => {
                let positive = a.clone().greater_elem(0.0);
                a.clamp_max(0.0).exp().mask_fill(positive, 1.0)
            }
            Self::Softplus => activation::sigmoid(a),
            Self::Tanh => {
                let t = a.tanh();
                t.clone().mul(t).neg().add_scalar(1.0)
            }
        }
    }
}

/// One affine layer `y = x W + b`, with `W: [in, out]` and `b: [1, out]`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Weight, `[in, out]`.
    pub weight: Tensor<2>,
    /// Bias, `[1, out]`.
    pub bias: Tensor<2>,
}

/// How a [`Linear`] layer's parameters are drawn (on the host, from the caller's rng, so the
/// same seed gives the same weights on every backend).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// PyTorch's `nn.Linear` default: weight and bias uniform in `+-1/sqrt(in)`.
    #[default]
    Pytorch,
    /// Weight normal with standard deviation `2 / sqrt(in + out)`, bias zero (the DCEM
    /// reference's action decoder).
    ScaledNormal,
}

impl Linear {
    /// PyTorch's default initialisation ([`Init::Pytorch`]).
    pub fn new<R: Rng + ?Sized>(
        d_in: usize,
        d_out: usize,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        Self::with_init(d_in, d_out, Init::Pytorch, device, rng)
    }

    /// A layer initialised by `init`.
    pub fn with_init<R: Rng + ?Sized>(
        d_in: usize,
        d_out: usize,
        init: Init,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        if d_in == 0 || d_out == 0 {
            return Err(Error::option(
                "layer sizes",
                "every layer needs at least one unit",
            ));
        }
        let (w, b) = match init {
            Init::Pytorch => {
                let bound = 1.0 / (d_in as f64).sqrt();
                let mut draw = |n: usize| -> Vec<f64> {
                    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
                };
                (draw(d_in * d_out), draw(d_out))
            }
            Init::ScaledNormal => {
                let std = 2.0 / ((d_in + d_out) as f64).sqrt();
                let normal = rand_distr::Normal::new(0.0, std)
                    .map_err(|e| Error::option("init", e.to_string()))?;
                let w = (0..d_in * d_out)
                    .map(|_| rand_distr::Distribution::sample(&normal, rng))
                    .collect();
                (w, vec![0.0; d_out])
            }
        };
        Ok(Self {
            weight: tensor_from_f64(&w, [d_in, d_out], device)?,
            bias: tensor_from_f64(&b, [1, d_out], device)?,
        })
    }

    /// `x W + b` for `x: [n, in]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.clone()) + self.bias.clone()
    }
}

/// A fully connected network: `Linear -> act -> ... -> Linear` (no activation on the output).
#[derive(Clone, Debug)]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
    /// The hidden-layer nonlinearity.
    pub activation: Activation,
}

impl Mlp {
    /// A network with layer widths `sizes` (input first, output last; at least two entries),
    /// initialised as PyTorch's `nn.Linear`.
    pub fn new<R: Rng + ?Sized>(
        sizes: &[usize],
        activation: Activation,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        Self::with_init(sizes, activation, Init::Pytorch, device, rng)
    }

    /// A network whose layers are initialised by `init`.
    pub fn with_init<R: Rng + ?Sized>(
        sizes: &[usize],
        activation: Activation,
        init: Init,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::option(
                "layer sizes",
                format!("need input and output sizes at least, got {sizes:?}"),
            ));
        }
        let layers = sizes
            .windows(2)
            .map(|w| Linear::with_init(w[0], w[1], init, device, rng))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers, activation })
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.layers[0].weight.dims()[0]
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.layers[self.layers.len() - 1].weight.dims()[1]
    }

    /// The network applied to `x: [n, in]`, giving `[n, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = self.activation.apply(h);
            }
        }
        h
    }

    /// The gradient of the (scalar) output with respect to the input columns `inputs`, for each
    /// row of `x: [n, in]`: `[n, inputs.len()]`.
    ///
    /// It is backpropagation written out as forward tensor operations, so it stays on the
    /// autodiff tape: a loss on something computed from it (an unrolled gradient step) can be
    /// differentiated with respect to the weights. Errors unless the output width is 1.
    pub fn input_grad(&self, x: Tensor<2>, inputs: Range<usize>) -> Result<Tensor<2>> {
        if self.d_out() != 1 {
            return Err(Error::shape(
                "Mlp::input_grad network output",
                "one output unit",
                self.d_out(),
            ));
        }
        let d_in = self.d_in();
        if inputs.start >= inputs.end || inputs.end > d_in {
            return Err(Error::option(
                "inputs",
                format!("must be a non-empty range within 0..{d_in}, got {inputs:?}"),
            ));
        }
        let n = x.dims()[0];
        let last = self.layers.len() - 1;
        // Forward pass, keeping the pre-activations.
        let mut pre = Vec::with_capacity(last);
        let mut h = x;
        for layer in &self.layers[..last] {
            let a = layer.forward(h);
            h = self.activation.apply(a.clone());
            pre.push(a);
        }
        // Backward pass: delta = dE/dh, starting from the output layer's weight row.
        let ones = Tensor::<2>::ones([n, 1], &h.device());
        let mut delta = ones.matmul(self.layers[last].weight.clone().transpose());
        for l in (0..last).rev() {
            delta = delta * self.activation.derivative(pre[l].clone());
            let w = if l == 0 {
                self.layers[0].weight.clone().slice(inputs.clone())
            } else {
                self.layers[l].weight.clone()
            };
            delta = delta.matmul(w.transpose());
        }
        Ok(delta)
    }

    /// Every parameter, in the order of [`Mlp::param_names`].
    pub fn params(&self) -> Vec<Tensor<2>> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.clone(), l.bias.clone()])
            .collect()
    }

    /// Names of the parameters (`layers.0.weight`, `layers.0.bias`, ...).
    pub fn param_names(&self) -> Vec<String> {
        (0..self.layers.len())
            .flat_map(|i| [format!("layers.{i}.weight"), format!("layers.{i}.bias")])
            .collect()
    }

    /// Replaces every parameter (same order and shapes as [`Mlp::params`]).
    pub fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        if params.len() != 2 * self.layers.len() {
            return Err(Error::shape(
                "Mlp::set_params",
                format!("{} tensors", 2 * self.layers.len()),
                params.len(),
            ));
        }
        let mut it = params.into_iter();
        for layer in &mut self.layers {
            for slot in [&mut layer.weight, &mut layer.bias] {
                let p = it
                    .next()
                    .ok_or_else(|| Error::Data("missing parameter".into()))?;
                if p.dims() != slot.dims() {
                    return Err(Error::shape(
                        "Mlp::set_params parameter",
                        format!("{:?}", slot.dims()),
                        p.dims(),
                    ));
                }
                *slot = p;
            }
        }
        Ok(())
    }

    /// Marks every parameter as requiring gradients (call on an autodiff device before a
    /// training forward pass).
    pub fn require_grad(mut self) -> Self {
        for l in &mut self.layers {
            l.weight = l.weight.clone().require_grad();
            l.bias = l.bias.clone().require_grad();
        }
        self
    }

    /// A copy whose parameters are detached from any autodiff graph (for inference).
    pub fn detached(&self) -> Self {
        let mut m = self.clone();
        for l in &mut m.layers {
            l.weight = l.weight.clone().detach();
            l.bias = l.bias.clone().detach();
        }
        m
    }

    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.dims().iter().product::<usize>() + l.bias.dims()[1])
            .sum()
    }
}
