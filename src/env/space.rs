//! [`Space`]: what observations and actions are, [`BoxSpace`] for continuous ones.

use crate::error::{Error, Result};

/// A box in R^n: per-coordinate lower and upper bounds and a shape (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct BoxSpace {
    low: Vec<f64>,
    high: Vec<f64>,
    shape: Vec<usize>,
}

impl BoxSpace {
    /// A box with the given bounds and shape. Bounds may be infinite but not NaN, and
    /// `low <= high` must hold everywhere; the product of `shape` must equal the bounds' length.
    pub fn new(low: Vec<f64>, high: Vec<f64>, shape: Vec<usize>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if low.len() != n || high.len() != n {
            return Err(Error::shape(
                "BoxSpace bounds",
                format!("{n} values for shape {shape:?}"),
                (low.len(), high.len()),
            ));
        }
        for (i, (l, h)) in low.iter().zip(&high).enumerate() {
            if l.is_nan() || h.is_nan() || l > h {
                return Err(Error::option(
                    "BoxSpace",
                    format!("bound {i} is [{l}, {h}]: bounds must be ordered and not NaN"),
                ));
            }
        }
        Ok(Self { low, high, shape })
    }

    /// A flat box of `dim` coordinates, all in `[low, high]`.
    pub fn uniform(dim: usize, low: f64, high: f64) -> Result<Self> {
        Self::new(vec![low; dim], vec![high; dim], vec![dim])
    }

    /// Lower bounds, one per coordinate.
    pub fn low(&self) -> &[f64] {
        &self.low
    }

    /// Upper bounds, one per coordinate.
    pub fn high(&self) -> &[f64] {
        &self.high
    }

    /// The shape (its product is [`BoxSpace::dim`]).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of coordinates.
    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// Whether `x` has the right length and lies inside the box (NaN is never inside).
    pub fn contains(&self, x: &[f64]) -> bool {
        x.len() == self.dim()
            && x.iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(v, (l, h))| *v >= *l && *v <= *h)
    }

    /// Checks an action against the box: right length, no NaN, inside the bounds.
    /// `what` names the caller in the error.
    pub fn check(&self, x: &[f64], what: &str) -> Result<()> {
        if x.len() != self.dim() {
            return Err(Error::InvalidAction(format!(
                "{what}: expected {} values, got {}",
                self.dim(),
                x.len()
            )));
        }
        if let Some(i) = x.iter().position(|v| v.is_nan()) {
            return Err(Error::InvalidAction(format!("{what}: value {i} is NaN")));
        }
        if !self.contains(x) {
            return Err(Error::InvalidAction(format!(
                "{what}: {x:?} is outside [{:?}, {:?}]",
                self.low, self.high
            )));
        }
        Ok(())
    }

    /// `x` clipped into the box coordinate by coordinate (NaN stays NaN).
    pub fn clip(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(self.low.iter().zip(&self.high))
            .map(|(v, (l, h))| v.max(*l).min(*h))
            .collect()
    }
}

/// The space of observations or actions.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// A continuous box.
    Box(BoxSpace),
    /// `n` discrete choices `0..n`, passed as a single `f64` holding the index.
    Discrete(usize),
}

impl Space {
    /// Length of the flat vector that holds one element of the space.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Box(b) => b.dim(),
            Space::Discrete(_) => 1,
        }
    }

    /// Whether `x` is an element of the space.
    pub fn contains(&self, x: &[f64]) -> bool {
        match self {
            Space::Box(b) => b.contains(x),
            Space::Discrete(n) => {
                x.len() == 1 && x[0] >= 0.0 && x[0].fract() == 0.0 && x[0] < *n as f64
            }
        }
    }
}
