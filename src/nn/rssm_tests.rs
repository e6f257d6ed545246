//! Unit tests of the RSSM.
use super::*;
use rand::SeedableRng;

#[test]
fn host_gating_equals_the_tensor_ops() {
    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    // The autodiff device takes the tensor-op path (the host path has no gradient).
    assert!(ad.is_autodiff() && !plain.is_autodiff());
    let cfg = RssmConfig {
        deter: 16,
        stoch: 4,
        hidden: 12,
        ..Default::default()
    };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(0);
    let m = Rssm::new(cfg, 3, 2, &plain, &mut rng).unwrap();
    let mut m_ad = m.clone();
    m_ad.set_params(
        m.params()
            .into_iter()
            .map(|p| Tensor::from_data(p.into_data(), &ad))
            .collect(),
    )
    .unwrap();
    let states = normal_noise(7, 20, &plain, &mut rng).unwrap();
    let actions = normal_noise(7, 10, &plain, &mut rng)
        .unwrap()
        .reshape([7, 5, 2]);
    let fused = crate::nn::to_f64_vec(m.cost(states.clone(), actions.clone()).unwrap()).unwrap();
    let ops = crate::nn::to_f64_vec(
        m_ad.cost(
            Tensor::from_data(states.into_data(), &ad),
            Tensor::from_data(actions.into_data(), &ad),
        )
        .unwrap(),
    )
    .unwrap();
    for (a, b) in fused.iter().zip(&ops) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}
