//! Finite-difference checks of every custom backward, in f64.
//!
//! This binary switches the CPU device to f64 before it creates any tensor, so it holds only
//! f64 tests. Relative error here is `max_i |autodiff_i - fd_i| / max_i |fd_i|`, with central
//! differences of step 1e-6.

use std::sync::Once;

use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};
use dcem::cem::{Cem, CemConfig, CemInit};
use dcem::gd::{GdConfig, unrolled_gd};
use dcem::lml::{lml, lml_with_stats};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

fn device() -> Device {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let mut d = Device::flex();
        d.configure(FloatDType::F64)
            .expect("configure f64 before any tensor exists");
    });
    let d = Device::flex().autodiff();
    assert_eq!(Tensor::<1>::zeros([1], &d).dtype(), DType::F64);
    d
}

fn tensor(v: &[f64], shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_into_vec::<f64>().expect("f64 data")
}

/// Central finite differences of `loss` at `x`.
fn fd_grad(x: &[f64], h: f64, mut loss: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + h;
        let up = loss(&xp);
        xp[i] = x[i] - h;
        let down = loss(&xp);
        xp[i] = x[i];
        g[i] = (up - down) / (2.0 * h);
    }
    g
}

fn rel_err(a: &[f64], fd: &[f64]) -> f64 {
    let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        scale > 1e-8,
        "gradient is numerically zero: the check would prove nothing"
    );
    a.iter()
        .zip(fd)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn random(n: usize, scale: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..n)
        .map(|_| scale * (2.0 * rng.random::<f64>() - 1.0))
        .collect()
}

#[test]
fn lml_gradient_matches_finite_differences() {
    let device = device();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for &(b, n, k, tau) in &[
        (3, 12, 3.0, 1.0),
        (2, 20, 5.0, 0.3),
        (2, 8, 2.5, 2.0),
        (1, 100, 10.0, 1.0),
    ] {
        let x = random(b * n, 2.0, &mut rng);
        let g = random(b * n, 1.0, &mut rng);
        let gt = tensor(&g, [b, n], &device);
        let xt = tensor(&x, [b, n], &device).require_grad();
        let loss = (lml(xt.clone(), k, tau).unwrap() * gt.clone()).sum();
        let grads = loss.backward();
        let auto = to_vec(xt.grad(&grads).unwrap());
        let fd = fd_grad(&x, 1e-6, |xv| {
            let y = lml(
                tensor(xv, [b, n], &device.clone().without_autodiff()),
                k,
                tau,
            )
            .unwrap();
            to_vec(y).iter().zip(&g).map(|(a, b)| a * b).sum()
        });
        let err = rel_err(&auto, &fd);
        eprintln!("LML b={b} n={n} k={k} tau={tau}: relative error {err:.2e}");
        assert!(
            err <= 1e-6,
            "LML b={b} n={n} k={k} tau={tau}: relative error {err:e}"
        );
    }
}

#[test]
fn lml_rows_sum_to_k_in_f64() {
    let device = device().without_autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for &(n, k, tau) in &[
        (100, 10.0, 1.0),
        (1000, 10.0, 1.0),
        (50, 1.0, 0.01),
        (7, 6.0, 5.0),
        (30, 2.5, 0.1),
    ] {
        let x = random(4 * n, 3.0, &mut rng);
        let (y, stats) = lml_with_stats(tensor(&x, [4, n], &device), k, tau).unwrap();
        for row in to_vec(y).chunks(n) {
            let s: f64 = row.iter().sum();
            assert!((s - k).abs() <= 1e-10 * k, "n={n} k={k} tau={tau}: sum {s}");
        }
        assert!(stats.max_residual <= 1e-10 * k);
    }
}

/// f(x) = sum_j a_j (x_j - theta_j)^2 + 0.3 sin(3 x_j): smooth, with parameters theta.
fn objective(theta: Tensor<2>, a: Tensor<2>) -> impl FnMut(Tensor<3>) -> Tensor<2> {
    move |x: Tensor<3>| {
        let th = theta.clone().unsqueeze_dim::<3>(1);
        let aa = a.clone().unsqueeze_dim::<3>(1);
        let quad = (x.clone() - th).square() * aa;
        let wiggle = x.mul_scalar(3.0).sin().mul_scalar(0.3);
        (quad + wiggle).sum_dim(2).squeeze_dim::<2>(2)
    }
}

