"""Save and load a model (architecture + weights) to one ``.npz`` file, written atomically."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from nndoctor._files import write_atomic
from nndoctor.nn.layers import LAYERS, Dense, Sequential

_FORMAT = "nndoctor.model/1"


def save(model: Sequential, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` (``.npz``) through a temporary file and a rename, so a crash
    never leaves a half-written file behind. Returns the path written."""
    if not isinstance(model, Sequential):
        raise TypeError(f"save expects an nndoctor.nn.Sequential, got {type(model).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # np.savez would append it silently anyway
    architecture = [{"type": type(layer).__name__, **layer.config()} for layer in model.layers]
    arrays = {f"param:{k}": v for k, v in model.named_parameters().items()}
    arrays["format"] = np.array(_FORMAT)
    arrays["architecture"] = np.array(json.dumps(architecture))
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike[str]) -> Sequential:
    """Read a model written by :func:`save`. Anything else gives a ``ValueError`` saying so."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    # Opening the file ourselves closes it on every path (np.load leaks it on a broken zip).
    with path.open("rb") as f:
        try:
            data = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            # np.load raises ValueError for text and pickles, BadZipFile for a broken archive.
            raise ValueError(f"{path} is not an nndoctor model file: {exc}") from None
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
            raise ValueError(f"{path} is not an nndoctor model file: it holds a single array")
        fmt = str(data["format"]) if "format" in data.files else None
        if fmt != _FORMAT:
            raise ValueError(f"{path} is not an nndoctor model file (format {fmt!r})")
        architecture = json.loads(str(data["architecture"]))
        params = {k[len("param:") :]: data[k] for k in data.files if k.startswith("param:")}
    layers = []
    for spec in architecture:
        kind = spec.pop("type")
        if kind not in LAYERS:
            raise ValueError(f"{path} names an unknown layer type {kind!r}")
        if LAYERS[kind] is Dense:
            spec["init"] = "zeros"  # overwritten just below; zeros draws no random numbers
        layers.append(LAYERS[kind](**spec))
    model = Sequential(*layers)
    model.set_parameters(params)
    return model
