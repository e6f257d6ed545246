//! Means with Student-t confidence intervals: over the few evaluation episodes of one run, or
//! any small set of independent repeats (over training seeds the protocol of
//! [`crate::run::protocol`] reports the mean, median and IQM with bootstrap intervals).

use serde::{Deserialize, Serialize};

/// Mean, 95% confidence half-width (Student's t over the seeds, or any independent repeats) and the values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Stat {
    /// Mean over the seeds, or any independent repeats.
    pub mean: f64,
    /// Half-width of the 95% confidence interval of the mean (NaN with one value).
    pub ci95: f64,
    /// The values, in order (non-finite ones kept but left out of the statistics).
    pub values: Vec<f64>,
}

/// Two-sided 95% critical values of Student's t for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

impl Stat {
    /// The statistics of `values` (finite ones; NaN mean when there are none).
    pub fn of(values: Vec<f64>) -> Self {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / n as f64
        };
        let ci95 = if n < 2 {
            f64::NAN
        } else {
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            let t = T95.get(n - 2).copied().unwrap_or(1.96);
            t * sd / (n as f64).sqrt()
        };
        Self { mean, ci95, values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_student_t_interval() {
        let s = Stat::of(vec![1.0, 2.0, 3.0, f64::NAN]);
        assert!((s.mean - 2.0).abs() < 1e-12);
        // sd 1, n 3: t(2) = 4.303.
        assert!((s.ci95 - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.values.len(), 4);
        assert!(Stat::of(vec![5.0]).ci95.is_nan());
        assert!(Stat::of(vec![]).mean.is_nan());
    }
}
