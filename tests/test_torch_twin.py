"""The PyTorch twin: conversions both ways, and the engine against torch itself.

The acceptance checks build their torch reference by hand here (``nn.Linear`` with copied weights,
torch's own losses and optimisers), so they test the engine against torch, not against
``nndoctor.torch``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nndoctor.nn import (
    BCE,
    MSE,
    SGD,
    SSE,
    Adam,
    CrossEntropy,
    Dense,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    train,
)
from nndoctor.torch import (
    from_torch,
    loss_to_torch,
    optimizer_to_torch,
    target_to_torch,
    to_torch,
    torch_parameter_name,
)

ACTIVATIONS = (Sigmoid, Tanh, ReLU, LeakyReLU, Identity, Softmax)
LOSSES = ("sse", "mse", "bce", "cross_entropy")


def reference_twin(torch, model: Sequential):
    """The torch model an engine model stands for, built without ``nndoctor.torch``."""
    nn = torch.nn
    modules = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            linear = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(layer.params["W"]))
                linear.bias.copy_(torch.tensor(layer.params["b"]))
            modules.append(linear)
        elif isinstance(layer, LeakyReLU):
            modules.append(nn.LeakyReLU(layer.negative_slope))
        elif isinstance(layer, Softmax):
            modules.append(nn.Softmax(dim=1))
        else:
            modules.append(
                {Sigmoid: nn.Sigmoid, Tanh: nn.Tanh, ReLU: nn.ReLU}.get(type(layer), nn.Identity)()
            )
    return nn.Sequential(*modules)


def reference_loss(torch, name: str, reduction: str, P, T):
    F = torch.nn.functional
    if name == "sse":
        return 0.5 * ((P - T) ** 2).sum()
    if name == "mse":
        return F.mse_loss(P, T, reduction=reduction)
    if name == "bce":
        return F.binary_cross_entropy(P, T, reduction=reduction)
    return F.cross_entropy(P, T, reduction=reduction)


def engine_loss(name: str, reduction: str):
    return {"sse": lambda r: SSE(), "mse": MSE, "bce": BCE, "cross_entropy": CrossEntropy}[name](
        reduction
    )


def random_problem(rng, n_dense, widths, activations, loss_name, n_samples):
    """A model with the given architecture, random weights and biases, and fitting data."""
    layers: list[Layer] = []
    for i in range(n_dense):
        dense = Dense(widths[i], widths[i + 1], init="xavier_normal", seed=rng)
        dense.params["b"][...] = rng.normal(0.0, 0.5, widths[i + 1])
        layers += [dense, activations[i]]
    model = Sequential(*layers)
    X = rng.normal(size=(n_samples, widths[0]))
    if loss_name == "cross_entropy":
        Y = rng.integers(0, widths[-1], n_samples)
    elif loss_name == "bce":
        Y = rng.random((n_samples, widths[-1]))
    else:
        Y = rng.normal(size=(n_samples, widths[-1]))
    return model, X, Y


@st.composite
def problems(draw):
    n_dense = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 16), min_size=n_dense + 1, max_size=n_dense + 1))
    loss_name = draw(st.sampled_from(LOSSES))
    activations = []
    for i in range(n_dense):
        cls = draw(st.sampled_from(ACTIVATIONS))
        if i == n_dense - 1 and loss_name == "bce":
            cls = Sigmoid  # BCE takes probabilities
        slope = draw(st.floats(0.01, 0.5))
        activations.append(cls(slope) if cls is LeakyReLU else cls())
    reduction = draw(st.sampled_from(("mean", "sum")))
    n_samples = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    return n_dense, widths, activations, loss_name, reduction, n_samples, seed


def test_import_does_not_load_torch():
    code = "import sys, nndoctor.torch, nndoctor.gradcheck; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@settings(max_examples=50, deadline=None)
@given(problems())
def test_engine_gradients_match_autograd(torch, problem):
    """Acceptance: random architectures, every activation and loss, rel. error <= 1e-10."""
    n_dense, widths, activations, loss_name, reduction, n_samples, seed = problem
    rng = np.random.default_rng(seed)
    model, X, Y = random_problem(rng, n_dense, widths, activations, loss_name, n_samples)
    loss = engine_loss(loss_name, reduction)

    twin = reference_twin(torch, model)
    target = torch.tensor(Y) if loss_name != "cross_entropy" else torch.tensor(Y, dtype=torch.long)
    ref_loss = reference_loss(torch, loss_name, reduction, twin(torch.tensor(X)), target)
    ref_loss.backward()

    P = model.forward(X)
    model.zero_grad()
    model.backward(loss.gradient(P, Y))
    assert loss(P, Y) == pytest.approx(ref_loss.item(), rel=1e-12, abs=1e-300)

    torch_grads = [p.grad.numpy() for p in twin.parameters()]
    scale = max(float(np.abs(g).max()) for g in torch_grads)
    engine_grads = list(model.named_gradients().values())
    assert len(engine_grads) == len(torch_grads)
    for ours, ref in zip(engine_grads, torch_grads, strict=True):
        # elements below 1e-6 of the largest gradient are compared at that floor: they are zero
        # up to the rounding of a cancelling sum, where a relative error says nothing
        denom = np.maximum(np.maximum(np.abs(ours), np.abs(ref)), 1e-6 * scale)
        rel = np.divide(np.abs(ours - ref), denom, out=np.zeros_like(ref), where=denom > 0)
        assert rel.max() <= 1e-10


OPTIMIZERS = {
    "sgd": (lambda: SGD(lr=0.1), lambda torch, p: torch.optim.SGD(p, lr=0.1)),
    "sgd_momentum_wd": (
        lambda: SGD(lr=0.05, momentum=0.9, weight_decay=1e-3),
        lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    ),
    "sgd_nesterov": (
        lambda: SGD(lr=0.05, momentum=0.8, dampening=0.0, nesterov=True),
        lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    ),
    "adam": (
        lambda: Adam(lr=0.01, betas=(0.85, 0.995), eps=1e-7, weight_decay=1e-4),
        lambda torch, p: torch.optim.Adam(
            p, lr=0.01, betas=(0.85, 0.995), eps=1e-7, weight_decay=1e-4
        ),
    ),
}


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss_name", ["mse", "cross_entropy"])
def test_twin_trained_side_by_side_follows_the_same_path(torch, opt_name, loss_name):
    """Acceptance: same weights and batches, 200 steps, per-step losses agree to 1e-9 rel."""
    rng = np.random.default_rng(7)
    activations = [Tanh(), Sigmoid(), Identity()]
    model, X, Y = random_problem(rng, 3, [6, 10, 8, 4], activations, loss_name, 40)
    make_engine_opt, make_torch_opt = OPTIMIZERS[opt_name]
    twin = reference_twin(torch, model)  # before training: same initial weights
    initial_model = model.copy()

    history = train(
        model,
        X,
        Y,
        loss=engine_loss(loss_name, "mean"),
        optimizer=make_engine_opt(),
        epochs=40,
        batch_size=8,
        progress=False,
    )  # 5 consecutive batches per epoch, 200 steps

    opt = make_torch_opt(torch, twin.parameters())
    Xt = torch.tensor(X)
    Yt = torch.tensor(Y) if loss_name == "mse" else torch.tensor(Y, dtype=torch.long)
    torch_losses = []
    for _ in range(40):
        for start in range(0, 40, 8):
            opt.zero_grad()
            value = reference_loss(
                torch, loss_name, "mean", twin(Xt[start : start + 8]), Yt[start : start + 8]
            )
            value.backward()
            opt.step()
            torch_losses.append(value.item())

    assert len(history.step_loss) == 200
    np.testing.assert_allclose(history.step_loss, torch_losses, rtol=1e-9, atol=0)
    initial = [p.detach().numpy().copy() for p in reference_twin(torch, initial_model).parameters()]
    for before, ref in zip(initial, twin.parameters(), strict=True):
        assert np.abs(ref.detach().numpy() - before).max() > 1e-3  # the steps really moved it
    for ours, ref in zip(model.named_parameters().values(), twin.parameters(), strict=True):
        np.testing.assert_allclose(ours, ref.detach().numpy(), rtol=1e-8, atol=1e-12)


def all_layers_model(seed: int = 3) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(
        Dense(5, 7, init="xavier_normal", bias_init="normal", seed=rng),
        Sigmoid(),
        Dense(7, 6, init="xavier_normal", bias_init="normal", seed=rng),
        Tanh(),
        Dense(6, 6, init="he_normal", bias_init="normal", seed=rng),
        ReLU(),
        Dense(6, 5, init="he_normal", bias_init="normal", seed=rng),
        LeakyReLU(0.2),
        Dense(5, 4, init="xavier_normal", bias_init="normal", seed=rng),
        Identity(),
        Softmax(),
    )


def test_to_torch_copies_weights_and_computes_the_same_function(torch):
    model = all_layers_model()
    twin = to_torch(model)
    assert isinstance(twin, torch.nn.Sequential) and len(twin) == len(model.layers)
    nn = torch.nn
    expected = [nn.Linear, nn.Sigmoid, nn.Linear, nn.Tanh, nn.Linear, nn.ReLU, nn.Linear]
    expected += [nn.LeakyReLU, nn.Linear, nn.Identity, nn.Softmax]
    assert [type(m) for m in twin] == expected
    assert twin[7].negative_slope == 0.2 and twin[10].dim == 1

    state = twin.state_dict()
    for name, value in model.named_parameters().items():
        tensor = state[torch_parameter_name(name)]
        assert tensor.dtype == torch.float64
        assert np.array_equal(tensor.numpy(), value)  # bit-identical copies

    X = np.random.default_rng(0).normal(size=(9, 5))
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), model.forward(X), rtol=1e-13, atol=1e-15
    )
    # a copy, not shared memory: training the twin leaves the engine alone
    before = {k: v.copy() for k, v in model.named_parameters().items()}
    with torch.no_grad():
        twin[0].weight.add_(1.0)
    assert all(np.array_equal(before[k], v) for k, v in model.named_parameters().items())


def test_from_torch_round_trip(torch):
    nn = torch.nn
    rng = np.random.default_rng(1)
    module = nn.Sequential(
        nn.Linear(4, 6),
        nn.Tanh(),
        nn.Linear(6, 5),
        nn.LeakyReLU(0.3),
        nn.Linear(5, 3),
        nn.Softmax(dim=-1),
    ).to(torch.float32)  # float32 weights must arrive as float64 of the same values
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.tensor(rng.normal(size=tuple(p.shape)), dtype=torch.float32))

    model = from_torch(module)
    assert [type(layer) for layer in model.layers] == [
        Dense,
        Tanh,
        Dense,
        LeakyReLU,
        Dense,
        Softmax,
    ]
    assert model.layers[3].negative_slope == pytest.approx(0.3)
    for (name, value), p in zip(model.named_parameters().items(), module.parameters(), strict=True):
        assert value.dtype == np.float64
        assert np.array_equal(value, p.detach().double().numpy()), name

    X = rng.normal(size=(7, 4))
    np.testing.assert_allclose(
        model.forward(X), module.double()(torch.tensor(X)).detach().numpy(), rtol=1e-13
    )
    again = to_torch(model)
    for (k, a), (k2, b) in zip(
        again.state_dict().items(), module.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        (
            lambda nn: [nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 1)],
            r"module 2 \(Dropout\) is not supported",
        ),
        (lambda nn: [nn.Linear(3, 4, bias=False)], r"module 0 \(Linear with bias=False\)"),
        (lambda nn: [nn.Linear(3, 4), nn.Softmax(dim=0)], r"module 1 \(Softmax\(dim=0\)\)"),
        (lambda nn: [nn.Linear(3, 4), nn.BatchNorm1d(4), nn.GELU()], r"module 1 \(BatchNorm1d\)"),
    ],
)
def test_from_torch_names_the_first_unsupported_module(torch, modules, message):
    with pytest.raises(TypeError, match=message):
        from_torch(torch.nn.Sequential(*modules(torch.nn)))


def test_from_torch_wants_a_sequential(torch):
    with pytest.raises(TypeError, match=r"torch\.nn\.Sequential, got Linear"):
        from_torch(torch.nn.Linear(2, 2))


def test_to_torch_names_the_unsupported_layer(torch):
    class Swish(Layer):
        def forward(self, X):
            return X / (1 + np.exp(-X))

    with pytest.raises(TypeError, match=r"layer 1 \(Swish\) has no torch twin"):
        to_torch(Sequential(Dense(2, 3), Swish(), Dense(3, 1)))
    with pytest.raises(TypeError, match=r"expects an nndoctor\.nn\.Sequential"):
        to_torch([Dense(2, 3)])


def test_loss_to_torch_matches_closed_forms(torch):
    rng = np.random.default_rng(5)
    P = rng.random((6, 3)) * 0.9 + 0.05
    T = rng.random((6, 3))
    labels = rng.integers(0, 3, 6)
    Pt, Tt = torch.tensor(P), torch.tensor(T)
    sq = (P - T) ** 2
    assert loss_to_torch(SSE())(Pt, Tt).item() == pytest.approx(0.5 * sq.sum(), rel=1e-14)
    assert loss_to_torch(MSE())(Pt, Tt).item() == pytest.approx(sq.mean(), rel=1e-14)
    assert loss_to_torch(MSE("sum"))(Pt, Tt).item() == pytest.approx(sq.sum(), rel=1e-14)
    bce = -(T * np.log(P) + (1 - T) * np.log(1 - P))
    assert loss_to_torch(BCE())(Pt, Tt).item() == pytest.approx(bce.mean(), rel=1e-14)
    log_softmax = P - np.log(np.exp(P).sum(axis=1, keepdims=True))
    ce = -log_softmax[np.arange(6), labels]
    got = loss_to_torch(CrossEntropy("sum"))(Pt, target_to_torch(CrossEntropy(), labels))
    assert got.item() == pytest.approx(ce.sum(), rel=1e-14)
    assert target_to_torch(CrossEntropy(), labels.astype(float)).dtype == torch.int64
    with pytest.raises(TypeError, match="loss str has no torch twin"):
        loss_to_torch("huber")


def test_optimizer_to_torch_carries_the_hyperparameters(torch):
    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd = optimizer_to_torch(SGD(lr=0.3, momentum=0.7, dampening=0.1, weight_decay=0.01), params)
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (
        group["lr"],
        group["momentum"],
        group["dampening"],
        group["weight_decay"],
        group["nesterov"],
    ) == (0.3, 0.7, 0.1, 0.01, False)
    adam = optimizer_to_torch(Adam(lr=0.002, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), params)
    assert isinstance(adam, torch.optim.Adam)
    group = adam.param_groups[0]
    assert (group["lr"], tuple(group["betas"]), group["eps"], group["weight_decay"]) == (
        0.002,
        (0.8, 0.99),
        1e-6,
        0.1,
    )


def test_parameter_names():
    assert torch_parameter_name("0.W") == "0.weight"
    assert torch_parameter_name("12.b") == "12.bias"
    with pytest.raises(ValueError, match="not an engine parameter name"):
        torch_parameter_name("weight")


def test_missing_torch_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r"pip install 'nndoctor\[torch\]'"):
        to_torch(Sequential(Dense(2, 1)))
