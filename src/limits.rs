//! Bounds on sizes and counts, and a memory budget, checked before anything is allocated: a
//! config or a call that asks for more is an error naming the field (and, for memory, the
//! estimate and the largest tensors), never a panic in an allocator or an abort.
//!
//! - Every width, sample count or batch size is at most [`MAX_DIM`]; every count of
//!   iterations, steps, updates or episodes at most [`MAX_COUNT`] (far above any run, far below
//!   the point where arithmetic on it could overflow).
//! - A [`MemoryEstimate`] adds up the largest tensors a config or a call will hold (f32
//!   elements, products taken in f64 so that they cannot overflow) and compares the sum with
//!   the budget: [`DEFAULT_BUDGET_GIB`] GiB, or the environment variable `DCEM_MEMORY_BUDGET_GIB`
//!   (a positive number of GiB) where set.

use crate::error::{Error, Result};

/// The largest width, sample count or batch size any option may ask for.
pub const MAX_DIM: usize = 1 << 24;
/// The largest count of iterations, steps, updates or episodes any option may ask for.
pub const MAX_COUNT: usize = 1 << 40;
/// The memory budget when `DCEM_MEMORY_BUDGET_GIB` is not set, in GiB.
pub const DEFAULT_BUDGET_GIB: f64 = 16.0;
/// The environment variable that sets the memory budget (GiB).
pub const BUDGET_ENV: &str = "DCEM_MEMORY_BUDGET_GIB";

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Checks a width, sample count or batch size against [`MAX_DIM`].
pub fn check_dim(field: &'static str, value: usize) -> Result<()> {
    if value <= MAX_DIM {
        Ok(())
    } else {
        Err(Error::option(
            field,
            format!("{value} is above the largest size accepted, {MAX_DIM}"),
        ))
    }
}

/// Checks sizes that must be at least 1 and at most [`MAX_DIM`]: widths, layer counts, batch
/// sizes. The error names the first bad field.
pub fn check_sizes(fields: &[(&'static str, usize)]) -> Result<()> {
    for &(field, value) in fields {
        if value == 0 {
            return Err(Error::option(field, "must be at least 1"));
        }
        check_dim(field, value)?;
    }
    Ok(())
}

/// Checks a count of iterations, steps, updates or episodes against [`MAX_COUNT`].
pub fn check_count(field: &'static str, value: usize) -> Result<()> {
    if value <= MAX_COUNT {
        Ok(())
    } else {
        Err(Error::option(
            field,
            format!("{value} is above the largest count accepted, {MAX_COUNT}"),
        ))
    }
}

/// The memory budget in bytes: `DCEM_MEMORY_BUDGET_GIB` GiB where set, else
/// [`DEFAULT_BUDGET_GIB`], read once per process. A value that is not a positive number is an
/// error.
pub fn memory_budget() -> Result<f64> {
    static BUDGET: std::sync::OnceLock<std::result::Result<f64, String>> =
        std::sync::OnceLock::new();
    BUDGET
        .get_or_init(|| match std::env::var(BUDGET_ENV) {
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(g) if g.is_finite() && g > 0.0 => Ok(g * GIB),
                _ => Err(format!(
                    "{BUDGET_ENV}={v:?} is not a positive number of GiB"
                )),
            },
            Err(_) => Ok(DEFAULT_BUDGET_GIB * GIB),
        })
        .clone()
        .map_err(Error::Config)
}

/// Checks `copies` tensors of shape `dims` against the budget without allocating unless they
/// exceed it (for checks on every call of a hot path, such as a solve).
pub fn check_tensor(context: &str, what: &str, copies: f64, dims: &[usize]) -> Result<()> {
    let n = dims.iter().fold(copies, |acc, d| acc * *d as f64);
    let budget = memory_budget()?;
    if 4.0 * n <= budget {
        return Ok(());
    }
    MemoryEstimate::new()
        .add(what, copies, dims)
        .check_against(context, budget)
}

/// The largest tensors something will hold, as named f32 element counts.
#[derive(Clone, Debug, Default)]
pub struct MemoryEstimate {
    terms: Vec<(String, f64)>,
}

impl MemoryEstimate {
    /// An empty estimate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `copies` tensors of shape `dims` (their product in f64: no overflow).
    pub fn add(&mut self, what: impl Into<String>, copies: f64, dims: &[usize]) -> &mut Self {
        let n = dims.iter().fold(copies, |acc, d| acc * *d as f64);
        self.terms.push((what.into(), n));
        self
    }

    /// The estimate in bytes (f32 elements).
    pub fn bytes(&self) -> f64 {
        4.0 * self.terms.iter().map(|t| t.1).sum::<f64>()
    }

    /// Checks the estimate against [`memory_budget`]; the error gives the estimate and the
    /// three largest terms.
    pub fn check(&self, context: &str) -> Result<()> {
        self.check_against(context, memory_budget()?)
    }

    /// Checks the estimate against `budget` bytes.
    pub fn check_against(&self, context: &str, budget: f64) -> Result<()> {
        let bytes = self.bytes();
        if bytes <= budget {
            return Ok(());
        }
        let mut terms = self.terms.clone();
        terms.sort_by(|a, b| b.1.total_cmp(&a.1));
        let largest: Vec<String> = terms
            .iter()
            .take(3)
            .map(|(w, n)| format!("{w}: {:.3} GiB", 4.0 * n / GIB))
            .collect();
        Err(Error::Config(format!(
            "{context} would hold about {:.3} GiB in its largest tensors, above the memory \
             budget of {:.3} GiB (largest: {}): lower those sizes, or raise the budget with \
             {BUDGET_ENV}",
            bytes / GIB,
            budget / GIB,
            largest.join("; ")
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_memory_are_bounded_without_overflow() {
        assert!(check_dim("n_sample", MAX_DIM).is_ok());
        let e = check_dim("n_sample", usize::MAX).unwrap_err().to_string();
        assert!(e.contains("n_sample"), "{e}");
        assert!(check_count("n_iter", 1 << 62).is_err());
        let mut m = MemoryEstimate::new();
        m.add("samples", 1.0, &[usize::MAX, usize::MAX, 3])
            .add("small", 2.0, &[10, 10]);
        let e = m.check_against("the solve", GIB).unwrap_err().to_string();
        assert!(e.contains("samples") && e.contains(BUDGET_ENV), "{e}");
        let mut ok = MemoryEstimate::new();
        ok.add("x", 1.0, &[1024, 1024]);
        assert_eq!(ok.bytes(), 4.0 * 1024.0 * 1024.0);
        assert!(ok.check_against("x", GIB).is_ok());
        assert!(check_tensor("the solve", "samples", 4.0, &[8, 100, 20]).is_ok());
        let e = check_tensor("the solve", "samples", 4.0, &[1 << 20, 1 << 20, 64]).unwrap_err();
        assert!(e.to_string().contains("samples"), "{e}");
    }
}
