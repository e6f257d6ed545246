//! Unrolled gradient descent: convergence, autodiff gradients, errors.

use burn::tensor::{Device, Tensor};
use dcem::gd::{GdConfig, autodiff_grad, unrolled_gd};

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 data")
}

#[test]
fn gd_with_an_autodiff_gradient_reaches_a_quadratic_minimum() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        let target = Tensor::<2>::from_floats([[1.0, -2.0, 0.5]], &device);
        let f = |y: Tensor<2>| (y - target.clone()).square().sum_dim(1).squeeze_dim::<1>(1);
        let grad = |y: Tensor<2>| autodiff_grad(f, y);
        let cfg = GdConfig {
            steps: 50,
            lr: 0.2,
            ..Default::default()
        };
        let iterates = unrolled_gd(&cfg, grad, Tensor::zeros([1, 3], &device)).unwrap();
        assert_eq!(iterates.len(), 51);
        let y = to_vec(iterates.last().unwrap().clone());
        for (a, b) in y.iter().zip([1.0, -2.0, 0.5]) {
            assert!((a - b).abs() < 1e-4, "{y:?}");
        }
    }
}

#[test]
fn bounds_clamp_the_iterates() {
    let device = Device::flex();
    let cfg = GdConfig {
        steps: 20,
        lr: 0.5,
        lb: Some(-1.0),
        ub: Some(1.0),
    };
    let grad = |y: Tensor<2>| y.clone() - Tensor::<2>::ones(y.dims(), &y.device()).mul_scalar(5.0);
    let last = unrolled_gd(&cfg, grad, Tensor::zeros([2, 2], &device))
        .unwrap()
        .pop()
        .unwrap();
    assert!(to_vec(last).iter().all(|v| (*v - 1.0).abs() < 1e-6));
}

#[test]
fn invalid_options_and_shapes_are_errors() {
    let device = Device::flex();
    let y0 = Tensor::<2>::zeros([1, 2], &device);
    for (field, cfg) in [
        (
            "steps",
            GdConfig {
                steps: 0,
                ..Default::default()
            },
        ),
        (
            "lr",
            GdConfig {
                lr: 0.0,
                ..Default::default()
            },
        ),
        (
            "lr",
            GdConfig {
                lr: f64::NAN,
                ..Default::default()
            },
        ),
        (
            "ub",
            GdConfig {
                lb: Some(1.0),
                ub: Some(1.0),
                ..Default::default()
            },
        ),
        (
            "lb",
            GdConfig {
                lb: Some(f64::NAN),
                ..Default::default()
            },
        ),
    ] {
        let err = unrolled_gd(&cfg, |y| y, y0.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
    }
    let err = unrolled_gd(&GdConfig::default(), |y| y.sum_dim(1), y0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gradient function output"), "{err}");
}
