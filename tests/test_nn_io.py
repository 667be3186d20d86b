"""save / load: a round trip of every layer type, atomic writes, and clear errors for files
that are not models."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nndoctor.nn.io as nnio
from nndoctor.nn import (
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    load,
    save,
)


def _every_layer_type() -> Sequential:
    rng = np.random.default_rng(0)

    def dense(n_in, n_out):
        return Dense(n_in, n_out, init="normal", bias_init="normal", seed=rng)

    return Sequential(
        dense(3, 4),
        Sigmoid(),
        dense(4, 4),
        Tanh(),
        dense(4, 5),
        ReLU(),
        dense(5, 5),
        LeakyReLU(0.3),
        dense(5, 3),
        Identity(),
        Softmax(),
    )


def test_round_trip_keeps_every_layer_and_every_bit(tmp_path):
    model = _every_layer_type()
    written = save(model, tmp_path / "model.npz")
    assert written == tmp_path / "model.npz"
    restored = load(written)
    assert [type(layer) for layer in restored] == [type(layer) for layer in model]
    assert [layer.config() for layer in restored] == [layer.config() for layer in model]
    assert restored[7].negative_slope == 0.3
    original = model.named_parameters()
    for name, value in restored.named_parameters().items():
        np.testing.assert_array_equal(value, original[name])
    X = np.random.default_rng(1).normal(size=(6, 3))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert list(tmp_path.iterdir()) == [written]  # no temporary file left behind


def test_the_npz_suffix_is_added_when_missing(tmp_path):
    written = save(Sequential(Dense(2, 1)), tmp_path / "model")
    assert written.name == "model.npz" and written.exists()


def test_a_failed_save_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    first = Sequential(Dense(2, 2, seed=1))
    save(first, path)
    before = path.read_bytes()

    def savez_that_fails_halfway(file, **arrays):
        file.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(nnio.np, "savez", savez_that_fails_halfway)
    with pytest.raises(OSError, match="disk full"):
        save(Sequential(Dense(2, 2, seed=2)), path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)[0].params["W"], first[0].params["W"])


def test_save_refuses_what_is_not_a_sequential(tmp_path):
    with pytest.raises(TypeError, match=r"save expects an nndoctor\.nn\.Sequential, got Dense"):
        save(Dense(2, 2), tmp_path / "m.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no model file at .*absent\.npz"):
        load(tmp_path / "absent.npz")


def test_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, W=np.zeros((2, 2)))
    with pytest.raises(
        ValueError, match=r"weights.npz is not an nndoctor model file \(format None\)"
    ):
        load(path)


@pytest.mark.parametrize("kind", ["text", "npy", "corrupt_zip"])
def test_a_file_that_is_not_an_npz_is_refused_clearly(tmp_path, kind):
    path = tmp_path / "model.npz"
    if kind == "text":
        path.write_text("hello, I am not a model\n")
    elif kind == "npy":
        with path.open("wb") as f:
            np.save(f, np.zeros(3))
    else:
        path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"model\.npz is not an nndoctor model file"):
        load(path)


def test_unknown_layer_type_in_the_file_is_named(tmp_path):
    path = save(Sequential(Dense(2, 2)), tmp_path / "model.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["architecture"] = np.array(json.dumps([{"type": "Conv2d"}]))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="names an unknown layer type 'Conv2d'"):
        load(path)


def _arrays(path):
    with np.load(path) as data:
        return dict(data)


def test_a_missing_parameter_is_refused_never_filled_with_zeros(tmp_path):
    path = save(Sequential(Dense(2, 3, seed=4), Sigmoid(), Dense(3, 1)), tmp_path / "m.npz")
    arrays = _arrays(path)
    del arrays["param:2.W"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"m\.npz .*parameter\(s\) missing: \['2\.W'\]"):
        load(path)


def test_an_unexpected_or_reshaped_parameter_is_refused(tmp_path):
    path = save(Sequential(Dense(2, 3)), tmp_path / "m.npz")
    arrays = _arrays(path)
    np.savez(path, **{**arrays, "param:5.W": np.zeros(2)})
    with pytest.raises(ValueError, match=r"unexpected: \['5\.W'\]"):
        load(path)
    np.savez(path, **{**arrays, "param:0.W": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"parameter 0\.W has shape \(3, 3\); .* \(3, 2\)"):
        load(path)


@pytest.mark.parametrize(
    ("architecture", "message"),
    [
        ('[{"type": "Dense", "in_features": 2', "architecture record is not valid JSON"),
        ('{"type": "Dense"}', "not a list of layers"),
        ('[{"type": "Dense", "in_features": 2}]', r"layer 0 \(Dense\) cannot be built"),
        ('[{"type": "Dense", "in_features": 2, "out_features": 3, "colour": 1}]', "layer 0"),
        ('[{"type": "Dense", "in_features": 2, "out_features": -3}]', "layer 0"),
        (
            '[{"type": "Dense", "in_features": 2, "out_features": 3}, '
            '{"type": "Dense", "in_features": 4, "out_features": 1}]',
            "do not fit together",
        ),
    ],
)
def test_an_edited_architecture_gets_one_clear_error(tmp_path, architecture, message):
    path = save(Sequential(Dense(2, 3)), tmp_path / "m.npz")
    arrays = _arrays(path)
    arrays["architecture"] = np.array(architecture)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_flipped_bytes_anywhere_give_one_clear_error_or_the_exact_model(tmp_path):
    model = Sequential(Dense(3, 4, seed=1), Tanh(), Dense(4, 2, seed=2))
    path = save(model, tmp_path / "m.npz")
    good = path.read_bytes()
    rng = np.random.default_rng(5)
    damaged = tmp_path / "damaged.npz"
    refused = 0
    for offset in rng.choice(len(good), 60, replace=False):
        data = bytearray(good)
        data[offset] ^= 0xFF
        damaged.write_bytes(bytes(data))
        try:
            restored = load(damaged)
        except ValueError as exc:
            assert "damaged.npz" in str(exc)
            refused += 1
            continue
        # a flip that zip's checksums cannot see (in padding or a header field numpy ignores)
        # must still give back exactly the saved weights
        for name, value in restored.named_parameters().items():
            np.testing.assert_array_equal(value, model.named_parameters()[name])
    assert refused >= 30


def test_garbage_gets_no_hint_about_arguments_load_does_not_take(tmp_path):
    import pickle

    path = tmp_path / "m.npz"
    path.write_bytes(pickle.dumps({"W": [1, 2]}))
    with pytest.raises(ValueError) as info:
        load(path)
    assert "allow_pickle" not in str(info.value) and "m.npz" in str(info.value)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load(tmp_path)
