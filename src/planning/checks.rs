//! What every planner does with its search box (check it, clamp the solver's samples to it)
//! and with the start states it is given (check them).

use burn::tensor::Tensor;

use crate::cem::CemConfig;
use crate::error::{Error, Result, check_bounds};
use crate::model::Model;

/// Checks a planner's search box `[low, high]` (its config's `low_name` and `high_name`) and
/// that the solver inside it leaves its own bounds unset (the planner clamps to the box).
pub(super) fn check_search_box(
    (low_name, low): (&str, f64),
    (high_name, high): (&'static str, f64),
    cem: &CemConfig,
) -> Result<()> {
    check_bounds(Some(low), Some(high)).map_err(|_| {
        Error::option(
            high_name,
            format!("must be greater than {low_name} ({low}), got {high}"),
        )
    })?;
    if cem.lb.is_some() || cem.ub.is_some() {
        return Err(Error::option(
            "cem.lb",
            format!("leave the solver's bounds unset: the planner uses {low_name}/{high_name}"),
        ));
    }
    Ok(())
}

/// Checks that `states` is `[batch >= 1, model.state_dim()]` and returns the batch (`what`
/// names the planner in the error).
pub(super) fn check_states(
    what: &'static str,
    states: &Tensor<2>,
    model: &dyn Model,
) -> Result<usize> {
    let [batch, sd] = states.dims();
    if sd != model.state_dim() || batch == 0 {
        return Err(Error::shape(
            what,
            format!("[batch >= 1, {}]", model.state_dim()),
            states.dims(),
        ));
    }
    Ok(batch)
}

/// The solver's options with its samples clamped to the planner's search box `[low, high]`.
pub(super) fn clamped(cem: &CemConfig, low: f64, high: f64) -> CemConfig {
    CemConfig {
        lb: Some(low),
        ub: Some(high),
        ..cem.clone()
    }
}
