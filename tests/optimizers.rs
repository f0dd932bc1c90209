//! L-BFGS against Adam on the real style objective: at 64², from the same
//! start and with the same number of evaluations, L-BFGS must end lower.

mod support;

use styletransfer::run::{default_adam, default_lbfgs};
use styletransfer::{Flow, LiveWeights, Optimizer, RunOptions, StyleImage, StyleSet, Weights};

#[test]
fn lbfgs_ends_lower_than_adam_at_equal_evaluations() {
    let engine = support::cpu_engine();
    let content = support::pattern(64, 64, 0.0);
    let style = support::pattern(64, 64, 2.5);
    let mut final_losses = Vec::new();
    for optimizer in [Optimizer::Lbfgs(default_lbfgs()), Optimizer::Adam(default_adam())] {
        let mut styles = StyleSet::new(vec![StyleImage { image: style.clone(), weight: 1.0 }]).unwrap();
        let options = RunOptions { iterations: 40, scales: Some(1), optimizer, ..RunOptions::default() };
        let weights = LiveWeights::new(Weights::defaults(options.normalization)).unwrap();
        let mut evaluations = 0;
        let out = engine
            .run(&content, &mut styles, &options, &weights, &mut |_| {
                evaluations += 1;
                Flow::Continue
            })
            .unwrap();
        assert_eq!(evaluations, 40, "{optimizer:?} used another number of evaluations");
        println!("{optimizer:?}: final loss {:?}", out.report.loss);
        final_losses.push(out.report.loss.total);
    }
    assert!(final_losses[0] < final_losses[1], "L-BFGS {} should end below Adam {}", final_losses[0], final_losses[1]);
}
