"""Rules on hand-made probes with known answers: every number is chosen, none is trained."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nndoctor.doctor.codes import CODES
from nndoctor.doctor.ranking import rank
from nndoctor.doctor.rules import curve, data, gradients, run_rules, setup, units
from nndoctor.doctor.schema import Context, DataStats, LayerSpec, LayerTrace, LossSpec, Probes


def trace(
    out: int = 3,
    inp: int = 2,
    activation: str = "sigmoid",
    m: int = 10,
    W: np.ndarray | None = None,
    b: np.ndarray | None = None,
    W_init: np.ndarray | None = None,
    **series: np.ndarray,
) -> LayerTrace:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(out, inp)) if W is None else W
    b = np.zeros(out) if b is None else b
    defaults = {
        "weight_norm": np.ones(m),
        "grad_norm": np.full(m, 0.1),
        "update_ratio": np.full(m, 1e-3),
        "frac_saturated": np.zeros(m),
        "frac_dead": np.zeros(m),
        "act_rank": np.full(m, float(out)),
    }
    defaults.update(series)
    return LayerTrace(
        name="0",
        in_features=inp,
        out_features=out,
        activation=activation,
        W_init=W.copy() if W_init is None else W_init,
        b_init=b.copy(),
        W_final=W,
        b_final=b,
        dead_units=np.zeros(out, dtype=bool),
        unit_saturation=np.zeros(out),
        **defaults,
    )


def probes(
    layers: list[LayerTrace] | None = None,
    epoch_loss: np.ndarray | None = None,
    P: np.ndarray | None = None,
    T: np.ndarray | None = None,
    diverged: dict | None = None,
) -> Probes:
    layers = [trace(), trace(1, 3, "identity")] if layers is None else layers
    for i, t in enumerate(layers):
        t.name = str(i)
    epoch_loss = np.linspace(1.0, 0.1, 50) if epoch_loss is None else epoch_loss
    rng = np.random.default_rng(1)
    T = rng.normal(size=(20, 1)) if T is None else T
    P = T.copy() if P is None else P
    m = len(layers[0].grad_norm)
    return Probes(
        steps=np.arange(m),
        step_loss=np.repeat(epoch_loss, 2),
        epoch_loss=epoch_loss,
        layers=layers,
        output_std=np.ones(m),
        target_std=float(T.std(axis=0).mean()),
        probe_output=P,
        probe_target=T,
        diverged=diverged,
        steps_per_epoch=2,
        epochs=len(epoch_loss),
        batch_size=10,
        probe_every=1,
    )


def context(
    kinds: tuple[str, ...] = ("dense", "sigmoid", "dense"),
    widths: tuple[int, ...] = (3, 1),
    loss: str = "mse",
    task: str = "regression",
    X: np.ndarray | None = None,
    Y: np.ndarray | None = None,
    bounds: dict | None = None,
    lr: float = 0.1,
) -> Context:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 2)) if X is None else X
    Y = rng.normal(size=(50, 1)) if Y is None else Y
    it = iter(widths)
    specs = [
        LayerSpec("dense", None, next(it), "xavier_uniform") if k == "dense" else LayerSpec(k)
        for k in kinds
    ]
    Y2 = Y.reshape(len(Y), -1)
    counts = np.bincount(Y.astype(int).ravel()) if task in ("classification", "binary") else None
    data = DataStats(
        n_samples=len(X),
        x_std=X.std(axis=0),
        x_mean=X.mean(axis=0),
        x_absmax=float(np.abs(X).max()),
        y_min=Y2.min(axis=0),
        y_max=Y2.max(axis=0),
        y_std=Y2.std(axis=0),
        y_integer=bool(np.all(np.round(Y2) == Y2)),
        class_counts=counts,
    )
    return Context(
        layers=specs,
        loss=LossSpec(loss),
        optimizer={"name": "SGD", "lr": lr},
        task=task,
        data=data,
        bounds={"baseline": 1.0} if bounds is None else bounds,
    )


def test_symmetric_units_names_the_identical_units_and_the_constant_init():
    W = np.array([[0.3, -0.2], [0.5, 0.1], [0.3, -0.2], [0.5, 0.1]])
    b = np.array([0.1, 0.0, 0.1, 0.0])
    layer = trace(4, 2, W=W, b=b, W_init=np.zeros((4, 2)))
    layer.b_init = np.zeros(4)
    [f] = units.symmetric_units(probes([layer, trace(1, 4, "identity")]), context())
    assert f.evidence["groups"] == [[0, 2], [1, 3]]
    assert f.evidence["effective_units"] == 2
    # all four were equal at init and split into two pairs: only rounding can do that, so
    # each pair still counts as identical from the (constant) start
    assert f.evidence["identical_at_init"] and f.evidence["constant_init"]
    zero = trace(3, 2, W=np.zeros((3, 2)))
    [g] = units.symmetric_units(probes([zero, trace(1, 3, "identity")]), context())
    assert g.evidence["groups"] == [[0, 1, 2]]
    assert g.evidence["constant_init"] and g.evidence["effective_units"] == 1
    assert "constant init" in g.why


def test_symmetric_units_ignores_distinct_rows_and_the_output_layer():
    W = np.array([[1.0, 2.0], [1.0, 2.0 + 1e-6], [3.0, 1.0]])
    assert units.identical_groups(W, np.zeros(3)) == []
    huge = np.array([[1e74, 2e74], [1.5e74, 2e74]])  # large rows differ far beyond round-off
    assert units.identical_groups(huge, np.zeros(2)) == []
    same_out = trace(2, 3, "identity", W=np.ones((2, 3)))
    assert units.symmetric_units(probes([trace(), same_out]), context()) == []


def test_dead_units_threshold_and_unit_names():
    relu = trace(10, 2, "relu")
    relu.dead_units = np.array([True] * 9 + [False])
    relu.b_final = np.array([-5.0] * 9 + [0.5])
    [f] = units.dead_units(probes([relu, trace(1, 10, "identity")]), context())
    assert f.severity == "error" and f.evidence["dead_units"] == list(range(9))
    assert f.evidence["mean_bias_dead"] == -5.0
    relu.dead_units = np.array([True] * 4 + [False] * 6)  # 40%: below DEAD_WARNING
    assert units.dead_units(probes([relu, trace(1, 10, "identity")]), context()) == []


def test_saturated_units_uses_late_share():
    sat = trace(4, 2, "tanh", frac_saturated=np.r_[np.zeros(5), np.full(5, 0.95)])
    [f] = units.saturated_units(probes([sat, trace(1, 4, "identity")]), context())
    assert f.severity == "error" and f.evidence["saturated_share"] == pytest.approx(0.95)


def test_vanishing_gradients_ratio_of_rms_at_first_probe():
    # RMS = norm / sqrt(size): first 1e-6 / sqrt(16), last 1.0 / sqrt(4) -> ratio 5e-7
    first = trace(8, 2, grad_norm=np.full(10, 1e-6))
    last = trace(1, 4, "identity", grad_norm=np.ones(10))
    [f] = gradients.vanishing_gradients(probes([first, last]), context())
    assert f.evidence["first_to_last_rms_ratio"] == pytest.approx(1e-6 / 4 / (1.0 / 2))
    assert f.severity == "error"


def test_vanishing_gradients_compares_convolutions_apart_from_linear_layers():
    import dataclasses

    # a decoder: Linear(2 -> 4096) projection, then three convolutions. Per weight the
    # projection's RMS gradient is 1e-5 / sqrt(8192) over the last conv's 1 / 4, but a
    # conv weight's gradient sums over its feature map: only the convolutions compare
    linear = trace(4096, 2, "identity", grad_norm=np.full(10, 1e-5))
    convs = [trace(16, 144, "relu", grad_norm=np.full(10, 0.5)) for _ in range(2)]
    out = trace(1, 16, "identity", grad_norm=np.ones(10))
    p = probes([linear, *convs, out])
    specs = [LayerSpec("dense", t.in_features, t.out_features, None, t.name, i > 0)
             for i, t in enumerate(p.layers)]  # fmt: skip
    mixed = dataclasses.replace(context(), layers=specs)
    assert gradients.vanishing_gradients(p, mixed) == []
    # the conv weights 1e-5 of the last one's at the first conv: that kind's ratio is judged
    convs[0].grad_norm = np.full(10, 1e-5 * 48)  # RMS 1e-5 over the last's 1 / 4
    [f] = gradients.vanishing_gradients(p, mixed)
    assert f.evidence["first_to_last_rms_ratio"] == pytest.approx(1e-5 / (1.0 / 4))
    # all of one kind (no conv flag): the projection's ratio is read, as before
    same = dataclasses.replace(mixed, layers=[dataclasses.replace(s, conv=False) for s in specs])
    [f] = gradients.vanishing_gradients(p, same)
    projection_rms = 1e-5 / math.sqrt(8192)
    assert f.evidence["first_to_last_rms_ratio"] == pytest.approx(projection_rms / (1.0 / 4))


def test_exploding_gradients_counts_growth_from_the_first_gradient_that_is_felt():
    # a generator whose first gradient is 1e-12 of its weights, then about 2x them: healthy
    felt = np.r_[1e-12, np.full(9, 2.0)]
    layers = [trace(4, 2, "relu", grad_norm=felt * 4.0, weight_norm=np.full(10, 4.0)),
              trace(1, 4, "identity", grad_norm=felt, weight_norm=np.ones(10))]  # fmt: skip
    assert gradients.exploding_gradients(probes(layers), context()) == []
    # growth 1e5-fold after the gradient is felt (1e-4 of the weights at first) still counts
    grows = np.r_[1e-12, 1e-4, np.full(8, 10.0)]
    layers[0].grad_norm, layers[1].grad_norm = grows * 4.0, grows
    [f] = gradients.exploding_gradients(probes(layers), context())
    assert f.evidence["gradient_growth"] == pytest.approx(1e5)


def test_exploding_gradients_at_init_blames_init_not_lr():
    # the second layer's pre-activations are 50 times the first's: the init amplifies
    big = trace(
        4, 2, "relu", grad_norm=np.full(10, 1e6), weight_norm=np.full(10, 10.0), z_rms=np.ones(10)
    )
    out = trace(1, 4, "identity", z_rms=np.full(10, 50.0))
    p = probes([big, out], epoch_loss=np.geomspace(1, 1e30, 50))
    [f] = gradients.exploding_gradients(p, context())
    assert f.evidence["initial_grad_to_weight"] == pytest.approx(1e5)
    assert f.evidence["forward_growth_at_init"] == pytest.approx(50.0)
    assert f.severity == "error" and "at initialisation" in f.title
    assert gradients.lr_too_high(p, context()) == []


def test_huge_initial_gradient_with_sane_activations_is_not_the_init():
    # the same gradients, but activations of the same size in both layers: the loss's scale
    # (a sum over a large batch, targets in the thousands) makes the gradient large
    big = trace(
        4, 2, "relu", grad_norm=np.full(10, 1e6), weight_norm=np.full(10, 10.0), z_rms=np.ones(10)
    )
    out = trace(1, 4, "identity", z_rms=np.full(10, 2.0))
    p = probes([big, out], epoch_loss=np.geomspace(1, 1e30, 50))
    assert gradients.exploding_gradients(p, context()) == []
    [g] = gradients.lr_too_high(p, context())
    assert g.evidence["loss_grew"]


def test_lr_too_high_when_huge_first_steps_kill_relu_units():
    relu = trace(4, 2, "relu", update_ratio=np.r_[0.5, np.full(9, 1e-3)], frac_dead=np.zeros(10))
    relu.dead_units = np.array([True, True, True, False])
    p = probes([relu, trace(1, 4, "identity")])
    [f] = gradients.lr_too_high(p, context())
    assert f.evidence["units_died"] == pytest.approx(0.75)
    # the same end state with ordinary steps, or with the units dead from the start: not lr
    calm = trace(4, 2, "relu", frac_dead=np.zeros(10))
    calm.dead_units = relu.dead_units
    assert gradients.lr_too_high(probes([calm, trace(1, 4, "identity")]), context()) == []
    born_dead = trace(4, 2, "relu", update_ratio=relu.update_ratio, frac_dead=np.full(10, 0.75))
    born_dead.dead_units = relu.dead_units
    assert gradients.lr_too_high(probes([born_dead, trace(1, 4, "identity")]), context()) == []


def test_lr_too_high_silent_when_the_loss_was_not_finite_before_any_update():
    p = probes([trace(m=0), trace(1, 3, "identity", m=0)], diverged={"step": 0, "epoch": 0})
    assert gradients.lr_too_high(p, context(lr=5.0)) == []


def test_lr_too_high_on_divergence_and_on_spikes():
    # a divergence after the weights grew 100-fold; without the growth it is not the rate's
    grown = [trace(weight_norm=np.geomspace(1, 100, 10)), trace(1, 3, "identity")]
    p = probes(grown, diverged={"step": 7, "epoch": 3, "layer": "layer 2 (Dense, output)"})
    [f] = gradients.lr_too_high(p, context(lr=5.0))
    assert f.severity == "error" and "step 7" in f.title and "0.5" in f.fix
    calm = probes(diverged={"step": 7, "epoch": 3, "layer": "layer 2 (Dense, output)"})
    assert gradients.lr_too_high(calm, context(lr=5.0)) == []
    spiky = probes(epoch_loss=np.r_[1.0, 50.0, np.full(48, 0.5)])
    [g] = gradients.lr_too_high(spiky, context())
    assert g.evidence["loss_grew"]
    assert gradients.lr_too_high(probes(), context()) == []


def test_lr_too_high_reads_no_rise_of_an_adversarial_loss():
    from nndoctor.doctor.schema import LoopFacts

    # a discriminator's loss that doubles as its generator improves, small calm steps
    rising = probes(epoch_loss=np.linspace(0.67, 1.5, 50))
    [f] = gradients.lr_too_high(rising, context())
    assert f.evidence["loss_grew"]
    rising.loop = LoopFacts(adversarial=True)
    assert gradients.lr_too_high(rising, context()) == []
    # a divergence after the weights grew 100-fold is the rate's, adversarial or not
    grown = [trace(weight_norm=np.geomspace(1, 100, 10)), trace(1, 3, "identity")]
    p = probes(grown, diverged={"step": 7, "epoch": 3, "layer": "layer 2 (Dense, output)"})
    p.loop = LoopFacts(adversarial=True)
    [g] = gradients.lr_too_high(p, context(lr=5.0))
    assert g.severity == "error"


def test_lr_too_high_on_a_divergence_inside_the_first_epoch():
    # no epoch ended finite (the first epoch's mean is NaN): the growth before the NaN is read
    # off the steps, and the missing epoch curve must not break the rule
    grown = [trace(weight_norm=np.geomspace(1, 100, 10)), trace(1, 3, "identity")]
    p = probes(grown, epoch_loss=np.array([np.nan]), diverged={"step": 2, "epoch": 0})
    p.step_loss = np.array([1.0, 40.0, np.nan])
    [f] = gradients.lr_too_high(p, context(lr=5.0))
    assert f.severity == "error" and "step 2" in f.title and "rose from 1 to 40" in f.title
    assert not f.evidence["loss_grew"]  # no finite epoch to have grown from


def test_lr_too_low_needs_small_updates_with_normal_gradients():
    slow = [
        trace(update_ratio=np.full(10, 1e-7)),
        trace(1, 3, "identity", update_ratio=np.full(10, 1e-7), grad_norm=np.full(10, 0.5)),
    ]
    flat = np.linspace(1.0, 0.99, 50)
    [f] = gradients.lr_too_low(probes(slow, epoch_loss=flat), context(lr=1e-6))
    assert f.evidence["median_update_ratio"] == pytest.approx(1e-7)
    # the power of ten that brings 1e-7 to the healthy 1e-3 is 1e4, capped at 1e3
    assert f.evidence["suggested_lr"] == pytest.approx(1e-3)
    assert "try 0.001" in f.fix
    # zero gradients (dead units) make updates small too, but that is not the learning rate
    dead = [
        trace(update_ratio=np.zeros(10)),
        trace(1, 3, "identity", update_ratio=np.zeros(10), grad_norm=np.zeros(10)),
    ]
    assert gradients.lr_too_low(probes(dead, epoch_loss=flat), context()) == []


def test_lr_too_low_when_no_layer_moved_over_the_whole_run():
    # per-step ratios near 1e-4 (not below the per-step limit for the last layer), but over
    # the run no layer's weights changed by more than 5%, and the loss stayed at 2x baseline
    rng = np.random.default_rng(3)
    layers = [trace(update_ratio=np.full(10, 2e-5)), trace(1, 3, "identity")]
    for t in layers:
        t.update_ratio = np.full(10, 2.5e-4) if t.out_features == 1 else t.update_ratio
        t.W_final = t.W_init + 0.05 * np.linalg.norm(t.W_init) * _unit(rng, t.W_init.shape)
    stuck_curve = np.linspace(2.5, 2.0, 50)
    [f] = gradients.lr_too_low(probes(layers, epoch_loss=stuck_curve), context())
    assert f.evidence["total_weight_change"] == pytest.approx(0.05)
    assert f.severity == "error"
    # the same curve when the targets are unpredictable: the loss has nowhere to go
    pred = {"has_signal": False}
    ctx = context(bounds={"baseline": 1.0, "predictability": pred})
    assert gradients.lr_too_low(probes(layers, epoch_loss=stuck_curve), ctx) == []
    # weights that moved by half their norm: the steps were large enough
    for t in layers:
        t.W_final = t.W_init + 0.5 * np.linalg.norm(t.W_init) * _unit(rng, t.W_init.shape)
    assert gradients.lr_too_low(probes(layers, epoch_loss=stuck_curve), context()) == []


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.normal(size=shape)
    return v / np.linalg.norm(v)


def test_constant_targets_found_for_labels_and_values_but_not_autoencoders():
    [f] = setup.constant_targets(probes(), context(Y=np.zeros(50), task="classification"))
    assert f.severity == "error" and f.evidence["target_value"] == [0.0]
    [g] = setup.constant_targets(probes(), context(Y=np.full((50, 1), 3.5)))
    assert g.evidence["target_value"] == [3.5]
    assert setup.constant_targets(probes(), context()) == []
    X = np.ones((50, 2))
    assert setup.constant_targets(probes(), context(X=X, Y=X, task="autoencoder")) == []


def test_unscaled_targets_severity_and_bounded_outputs():
    rng = np.random.default_rng(4)
    prices = 3e5 + 8e4 * rng.normal(size=(50, 1))
    stuck_curve = np.full(50, 30.0)  # 30 times the baseline of 1
    [f] = setup.unscaled_targets(probes(epoch_loss=stuck_curve), context(Y=prices))
    assert f.severity == "error"
    assert f.evidence["max_abs_target"] == pytest.approx(np.abs(prices).max())
    # trained well: only a warning (above UNSCALED_SEVERE) or a note (below it)
    assert setup.unscaled_targets(probes(), context(Y=prices))[0].severity == "warning"
    tens = 5.0 + 20.0 * rng.random((50, 1))
    assert setup.unscaled_targets(probes(), context(Y=tens))[0].severity == "info"
    # a sigmoid output cannot reach them at all: that is targets-out-of-range
    ctx = context(kinds=("dense", "tanh", "dense", "sigmoid"), Y=prices)
    assert setup.unscaled_targets(probes(epoch_loss=stuck_curve), ctx) == []
    assert setup.unscaled_targets(probes(), context(Y=rng.normal(size=(50, 1)))) == []


def test_rank_keeps_every_finding_of_a_code_found_in_two_layers():
    a = CODES["dead-units"].finding("warning", "layer 0", score=0.6)
    b = CODES["dead-units"].finding("error", "layer 1", score=0.95)
    root = CODES["lr-too-high"].finding("warning", "lr")
    ranked = rank([a, b, root])
    assert [f.title for f in ranked] == ["lr", "layer 1", "layer 0"]
    # the root is raised to the severity of the strongest consequence
    assert ranked[0].severity == "error" and ranked[0].explains == ["dead-units"]


def test_gradient_mismatch_from_gradcheck_summary():
    ctx = context()
    ctx.gradcheck = {
        "passed": False,
        "failed": ["0.W"],
        "worst": "0.W",
        "worst_index": [1, 2],
        "analytic": 0.3,
        "numeric": 1.0,
        "max_rel_error": 0.7,
    }
    [f] = gradients.gradient_mismatch(probes(), ctx)
    assert f.evidence["max_rel_error"] == 0.7 and "0.W" in f.title
    assert f.evidence["worst_index"] == [1, 2] and f.evidence["finite_difference"] == 1.0
    ctx.gradcheck["passed"] = True
    assert gradients.gradient_mismatch(probes(), ctx) == []


def test_missing_nonlinearity_finds_consecutive_dense():
    ctx = context(kinds=("dense", "identity", "dense", "dense", "sigmoid"), widths=(4, 4, 1))
    [f] = setup.missing_nonlinearity(probes(), ctx)
    assert f.evidence["consecutive_dense_pairs"] == 2 and f.evidence["whole_net_affine"] is False
    assert setup.missing_nonlinearity(probes(), context()) == []


@pytest.mark.parametrize(
    ("kinds", "fires"),
    [
        (("dense", "relu", "dense", "dense"), False),  # an embedding, then its classifier
        (("embedding", "dense", "dense"), False),
        (("dense", "dense", "dense", "sigmoid"), True),  # affine up to the output activation
        (("dense", "dense", "relu", "dense"), True),  # the pair is not the head
        (("dense", "relu", "dense", "dense", "dense"), True),  # two pairs
    ],
)
def test_a_linear_head_on_non_linear_features_is_not_a_missing_nonlinearity(kinds, fires):
    widths = (4,) * (kinds.count("dense") - 1) + (1,)
    found = setup.missing_nonlinearity(probes(), context(kinds=kinds, widths=widths))
    assert bool(found) is fires


def test_a_linear_projected_into_a_convolution_is_not_a_missing_nonlinearity():
    # a VAE's decoder: Conv-ReLU encoder, Linear latent projection, reshape, ConvTranspose
    kinds = ("dense", "relu", "dense", "dense", "relu", "dense", "tanh")
    ctx = context(kinds=kinds, widths=(8, 32, 8, 3))
    dense = [spec for spec in ctx.layers if spec.kind == "dense"]
    for spec, conv in zip(dense, (True, False, True, True), strict=True):
        spec.conv = conv
    assert setup.missing_nonlinearity(probes(), ctx) == []
    # two convolutions in a row, with no activation between, still are
    dense[1].conv = True
    [f] = setup.missing_nonlinearity(probes(), ctx)
    assert f.evidence["consecutive_dense_pairs"] == 1


@pytest.mark.parametrize(
    ("least_squares", "final", "severity"),
    [
        (0.6, 0.62, "error"),  # stuck at the linear bound, which is a real limit
        (0.6, 0.3, "warning"),  # the net beats linear: it has its nonlinearity elsewhere
        (1e-10, 3e-4, "warning"),  # a linear model fits the training set (many inputs)
    ],
)
def test_missing_nonlinearity_is_an_error_only_at_a_limiting_linear_bound(
    least_squares, final, severity
):
    skill = {"model_skill": {"5-NN": 0.9, "ridge": 0.2}}  # a nonlinear model does better
    bounds = {"baseline": 1.0, "least_squares": least_squares, "predictability": skill}
    ctx = context(kinds=("dense", "dense", "relu", "dense"), widths=(4, 4, 1), bounds=bounds)
    [f] = setup.missing_nonlinearity(probes(epoch_loss=np.linspace(1.0, final, 50)), ctx)
    assert f.severity == severity


@pytest.mark.parametrize(
    ("kinds", "widths", "loss", "Y", "case"),
    [
        (("dense",), (1,), "cross_entropy", np.zeros(50), "cross-entropy-one-output"),
        (("dense", "softmax"), (1,), "bce", np.zeros((50, 1)), "softmax-one-output"),
        (
            ("dense", "sigmoid"),
            (1,),
            "bce",
            np.full((50, 1), 3.0),
            "bce-targets-outside-unit-interval",
        ),
        (("dense",), (1,), "bce", np.zeros((50, 1)), "bce-without-sigmoid"),
        (("dense", "softmax"), (3,), "cross_entropy", np.zeros(50), "softmax-before-cross-entropy"),
    ],
)
def test_wrong_loss_for_targets_cases(kinds, widths, loss, Y, case):
    ctx = context(kinds=kinds, widths=widths, loss=loss, Y=Y, task="other")
    [f] = setup.wrong_loss_for_targets(probes(), ctx)
    assert f.evidence["case"] == case


def test_bce_targets_outside_0_1_per_pixel_are_out_of_range_unless_they_are_class_labels():
    import dataclasses

    from nndoctor.doctor.schema import TaskSpec

    def findings(T, unit="pixel"):
        ctx = context(kinds=("dense", "sigmoid"), widths=(1,), loss="bce", Y=T, task="other")
        ctx = dataclasses.replace(ctx, structure=TaskSpec(inputs="images", unit=unit))
        p = probes(T=T, P=np.full_like(T, 0.5))
        return setup.targets_out_of_range(p, ctx), setup.wrong_loss_for_targets(p, ctx)

    mask = np.r_[np.zeros(15), np.full(5, 255.0)][:, None]  # a 0/255 mask: rescale it
    [f], wrong = findings(mask)
    assert f.evidence["case"] == "bce-two-labels-outside-unit-interval" and not wrong
    assert f.evidence["share_outside"] == 0.25 and "(y - 0) / 255" in f.fix
    pixels = (np.linspace(0.0, 1.0, 20)[:, None] - 0.13) / 0.31  # normalised by mean and std
    [f], wrong = findings(pixels)
    assert f.evidence["case"] == "bce-targets-outside-unit-interval" and not wrong
    assert f.evidence["share_outside"] == pytest.approx(np.mean((pixels < 0) | (pixels > 1)))
    labels = (np.arange(20) % 3.0)[:, None]  # three classes: the loss is wrong, not the scale
    out, [f] = findings(labels)
    assert not out and f.code == "wrong-loss-for-targets" and "CrossEntropy with 3" in f.fix
    # one label per sample: {-1, 1} is a label encoding BCE does not take, as before
    out, [f] = findings(np.where(mask > 0, 1.0, -1.0), unit="sample")
    assert not out and f.evidence["case"] == "bce-two-labels-outside-unit-interval"


def test_class_imbalance_per_pixel_counts_pixels_and_needs_the_minority_lost():
    import dataclasses

    from nndoctor.doctor.context import data_stats
    from nndoctor.doctor.schema import TaskSpec

    rng = np.random.default_rng(0)
    masks = (rng.random((20, 64)) < 0.01).astype(float)  # 1% foreground pixels
    pixel = TaskSpec(inputs="images", unit="pixel", units_per_sample=64.0)
    d = data_stats(rng.normal(size=(20, 64)), masks, "binary", pixel)
    assert d.class_counts.tolist() == [int((masks == 0).sum()), int((masks == 1).sum())]
    base = context(task="binary", loss="bce", Y=np.zeros((50, 1)))
    ctx = dataclasses.replace(base, data=d, structure=pixel)
    # background predicted everywhere: collapsed onto the majority
    [f] = setup.class_imbalance(probes(T=masks, P=np.full_like(masks, 0.01)), ctx)
    assert f.severity == "error" and f.evidence["minority_found_share"] == 0.0
    assert "of the pixels" in f.title
    # a net that finds the foreground, with a few false positives, is not collapsed though it
    # predicts background for more than 98% of the pixels
    P = np.where(masks == 1, 0.9, 0.01)
    P[0, :3] = 0.9
    [f] = setup.class_imbalance(probes(T=masks, P=P), ctx)
    assert f.evidence["predicted_majority_share"] >= 0.98
    assert f.severity != "error" and f.evidence["minority_found_share"] == 1.0


def test_targets_out_of_range_share():
    T = np.r_[np.full(15, 0.5), np.full(5, 40.0)][:, None]  # 25% above a sigmoid's 1
    ctx = context(kinds=("dense", "sigmoid"), widths=(1,), Y=T)
    [f] = setup.targets_out_of_range(probes(T=T, P=np.ones_like(T)), ctx)
    assert f.evidence["share_outside"] == 0.25 and f.evidence["target_max"] == 40.0
    inside = np.full((20, 1), 0.5)
    assert (
        setup.targets_out_of_range(
            probes(T=inside), context(kinds=("dense", "sigmoid"), widths=(1,), Y=inside)
        )
        == []
    )


def test_constant_and_unscaled_inputs():
    X = np.c_[np.zeros(50), np.arange(50.0)]
    [f] = setup.constant_inputs(probes(), context(X=X))
    assert f.evidence["feature_indices"] == [0] and f.severity == "warning"
    [g] = setup.constant_inputs(probes(), context(X=np.full((50, 2), 3.0)))
    assert g.severity == "error" and g.evidence["constant_value"] == 3.0
    [h] = setup.unscaled_inputs(probes(), context(X=X * 100))
    assert h.evidence["max_abs_input"] == 4900.0
    assert setup.unscaled_inputs(probes(), context(X=X / 10)) == []


def test_class_imbalance_when_predictions_collapse_to_majority():
    Y = np.r_[np.zeros(45), np.ones(5)]
    P = np.tile([0.9, 0.1], (20, 1))  # every probe predicts class 0
    ctx = context(widths=(3, 2), loss="cross_entropy", task="classification", Y=Y)
    [f] = setup.class_imbalance(probes(P=P, T=np.eye(2)[np.zeros(20, int)]), ctx)
    assert f.severity == "error" and f.evidence["majority_share"] == 0.9


def test_curve_rules_on_known_curves():
    ctx = context(bounds={"baseline": 1.0})
    flat = np.r_[np.linspace(1.2, 0.8, 25), np.full(25, 0.8)]
    [f] = curve.loss_plateau(probes(epoch_loss=flat), ctx)
    assert f.evidence["final_loss"] == 0.8
    zigzag = 0.8 + 0.2 * (-1.0) ** np.arange(50)
    [g] = curve.oscillating_loss(probes(epoch_loss=zigzag), ctx)
    assert g.evidence["sign_flip_share"] == 1.0
    [h] = curve.loss_at_baseline(probes(epoch_loss=np.full(50, 1.01)), ctx)
    assert h.evidence["ratio"] == pytest.approx(1.01)
    assert curve.loss_at_baseline(probes(epoch_loss=np.full(50, 0.9)), ctx) == []
    T = np.linspace(-1, 1, 20)[:, None]
    [c] = curve.output_collapse(probes(P=np.full((20, 1), 0.1) + 1e-3 * T, T=T), ctx)
    assert c.evidence["ratio"] == pytest.approx(1e-3)
    d = {"step": 4, "epoch": 2, "layer": "layer 0 (Dense, weights)"}
    [e] = curve.diverged(probes(diverged=d), ctx)
    assert e.evidence["first_nonfinite"] == "layer 0 (Dense, weights)"


def test_rank_bounds_rules_on_the_closed_form_spectrum():
    # uniform data, 8 features, 100 samples: rank-k bound (8 - k) / 3 per sample
    L = np.array([(8 - k) / 3 for k in range(9)])
    evr = np.full(8, 1 / 8)
    ctx = context(
        kinds=("dense", "sigmoid", "dense", "sigmoid"),
        widths=(3, 8),
        loss="sse",
        task="autoencoder",
        bounds={
            "baseline": L[0],
            "loss_at_rank": L,
            "explained_variance_ratio": evr,
            "effective_rank": 8.0,
        },
    )
    layers = [trace(3, 8), trace(8, 3)]
    p = probes(layers, epoch_loss=np.full(50, 7 / 3 + 0.01))
    [f] = data.loss_at_lower_rank_bound(p, ctx)
    assert f.evidence["rank_1_bound"] == pytest.approx(7 / 3) and f.evidence["effective_rank"] == 1
    [g] = data.incompressible_data(p, ctx)
    assert g.evidence["explained_share"] == pytest.approx(3 / 8)
    at_width = probes(layers, epoch_loss=np.full(50, 5 / 3))
    assert data.loss_at_lower_rank_bound(at_width, ctx) == []


def test_insufficient_capacity_not_for_a_net_stuck_far_above_the_affine_loss():
    pred = {
        "has_signal": True,
        "skill": 0.95,
        "skill_std": 0.01,
        "shuffled_quantile": 0.02,
        "p_value": 0.005,
        "best_model": "3-NN",
        "model_skill": {"ridge (lambda=1)": 0.5, "3-NN": 0.95},
    }
    # the affine map reaches half the baseline; a net at the baseline has not met its capacity
    ctx = context(bounds={"baseline": 1.0, "least_squares": 0.5, "predictability": pred})
    assert data.insufficient_capacity(probes(epoch_loss=np.full(50, 1.0)), ctx) == []
    # a net at the affine loss, where 3-NN does far better, has
    [f] = data.insufficient_capacity(probes(epoch_loss=np.full(50, 0.51)), ctx)
    assert f.evidence["best_affine_loss"] == 0.5


def test_no_signal_and_insufficient_capacity():
    pred = {
        "has_signal": False,
        "skill": -0.01,
        "skill_std": 0.02,
        "shuffled_quantile": 0.03,
        "p_value": 0.4,
        "best_model": "ridge (lambda=1)",
        "model_skill": {"ridge (lambda=1)": -0.01, "3-NN": -0.05},
    }
    ctx = context(bounds={"baseline": 1.0, "predictability": pred})
    [f] = data.no_signal(probes(), ctx)
    assert f.evidence["p_value"] == 0.4
    pred = {
        **pred,
        "has_signal": True,
        "skill": 0.95,
        "best_model": "3-NN",
        "model_skill": {"ridge (lambda=1)": 0.0, "3-NN": 0.95},
    }
    ctx = context(bounds={"baseline": 1.0, "least_squares": 0.98, "predictability": pred})
    plateau = np.r_[np.linspace(1.0, 0.7, 25), np.full(25, 0.7)]
    [g] = data.insufficient_capacity(probes(epoch_loss=plateau), ctx)
    assert g.evidence["net_skill"] == pytest.approx(0.3)
    assert data.no_signal(probes(), ctx) == []


def test_run_rules_ranks_root_cause_first_and_marks_what_it_explains():
    relu = trace(4, 2, "relu", W=np.zeros((4, 2)))
    relu.dead_units = np.ones(4, dtype=bool)
    # the output layer's weights moved (by half their norm): the steps were not too small
    out = trace(1, 4, "identity")
    out.W_init = 2.0 * out.W_final
    p = probes([relu, out], epoch_loss=np.full(50, 1.0))
    findings = rank(run_rules(p, context(kinds=("dense", "relu", "dense"), widths=(4, 1))))
    causes = [f for f in findings if f.kind == "cause"]
    assert [f.code for f in causes[:2]] == ["symmetric-units", "dead-units"]
    assert "dead-units" in causes[0].explains
    assert findings == rank(findings)
    assert not math.isnan(p.final_loss)


def test_order_correlation_matches_numpy_corrcoef_per_column():
    from nndoctor.doctor.context import order_correlation

    rng = np.random.default_rng(5)
    T = np.column_stack([np.sort(rng.normal(size=200)), rng.normal(size=200), np.ones(200)])
    expected = np.mean([np.corrcoef(T[:-1, j], T[1:, j])[0, 1] for j in (0, 1)])
    assert order_correlation(T) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(order_correlation(np.ones((10, 2))))


def test_unshuffled_data_needs_order_no_shuffling_and_a_gap():
    from dataclasses import replace

    ctx = context(bounds={"baseline": 1.1})
    ctx.data.y_order_corr = 0.99
    seen = probes(epoch_loss=np.full(20, 0.07))
    gap = replace(seen, probe_loss=2.2, steps_per_epoch=450)
    [f] = data.unshuffled_data(gap, ctx)
    # 2.2 on the data, above the 1.1 baseline: worse than a constant, an error
    assert f.severity == "error" and f.evidence["loss_of_end_weights"] == 2.2
    ctx.shuffle = True
    assert data.unshuffled_data(gap, ctx) == []
    ctx.shuffle = None
    assert data.unshuffled_data(replace(gap, probe_loss=0.08), ctx) == []
    assert data.unshuffled_data(replace(gap, steps_per_epoch=1), ctx) == []
    ctx.data.y_order_corr = 0.01
    assert data.unshuffled_data(gap, ctx) == []


def _groups_by_comparing_every_pair(W, b, tol):
    """The definition, row against row, for the pruned search in ``identical_groups``."""
    rows = np.column_stack([W, b])
    finite = np.all(np.isfinite(rows), axis=1)
    rows = np.where(finite[:, None], rows, 0.0)
    size = np.max(np.abs(rows), axis=1)
    seen, groups = ~finite, []
    for i in range(len(rows)):
        if not seen[i]:
            diff = np.max(np.abs(rows - rows[i]), axis=1)
            same = np.flatnonzero((diff <= tol * np.maximum(size, size[i])) & finite)
            seen[same] = True
            if same.size > 1:
                groups.append(same.tolist())
    return groups


@pytest.mark.parametrize("seed", range(6))
def test_identical_groups_finds_what_comparing_every_pair_finds(seed):
    rng = np.random.default_rng(seed)
    units_, fan_in = 40, 7
    W = rng.normal(size=(units_, fan_in)) * rng.choice([1e-3, 1.0, 1e3], size=(units_, 1))
    b = rng.normal(size=units_)
    # distinct units (settled by their first weights), and distinct units that share them
    for tol in (1e-9, 0.3):
        assert units.identical_groups(W, b, tol) == _groups_by_comparing_every_pair(W, b, tol)
    shared = W.copy()
    shared[:, 0] = 1.0
    assert units.identical_groups(shared, b) == _groups_by_comparing_every_pair(shared, b, 1e-9)
    # copies, copies within a hair of the tolerance on either side, a zero row, a NaN row
    for k, (src, scale) in enumerate([(0, 0.0), (0, 0.5), (3, 0.99), (5, 1.01), (9, 0.3)]):
        W[20 + k] = W[src] * (1 + scale * 1e-9)
        b[20 + k] = b[src] * (1 + scale * 1e-9)
    W[30], b[30] = 0.0, 0.0
    W[31], b[31] = 0.0, 0.0
    W[32, 1] = np.nan
    for tol in (1e-9, 1e-5, 0.3):
        assert units.identical_groups(W, b, tol) == _groups_by_comparing_every_pair(W, b, tol)


def test_schedule_doubles_its_interval_until_the_next_probe_fits_the_budget():
    from nndoctor.doctor.recorder import MIN_PROBES, OPEN_START, Schedule

    def run(cost: float, probes: int = MIN_PROBES, budget: float | None = 0.02) -> Schedule:
        """Steps of 10 ms, probes at steps 0, 16, 32, ... costing ``cost`` each: each is
        finished one step later, after a window of two steps plus its cost."""
        s = Schedule(None, budget=budget)
        for j in range(probes):
            steps = OPEN_START * j + 1
            s.spend(0.02 + cost, 2, steps * 0.01 + (j + 1) * cost, steps, j + 1)
        return s

    # fewer than MIN_PROBES probes: never adapted, however costly
    assert run(1.0, MIN_PROBES - 1).every == OPEN_START
    # the probes' cost is read off the clock: the windows less two plain steps each
    assert run(0.002).probe_seconds == pytest.approx(MIN_PROBES * 0.002)
    # MIN_PROBES probes of 2 ms after 1 + 16 * (MIN_PROBES - 1) steps: the next one keeps
    # probing within 2% while (MIN_PROBES + 1) * 0.002 <= 0.02 * (run + every * 0.01)
    steps = OPEN_START * (MIN_PROBES - 1) + 1
    seconds = steps * 0.01 + MIN_PROBES * 0.002
    assert 0.02 * (seconds + OPEN_START * 0.01) >= (MIN_PROBES + 1) * 0.002
    assert run(0.002).every == OPEN_START
    # probes of 20 ms: the interval doubles until (MIN_PROBES + 1) * 0.02 fits
    seconds = steps * 0.01 + MIN_PROBES * 0.02
    need = ((MIN_PROBES + 1) * 0.02 / 0.02 - seconds) / 0.01
    every = OPEN_START
    while every < need:
        every *= 2
    assert every > OPEN_START
    assert run(0.02).every == every
    # windows no longer than two plain steps (the clock sees no cost: on a run of a few dozen
    # steps its estimate can come out near zero) but probes whose own code took 20 ms each:
    # their own time is the floor, and the interval doubles as for probes of 20 ms
    s = Schedule(None, budget=0.02)
    for j in range(MIN_PROBES):
        steps = OPEN_START * j + 1
        s.spend(0.02, 2, steps * 0.01, steps, j + 1, own=(j + 1) * 0.02)
    assert s.probe_seconds == pytest.approx(MIN_PROBES * 0.02)
    need = ((MIN_PROBES + 1) * 0.02 / 0.02 - steps * 0.01) / 0.01
    every = OPEN_START
    while every < need:
        every *= 2
    assert s.every == every > OPEN_START
    # a known length, or no budget, never adapts
    assert run(0.02, budget=None).every == OPEN_START
    s = Schedule(1000, budget=0.02)
    before = s.every
    s.spend(10.0, 2, 0.1, 48, MIN_PROBES)
    assert s.every == before


def test_loss_at_init_high_reads_the_preflight_loss_against_the_baseline():
    # the constant baseline of MSE is the targets' variance, computed here on its own
    Y = np.random.default_rng(3).normal(2.0, 3.0, size=(50, 1))
    var = float(np.mean((Y - Y.mean()) ** 2))
    ctx = context(Y=Y, bounds={"baseline": var})
    ctx.preflight = {"init": {"loss": 250.0 * var, "baseline": var}}
    (f,) = curve.loss_at_init_high(probes(), ctx)
    assert f.code == "loss-at-init-high" and f.kind == "symptom" and f.severity == "warning"
    assert f.evidence["ratio"] == pytest.approx(250.0, rel=1e-12)
    assert f.evidence["initial_loss"] == pytest.approx(250.0 * var, rel=1e-12)
    # an overflowing start is the extreme case; up to 100x the baseline (a healthy run of the
    # catalogs and held-out sets reaches 10.6x), NaN and no pre-flight are silent
    ctx.preflight["init"]["loss"] = math.inf
    assert [x.code for x in curve.loss_at_init_high(probes(), ctx)] == ["loss-at-init-high"]
    for silent in (100.0 * var, 10.6 * var, math.nan):
        ctx.preflight["init"]["loss"] = silent
        assert curve.loss_at_init_high(probes(), ctx) == []
    ctx.preflight = {}
    assert curve.loss_at_init_high(probes(), ctx) == []


def test_loss_at_init_high_on_the_catalog():
    from nndoctor import diagnose
    from nndoctor.scenarios import CATALOG

    by_name = {s.name: s for s in CATALOG}
    for name, expected in (
        ("deep-randn-init", True),
        ("xor-tanh", False),
        ("regression-tanh", False),
    ):
        setup = by_name[name].build(0)
        report = diagnose(
            setup.model, setup.X, setup.Y, **setup.training, trials=False, progress=False
        )
        assert ("loss-at-init-high" in report) is expected, name
        if expected:
            init = report.preflight["init"]
            ratio = report["loss-at-init-high"].evidence["ratio"]
            assert ratio == pytest.approx(init["loss"] / report.bounds["baseline"], rel=1e-12)
