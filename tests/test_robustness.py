"""Bad input never crashes ``diagnose`` or makes it lie, and the user's objects come back as given.

Each test is one item of issue 11; pytest turns every NumPy RuntimeWarning into an error, so a
passing test also shows that no warning was emitted.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndoctor import check_function_gradients, diagnose
from nndoctor.nn import MSE, SGD, Adam, CrossEntropy, Dense, Sequential, Tanh, mlp, train


def _regression(n=120, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=(d, 2))
    return X, Y


def _run(model=None, X=None, Y=None, **kw):
    Xd, Yd = _regression()
    args = {
        "loss": MSE(),
        "optimizer": SGD(lr=0.05),
        "epochs": 6,
        "batch_size": 32,
    }
    args.update(kw)
    model = model if model is not None else mlp([4, 6, 2], "tanh", seed=1)
    return diagnose(model, Xd if X is None else X, Yd if Y is None else Y, **args)


@pytest.mark.parametrize("optimizer", [SGD(lr=0.0), Adam(lr=0.0)])
def test_a_learning_rate_of_zero_is_a_finding_not_a_zero_division(optimizer):
    report = _run(optimizer=optimizer)
    finding = report["lr-too-low"]
    assert finding.evidence["lr"] == 0.0 and "learning rate is 0" in finding.title
    # nothing moved: the weights of a zero-rate run are exactly the initial ones
    assert finding.evidence["total_weight_change"] == 0.0
    assert finding.evidence["suggested_lr"] == (1e-3 if isinstance(optimizer, Adam) else 1e-2)
    assert report.causes[0].code == "lr-too-low"


def test_inputs_of_scale_1e_minus_300_give_a_report():
    X, _ = _regression()
    report = _run(X=X * 1e-300)
    # to a net initialised for unit-scale inputs these inputs are constant
    assert report.causes[0].code == "constant-inputs"


def test_an_inf_initial_weight_is_named_and_not_read_as_symmetric_units():
    model = mlp([4, 6, 2], "tanh", seed=1)
    model[0].params["W"][3, 1] = np.inf
    report = _run(model=model)
    first = report.causes[0]
    assert first.code == "non-finite-values"
    assert first.evidence["layer"] == "0" and first.evidence["index"] == [3, 1]
    assert first.evidence["value"] == "inf" and first.evidence["step"] == "initialisation"
    assert "symmetric-units" not in report.codes


def test_a_nan_initial_bias_is_named():
    model = mlp([4, 6, 2], "relu", seed=1)
    model[2].params["b"][1] = np.nan
    report = _run(model=model)
    finding = report["non-finite-values"]
    assert finding.evidence["layer"] == "1" and finding.evidence["parameter"] == "b"
    assert finding.evidence["value"] == "NaN" and finding.evidence["index"] == [1]


def test_targets_of_scale_1e200_are_unscaled_targets_not_no_signal():
    _, Y = _regression()
    report = _run(Y=Y * 1e200)
    assert "no-signal" not in report.codes
    assert report.causes[0].code == "unscaled-targets"
    # the squared error of such targets is beyond float64: the baseline says inf, not NaN
    assert report.bounds["baseline"] == np.inf


def test_one_sample_cannot_be_diagnosed():
    X, Y = _regression()
    with pytest.raises(ValueError, match=r"X has 1 sample\(s\).*at least 2"):
        _run(X=X[:1], Y=Y[:1])


def test_a_negative_seed_is_refused_by_name():
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        _run(seed=-1)
    X, Y = _regression()
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        train(mlp([4, 2]), X, Y, loss=MSE(), optimizer=SGD(lr=0.1), epochs=1, seed=-1)


def test_a_loss_or_optimizer_class_gets_the_hint_to_add_parentheses():
    with pytest.raises(TypeError, match=r"got the class MSE: write loss=MSE\(\)"):
        _run(loss=MSE)
    with pytest.raises(TypeError, match=r"got the class SGD: write optimizer=SGD\(lr=\.\.\.\)"):
        _run(optimizer=SGD)


def test_diagnose_gives_the_model_back_exactly_as_it_was():
    X, _ = _regression()
    model = mlp([4, 6, 2], "tanh", seed=1)
    model.forward(X[:5])  # the user ran it: its caches are part of what was given
    before = {k: v.copy() for k, v in model.named_parameters().items()}
    grads = {k: v.copy() for k, v in model.named_gradients().items()}
    caches = [dict(layer.__dict__) for layer in model.layers]
    nbytes = model.cache_nbytes
    _run(model=model)
    for name, value in model.named_parameters().items():
        np.testing.assert_array_equal(value, before[name])
    for name, value in model.named_gradients().items():
        np.testing.assert_array_equal(value, grads[name])
    for layer, attrs in zip(model.layers, caches, strict=True):
        assert layer.__dict__.keys() == attrs.keys()
        for key, value in attrs.items():
            assert layer.__dict__[key] is value  # the same objects, not even replaced
    assert model.cache_nbytes == nbytes == 5 * (6 + 6 + 4) * 8


def test_a_model_never_run_gets_no_caches_from_diagnose():
    model = mlp([4, 6, 2], "tanh", seed=1)
    _run(model=model)
    assert model.cache_nbytes == 0


def test_copies_carry_weights_but_no_forward_caches():
    X, _ = _regression(n=1000)
    model = Sequential(Dense(4, 64), Tanh(), Dense(64, 2))
    model.forward(X)
    assert model.cache_nbytes == 1000 * (4 + 64 + 64) * 8  # the inputs of both Dense, tanh out
    twin = model.copy()
    assert twin.cache_nbytes == 0
    np.testing.assert_array_equal(twin[0].params["W"], model[0].params["W"])
    np.testing.assert_array_equal(twin.forward(X[:3]), model.forward(X[:3]))
    model.clear_cache()
    assert model.cache_nbytes == 0


def test_the_gradient_check_gives_every_call_fresh_copies():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4))

    def loss_fn(p):
        x = p["W"]
        x += 1.0  # modifies its input in place
        return 0.5 * float(np.sum((x - 1.0) ** 2))  # = 0.5 |W|^2 on the given W

    def grad_fn(p):
        return {"W": p["W"].copy()}  # d/dW 0.5 |W|^2 = W, exactly

    result = check_function_gradients(loss_fn, grad_fn, {"W": W})
    assert result.passed
    assert result.loss == pytest.approx(0.5 * np.sum(W**2), rel=1e-15)


def test_the_gradient_check_can_show_progress(capsys):
    W = np.arange(6.0).reshape(2, 3)
    check_function_gradients(
        lambda p: 0.5 * float(np.sum(p["W"] ** 2)), lambda p: {"W": p["W"]}, {"W": W}, progress=True
    )
    assert "gradient check 6/6" in capsys.readouterr().err


def test_check_gradients_refuses_non_finite_weights_by_name():
    from nndoctor import check_gradients

    model = mlp([4, 3, 2], seed=0)
    model[0].params["W"][2, 0] = np.nan
    X, Y = _regression(n=8)
    with pytest.raises(
        ValueError, match=r"parameter 0\.W contains 1 non-finite.*NaN at index \(2, 0\)"
    ):
        check_gradients(model, X, Y, MSE())


# --- property test: any shape, any scale, NaN/inf anywhere -------------------------------------

_SCALES = st.sampled_from([1e-300, 1e-150, 1e-8, 1.0, 1e8, 1e150, 1e300])


@st.composite
def _cases(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 5))
    classes = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * draw(_SCALES)
    classify = draw(st.booleans())
    Y = rng.integers(0, classes, n) if classify else rng.normal(size=(n, 2)) * draw(_SCALES)
    model = mlp([d, 3, classes if classify else 2], draw(st.sampled_from(["tanh", "relu"])), seed=1)
    where = draw(st.sampled_from(["none", "X", "Y", "weights"]))
    bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if where == "X":
        X[rng.integers(n), rng.integers(d)] = bad
    elif where == "Y" and not classify:
        Y[rng.integers(n), rng.integers(2)] = bad
    elif where == "weights":
        W = model[0].params["W"]
        W[rng.integers(W.shape[0]), rng.integers(W.shape[1])] = bad
    loss = CrossEntropy() if classify else MSE()
    lr = draw(st.sampled_from([0.0, 1e-3, 0.1, 10.0]))
    return model, X, Y, loss, lr, where


@settings(
    max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(_cases())
def test_diagnose_reports_or_raises_one_clear_error_never_a_warning(case):
    model, X, Y, loss, lr, where = case
    try:
        report = diagnose(model, X, Y, loss=loss, optimizer=SGD(lr=lr), epochs=3, batch_size=8)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        # the error names what is wrong: the array and the position, or the sample count
        assert "X " in message or "Y " in message or "Y[" in message or "labels" in message, message
        return
    assert where != "X"  # NaN or inf in X is always refused before training
    assert report.findings is not None and str(report)
    if where == "weights":
        assert "non-finite-values" in report.codes