#[test]
fn dcem_solution_gradient_matches_finite_differences() {
    let (b, nx) = (2, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let theta = random(b * nx, 1.0, &mut rng);
    let a: Vec<f64> = (0..b * nx).map(|i| 0.5 + 0.25 * (i % 3) as f64).collect();
    let c = random(b * nx, 1.0, &mut rng);
    // The last setting has (inactive) bounds, which takes the solver's clamped-sample update path.
    for (normalize, tau, bound) in [
        (true, 1.0, None),
        (false, 0.5, None),
        (true, 0.2, None),
        (true, 1.0, Some(50.0)),
    ] {
        let cfg = CemConfig {
            n_sample: 30,
            n_elite: 6,
            n_iter: 10,
            tau,
            normalize,
            iter_eps: 0.0,
            init_sigma: 1.5,
            lb: bound.map(|b: f64| -b),
            ub: bound,
            ..Default::default()
        };
        let solver = Cem::new(cfg).unwrap();
        let solve = |theta_t: Tensor<2>, dev: &Device| {
            let mut noise = ChaCha8Rng::seed_from_u64(42);
            let f = objective(theta_t, tensor(&a, [b, nx], dev));
            solver
                .solve(f, CemInit::scalar(b, nx, 0.0, 1.5, dev), &mut noise)
                .unwrap()
                .mu
        };
        let label = format!("DCEM normalize={normalize} tau={tau} bounds={bound:?}");
        check_solution_gradient(&label, &theta, &c, [b, nx], solve);
    }
}

/// The gradient of `sum(c * solve(theta))` with respect to `theta`, autodiff against central
/// finite differences on the plain device; `solve` builds the solution on the given device.
fn check_solution_gradient(
    label: &str,
    theta: &[f64],
    c: &[f64],
    shape: [usize; 2],
    solve: impl Fn(Tensor<2>, &Device) -> Tensor<2>,
) {
    let device = device();
    let plain = device.clone().without_autodiff();
    let theta_t = tensor(theta, shape, &device).require_grad();
    let mu = solve(theta_t.clone(), &device);
    let loss = (mu * tensor(c, shape, &device)).sum();
    let grads = loss.backward();
    let auto = to_vec(theta_t.grad(&grads).unwrap());
    let fd = fd_grad(theta, 1e-6, |th| {
        let mu = to_vec(solve(tensor(th, shape, &plain), &plain));
        mu.iter().zip(c).map(|(m, c)| m * c).sum()
    });
    let err = rel_err(&auto, &fd);
    eprintln!("{label}: relative error {err:.2e}");
    assert!(
        err <= 1e-6,
        "{label}: relative error {err:e}\n{auto:?}\n{fd:?}"
    );
}

#[test]
fn unrolled_gd_gradient_matches_finite_differences() {
    let device = device();
    let plain = device.clone().without_autodiff();
    let theta = [0.7, -1.2, 0.4];
    // f(y) = sum (y - theta)^2 + 0.5 sin(2y): grad = 2 (y - theta) + cos(2y).
    let run = |th: Tensor<2>, dev: &Device| {
        let grad =
            |y: Tensor<2>| (y.clone() - th.clone()).mul_scalar(2.0) + y.mul_scalar(2.0).cos();
        let y0 = Tensor::<2>::zeros([1, 3], dev);
        unrolled_gd(&GdConfig::default(), grad, y0)
            .unwrap()
            .pop()
            .unwrap()
    };
    let th = tensor(&theta, [1, 3], &device).require_grad();
    let loss = run(th.clone(), &device).square().sum();
    let auto = to_vec(th.grad(&loss.backward()).unwrap());
    let fd = fd_grad(&theta, 1e-6, |t| {
        to_vec(run(tensor(t, [1, 3], &plain), &plain))
            .iter()
            .map(|v| v * v)
            .sum()
    });
    let err = rel_err(&auto, &fd);
    eprintln!("unrolled GD: relative error {err:.2e}");
    assert!(err <= 1e-6, "unrolled GD: relative error {err:e}");
}

/// A small Softplus MLP `3-5-4-1` with weights drawn in f64.
fn small_mlp(act: dcem::nn::Activation, device: &Device) -> dcem::nn::Mlp {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    dcem::nn::Mlp::new(&[3, 5, 4, 1], act, device, &mut rng).unwrap()
}

#[test]
fn mlp_input_grad_matches_finite_differences() {
    use dcem::nn::Activation;
    let device = device();
    let plain = device.clone().without_autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = random(6, 1.5, &mut rng);
    for act in [Activation::Softplus, Activation::Tanh, Activation::Elu] {
        let net = small_mlp(act, &plain);
        let auto = to_vec(net.input_grad(tensor(&x, [2, 3], &plain), 0..3).unwrap());
        let fd = fd_grad(&x, 1e-6, |v| {
            to_vec(net.forward(tensor(v, [2, 3], &plain))).iter().sum()
        });
        let err = rel_err(&auto, &fd);
        eprintln!("{act:?} input grad: relative error {err:.2e}");
        assert!(err <= 1e-7, "{act:?} input grad: relative error {err:e}");
        // A column range gives those columns only.
        let part = to_vec(net.input_grad(tensor(&x, [2, 3], &plain), 1..2).unwrap());
        assert!((part[0] - auto[1]).abs() < 1e-12 && (part[1] - auto[4]).abs() < 1e-12);
    }
}

/// The second-order path that trains an energy network through unrolled GD: the loss on
/// `y_T` (GD on `E(x, .)` with `Mlp::input_grad`) differentiated with respect to the weights.
#[test]
fn unrolled_gd_through_mlp_energy_matches_finite_differences() {
    use dcem::nn::Activation;
    let device = device();
    let plain = device.clone().without_autodiff();
    let base = small_mlp(Activation::Softplus, &device);
    let x = tensor(&[0.3, -0.8], [2, 1], &device);
    let target = [0.5, -0.2];
    // Energy input [x, y1, y2]: y has two columns so the gradient has two rows to check.
    let run = |net: &dcem::nn::Mlp, x: Tensor<2>, dev: &Device| {
        let grad = |y: Tensor<2>| {
            net.input_grad(Tensor::cat(vec![x.clone(), y], 1), 1..3)
                .unwrap()
        };
        let y0 = Tensor::<2>::zeros([2, 2], dev);
        let cfg = GdConfig {
            steps: 5,
            lr: 0.3,
            ..GdConfig::default()
        };
        unrolled_gd(&cfg, grad, y0).unwrap().pop().unwrap()
    };
    let loss_of = |y: Tensor<2>| {
        let dev = y.device();
        (y - tensor(&[target[0], target[1], target[1], target[0]], [2, 2], &dev))
            .square()
            .sum()
    };
    // Check the gradient with respect to the second layer's weight.
    let w1 = to_vec(base.layers[1].weight.clone());
    let mut net = base.clone();
    net.layers[1].weight = net.layers[1].weight.clone().require_grad();
    let loss = loss_of(run(&net, x.clone(), &device));
    let auto = to_vec(net.layers[1].weight.grad(&loss.backward()).unwrap());
    let plain_net = {
        let mut n = base.detached();
        for l in &mut n.layers {
            l.weight = tensor(
                &to_vec(l.weight.clone()),
                [l.weight.dims()[0], l.weight.dims()[1]],
                &plain,
            );
            l.bias = tensor(&to_vec(l.bias.clone()), [1, l.bias.dims()[1]], &plain);
        }
        n
    };
    let xp = tensor(&[0.3, -0.8], [2, 1], &plain);
    let fd = fd_grad(&w1, 1e-6, |w| {
        let mut n = plain_net.clone();
        n.layers[1].weight = tensor(w, [5, 4], &plain);
        to_vec(loss_of(run(&n, xp.clone(), &plain)))[0]
    });
    let err = rel_err(&auto, &fd);
    eprintln!("unrolled GD through an MLP energy: relative error {err:.2e}");
    assert!(
        err <= 1e-6,
        "unrolled GD through an MLP energy: relative error {err:e}"
    );
}

fn small_rssm_config(symlog: bool, overshoot: usize) -> dcem::nn::RssmConfig {
    dcem::nn::RssmConfig {
        deter: 4,
        stoch: 3,
        hidden: 5,
        free_nats: 0.0,
        symlog,
        overshoot,
        overshoot_scale: 0.7,
        ..Default::default()
    }
}

fn small_rssm(device: &Device, rng: &mut ChaCha8Rng, symlog: bool) -> dcem::nn::Rssm {
    dcem::nn::Rssm::new(small_rssm_config(symlog, 0), 2, 1, device, rng).unwrap()
}

#[test]
fn gru_cell_gradient_matches_finite_differences() {
    let device = device();
    let plain = device.clone().without_autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let model = small_rssm(&device, &mut rng, false);
    let (n, d, hd) = (3, 4, 5);
    let h = random(n * d, 1.0, &mut rng);
    let x = random(n * hd, 1.0, &mut rng);
    let w = random(n * d, 1.0, &mut rng);
    let wt = tensor(&w, [n, d], &device);
    // With respect to the state, the input and the fused gate weight.
    let ht = tensor(&h, [n, d], &device).require_grad();
    let xt = tensor(&x, [n, hd], &device).require_grad();
    let mut tracked = model.clone();
    let gate_w = tracked.gru.layers[0].weight.clone().require_grad();
    tracked.gru.layers[0].weight = gate_w.clone();
    let loss = (tracked.gru_cell(ht.clone(), xt.clone()) * wt).sum();
    let grads = loss.backward();
    let weighted = |m: &dcem::nn::Rssm, hv: &[f64], xv: &[f64]| -> f64 {
        let out = m.gru_cell(tensor(hv, [n, d], &plain), tensor(xv, [n, hd], &plain));
        to_vec(out).iter().zip(&w).map(|(a, b)| a * b).sum()
    };
    let mut plain_model = model.clone();
    plain_model
        .set_params(
            model
                .params()
                .into_iter()
                .map(|p| Tensor::from_data(p.into_data(), &plain))
                .collect(),
        )
        .unwrap();
    let fd_h = fd_grad(&h, 1e-6, |hv| weighted(&plain_model, hv, &x));
    let fd_x = fd_grad(&x, 1e-6, |xv| weighted(&plain_model, &h, xv));
    let w0 = to_vec(plain_model.gru.layers[0].weight.clone());
    let shape = plain_model.gru.layers[0].weight.dims();
    let fd_w = fd_grad(&w0, 1e-6, |wv| {
        let mut m = plain_model.clone();
        m.gru.layers[0].weight = tensor(wv, [shape[0], shape[1]], &plain);
        weighted(&m, &h, &x)
    });
    for (name, auto, fd) in [
        ("h", to_vec(ht.grad(&grads).unwrap()), fd_h),
        ("x", to_vec(xt.grad(&grads).unwrap()), fd_x),
        ("gate weight", to_vec(gate_w.grad(&grads).unwrap()), fd_w),
    ] {
        let err = rel_err(&auto, &fd);
        eprintln!("GRU cell d/d{name}: relative error {err:.2e}");
        assert!(err <= 1e-6, "GRU cell d/d{name}: relative error {err:e}");
    }
}

#[test]
fn rssm_loss_and_rollout_gradients_match_finite_differences() {
    let device = device();
    let plain = device.clone().without_autodiff();
    // The one-step bound, with symlog targets, and with the open-loop loss over 2 steps.
    for (symlog, overshoot) in [(false, 0), (true, 0), (true, 2)] {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let config = small_rssm_config(symlog, overshoot);
        let model = dcem::nn::Rssm::new(config, 2, 1, &device, &mut rng).unwrap();
        let (l, b) = (4, 2);
        let batch = |dev: &Device| dcem::nn::SequenceBatch {
            obs: tensor(
                &random(l * b * 2, 3.0, &mut ChaCha8Rng::seed_from_u64(1)),
                [l * b, 2],
                dev,
            ),
            actions: tensor(
                &random(l * b, 1.0, &mut ChaCha8Rng::seed_from_u64(2)),
                [l * b, 1],
                dev,
            ),
            rewards: tensor(
                &random(l * b, 2.0, &mut ChaCha8Rng::seed_from_u64(3)),
                [l * b, 1],
                dev,
            ),
            noise: tensor(
                &random(l * b * 3, 1.0, &mut ChaCha8Rng::seed_from_u64(4)),
                [l * b, 3],
                dev,
            ),
            length: l,
            batch: b,
        };
        // The variational bound with respect to the posterior's first layer and the GRU gates.
        let tracked = model.clone().require_grad();
        let loss = tracked.loss(&batch(&device)).unwrap().total;
        let grads = loss.backward();
        let to_plain = |m: &dcem::nn::Rssm| {
            let mut p = m.clone();
            p.set_params(
                m.params()
                    .into_iter()
                    .map(|t| Tensor::from_data(t.into_data(), &plain))
                    .collect(),
            )
            .unwrap();
            p
        };
        let base = to_plain(&model);
        for (which, auto) in [
            ("posterior", tracked.posterior.layers[0].weight.grad(&grads)),
            ("gru", tracked.gru.layers[0].weight.grad(&grads)),
            ("prior", tracked.prior.layers[0].weight.grad(&grads)),
        ] {
            let get = |m: &dcem::nn::Rssm| match which {
                "posterior" => m.posterior.layers[0].weight.clone(),
                "gru" => m.gru.layers[0].weight.clone(),
                _ => m.prior.layers[0].weight.clone(),
            };
            let w0 = to_vec(get(&base));
            let shape = get(&base).dims();
            let fd = fd_grad(&w0, 1e-6, |wv| {
                let mut m = base.clone();
                let t = tensor(wv, [shape[0], shape[1]], &plain);
                match which {
                    "posterior" => m.posterior.layers[0].weight = t,
                    "gru" => m.gru.layers[0].weight = t,
                    _ => m.prior.layers[0].weight = t,
                }
                to_vec(m.loss(&batch(&plain)).unwrap().total)[0]
            });
            let err = rel_err(&to_vec(auto.unwrap()), &fd);
            eprintln!(
                "RSSM loss (symlog {symlog}, overshoot {overshoot}) d/d{which}: relative error \
                 {err:.2e}"
            );
            assert!(err <= 1e-6, "RSSM loss d/d{which}: relative error {err:e}");
        }
        // The imagined cost with respect to the actions (what planning differentiates).
        let (n, hz) = (2, 3);
        let s0 = random(n * 7, 0.5, &mut rng);
        let a0 = random(n * hz, 1.0, &mut rng);
        let at =
            Tensor::<3>::from_data(TensorData::new(a0.clone(), [n, hz, 1]), &device).require_grad();
        let cost = dcem::model::Model::cost(&model, tensor(&s0, [n, 7], &device), at.clone())
            .unwrap()
            .sum();
        let grads = cost.backward();
        let fd = fd_grad(&a0, 1e-6, |av| {
            let a = Tensor::<3>::from_data(TensorData::new(av.to_vec(), [n, hz, 1]), &plain);
            to_vec(dcem::model::Model::cost(&base, tensor(&s0, [n, 7], &plain), a).unwrap())
                .iter()
                .sum()
        });
        let err = rel_err(&to_vec(at.grad(&grads).unwrap()), &fd);
        eprintln!("RSSM imagined cost (symlog {symlog}) d/dactions: relative error {err:.2e}");
        assert!(
            err <= 1e-6,
            "RSSM rollout d/dactions: relative error {err:e}"
        );
    }
}

#[path = "gradcheck_f64/icem.rs"]
mod icem;

#[path = "gradcheck_f64/rssm_host.rs"]
mod rssm_host;

#[path = "gradcheck_f64/ppo_dcem.rs"]
mod ppo_dcem;

#[path = "gradcheck_f64/ppo_loss.rs"]
mod ppo_loss;
