//! The framework's error type.

use thiserror::Error;

/// Result alias used throughout the framework.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the framework's library code.
///
/// Every variant names what was wrong and, where there is one, how to fix it. Library code
/// returns these instead of panicking on user input.
#[derive(Debug, Error)]
pub enum Error {
    /// A configuration field (or function option) has an invalid value.
    #[error("invalid option `{field}`: {reason}")]
    InvalidOption {
        /// The option's name as it appears in the config file or the API.
        field: &'static str,
        /// What is wrong and which values are accepted.
        reason: String,
    },
    /// A tensor or slice had the wrong shape.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// Which argument or intermediate value.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// An action was rejected by an environment.
    #[error("invalid action: {0}")]
    InvalidAction(String),
    /// An environment was stepped before `reset` or after its episode ended.
    #[error("environment must be reset: {0}")]
    NeedsReset(String),
    /// A numerical routine produced or met non-finite values it cannot handle.
    #[error("non-finite value in {what}: {detail}")]
    NonFinite {
        /// Where the value appeared.
        what: &'static str,
        /// Details, including what to check.
        detail: String,
    },
    /// A tensor's data could not be read back or converted.
    #[error("tensor data error: {0}")]
    Data(String),
    /// Reading or writing a configuration file failed.
    #[error("config error: {0}")]
    Config(String),
    /// An I/O error, with the path involved.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidOption`].
    pub fn option(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidOption {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Shape`].
    pub fn shape(
        what: &'static str,
        expected: impl Into<String>,
        got: impl std::fmt::Debug,
    ) -> Self {
        Self::Shape {
            what,
            expected: expected.into(),
            got: format!("{got:?}"),
        }
    }
}

/// Checks that `value` is finite and `>= min`; the error names `field`.
pub(crate) fn check_min(field: &'static str, value: f64, min: f64) -> Result<()> {
    if value.is_finite() && value >= min {
        Ok(())
    } else {
        Err(Error::option(
            field,
            format!("must be finite and >= {min}, got {value}"),
        ))
    }
}

/// Checks that `value` is finite and `> 0`; the error names `field`.
pub(crate) fn check_positive(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::option(
            field,
            format!("must be finite and > 0, got {value}"),
        ))
    }
}

/// Checks optional bounds: neither NaN, and `lb < ub` when both are set.
pub(crate) fn check_bounds(lb: Option<f64>, ub: Option<f64>) -> Result<()> {
    if lb.is_some_and(f64::is_nan) {
        return Err(Error::option("lb", "must not be NaN"));
    }
    if ub.is_some_and(f64::is_nan) {
        return Err(Error::option("ub", "must not be NaN"));
    }
    match (lb, ub) {
        (Some(l), Some(u)) if l >= u => Err(Error::option(
            "ub",
            format!("must be greater than lb ({l}), got {u}"),
        )),
        _ => Ok(()),
    }
}
