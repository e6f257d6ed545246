//! Pictures of the cart-pole environments, drawn from an observation, for episode videos
//! ([`dcem::video`]): a 600 x 400 frame in Gymnasium's `CartPole-v1` colours (dark cart, brown
//! pole, blue axle), the pole 1 m long (`th = 0` upright, positive leaning right).
//! The swing-up's view spans x in [-4, 4] m, CartPole's [-2.4, 2.4] m (its track); a cart beyond
//! the view is drawn at its edge. The pendulum is drawn as Gymnasium's `Pendulum-v1` draws it
//! (its torque arrow left out): 500 x 500, a rounded red rod of 1 m, a black pivot, 2.2 m to
//! each side. The Python package renders its `rgb_array` frames with these.

use std::path::Path;

use dcem::Result;
use dcem::video::{Frame, Rgb, write_gif};

use crate::EnvSpec;

/// Draws one frame from an observation of the environment.
pub type Drawer = fn(&[f64]) -> Result<Frame>;

const WIDTH: usize = 600;
const HEIGHT: usize = 400;
const TRACK_Y: f64 = 300.0;
const CART: Rgb = [40, 40, 40];
const POLE: Rgb = [202, 152, 101];
const AXLE: Rgb = [129, 132, 203];

/// The drawer of `spec`'s environment and its steps per second (one frame per step), when it
/// can be drawn (the swing-up and CartPole; not the MuJoCo tasks or Gymnasium envs).
pub fn drawer(spec: &EnvSpec) -> Option<(Drawer, f64)> {
    match spec {
        EnvSpec::Swingup { .. } => Some((swingup_frame as Drawer, 20.0)),
        EnvSpec::Cartpole {} => Some((cartpole_frame as Drawer, 50.0)),
        _ => None,
    }
}

/// Writes the observations of one episode of `spec`'s environment as an animated GIF at `path`,
/// one frame per observation, `steps_per_obs` environment steps apart (an action repeat).
/// Returns `Ok(false)`, writing nothing, when the environment cannot be drawn.
pub fn write_episode_gif(
    spec: &EnvSpec,
    observations: &[Vec<f64>],
    steps_per_obs: usize,
    path: &Path,
) -> Result<bool> {
    let Some((draw, steps_per_second)) = drawer(spec) else {
        return Ok(false);
    };
    let frames = observations
        .iter()
        .map(|o| draw(o))
        .collect::<Result<Vec<_>>>()?;
    write_gif(
        path,
        &frames,
        steps_per_second / steps_per_obs.max(1) as f64,
    )?;
    Ok(true)
}

fn cartpole_picture(x: f64, theta: f64, half_view: f64) -> Result<Frame> {
    let mut f = Frame::new(WIDTH, HEIGHT, [255; 3])?;
    let scale = WIDTH as f64 / (2.0 * half_view);
    let cx = (WIDTH as f64 / 2.0 + x * scale).clamp(25.0, WIDTH as f64 - 25.0);
    f.rect(cx - 25.0, TRACK_Y - 15.0, cx + 25.0, TRACK_Y + 15.0, CART);
    let axle = [cx, TRACK_Y - 7.5];
    let len = scale; // a pole of 1 m
    let tip = [axle[0] + len * theta.sin(), axle[1] - len * theta.cos()];
    f.segment(axle, tip, 10.0, POLE);
    f.disc(axle[0], axle[1], 5.0, AXLE);
    Ok(f)
}

fn check(obs: &[f64], n: usize, what: &'static str) -> Result<()> {
    if obs.len() != n || obs.iter().any(|v| !v.is_finite()) {
        return Err(dcem::Error::shape(
            what,
            format!("{n} finite values"),
            [obs.len()],
        ));
    }
    Ok(())
}

/// The swing-up from its observation `(x, x', cos th, sin th, th')`.
pub fn swingup_frame(obs: &[f64]) -> Result<Frame> {
    check(obs, 5, "swing-up observation to draw")?;
    cartpole_picture(obs[0], obs[3].atan2(obs[2]), 4.0)
}

/// The pendulum from its observation `(cos th, sin th, th')` (`th = 0` up, positive
/// anticlockwise).
pub fn pendulum_frame(obs: &[f64]) -> Result<Frame> {
    check(obs, 3, "Pendulum observation to draw")?;
    const SIZE: usize = 500;
    let scale = SIZE as f64 / (2.0 * 2.2);
    let centre = (SIZE / 2) as f64;
    let theta = obs[1].atan2(obs[0]);
    let tip = [centre - scale * theta.sin(), centre - scale * theta.cos()];
    let mut f = Frame::new(SIZE, SIZE, [255; 3])?;
    f.segment([centre, centre], tip, 0.2 * scale, [204, 77, 77]);
    f.disc(centre, centre, 0.05 * scale, [0; 3]);
    Ok(f)
}

/// CartPole from its observation `(x, x', th, th')`.
pub fn cartpole_frame(obs: &[f64]) -> Result<Frame> {
    check(obs, 4, "CartPole observation to draw")?;
    cartpole_picture(obs[0], obs[2], 2.4)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_pole_points_where_the_angle_says() {
        let up = swingup_frame(&[0.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
        let down = swingup_frame(&[0.0, 0.0, -1.0, 0.0, 0.0]).unwrap();
        let right = cartpole_frame(&[0.0, 0.0, std::f64::consts::FRAC_PI_2, 0.0]).unwrap();
        // 40 px above / below the axle, and to its right.
        assert_eq!(up.pixel(300, 252), Some(POLE));
        assert_eq!(down.pixel(300, 252), Some([255; 3]));
        assert_eq!(down.pixel(300, 332), Some(POLE));
        assert_eq!(right.pixel(400, 292), Some(POLE));
        assert!(swingup_frame(&[0.0; 4]).is_err());
        assert!(cartpole_frame(&[f64::NAN; 4]).is_err());
        assert!(drawer(&EnvSpec::CheetahRun {}).is_none());
        let pend_up = pendulum_frame(&[1.0, 0.0, 0.0]).unwrap();
        let pend_down = pendulum_frame(&[-1.0, 0.0, 0.0]).unwrap();
        assert_eq!(pend_up.pixel(250, 150), Some([204, 77, 77]));
        assert_eq!(pend_up.pixel(250, 350), Some([255; 3]));
        assert_eq!(pend_down.pixel(250, 350), Some([204, 77, 77]));
        assert_eq!(pend_up.pixel(250, 250), Some([0; 3]));
    }
}
