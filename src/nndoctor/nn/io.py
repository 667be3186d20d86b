"""Save and load a model (architecture + weights) to one ``.npz`` file, written atomically."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
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


def _damaged(path: Path, what: str) -> ValueError:
    return ValueError(f"{path} is not an nndoctor model file: {what}")


def _read(path: Path) -> tuple[list, dict[str, np.ndarray]]:
    """The architecture list and the parameter arrays of a model file, every failure a
    ``ValueError`` naming ``path`` and what is wrong."""
    with path.open("rb") as f:  # opened here, so it is closed on every path
        head = f.read(6)
        f.seek(0)
        if head.startswith(b"\x93NUMPY"):
            raise _damaged(path, "it holds a single .npy array, not a saved model")
        if not head.startswith(b"PK"):
            raise _damaged(path, f"it is not a .npz (zip) archive (it starts with {head[:4]!r})")
        try:
            with np.load(f, allow_pickle=False) as data:
                files = list(data.files)
                fmt = str(data["format"]) if "format" in files else None
                if fmt != _FORMAT:
                    raise ValueError(f"{path} is not an nndoctor model file (format {fmt!r})")
                if "architecture" not in files:
                    raise _damaged(path, "the architecture record is missing")
                text = str(data["architecture"])
                params = {k[len("param:") :]: data[k] for k in files if k.startswith("param:")}
        except ValueError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise _damaged(path, _reason(exc)) from None
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, zlib.error) as exc:
            # flipped bytes: a bad CRC, a broken member header, a truncated archive
            raise _damaged(path, f"the archive is damaged ({_reason(exc)})") from None
    try:
        architecture = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _damaged(path, f"the architecture record is not valid JSON ({exc})") from None
    if not isinstance(architecture, list) or not all(
        isinstance(spec, dict) and isinstance(spec.get("type"), str) for spec in architecture
    ):
        raise _damaged(path, "the architecture record is not a list of layers with a 'type'")
    return architecture, params


def _reason(exc: BaseException) -> str:
    text = str(exc)
    # np.load's advice about allow_pickle= is for np.load, not for this function
    if "allow_pickle" in text or "pickled" in text:
        return "it holds pickled Python objects, which are never loaded"
    return text or type(exc).__name__


def load(path: str | os.PathLike[str]) -> Sequential:
    """Read a model written by :func:`save`.

    Every damaged or foreign file gives one ``ValueError`` naming the file and what is wrong
    (not a zip archive, a bad checksum, an unreadable architecture, an unknown layer, a
    parameter missing, unexpected or of the wrong shape); a load never invents weights.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a model file")
    architecture, params = _read(path)
    layers = []
    for i, spec in enumerate(architecture):
        spec = dict(spec)
        kind = spec.pop("type")
        if kind not in LAYERS:
            raise ValueError(f"{path} names an unknown layer type {kind!r} (layer {i})")
        if LAYERS[kind] is Dense:
            spec["init"] = "zeros"  # overwritten just below; zeros draws no random numbers
        try:
            layers.append(LAYERS[kind](**spec))
        except (TypeError, ValueError) as exc:
            raise _damaged(path, f"layer {i} ({kind}) cannot be built: {exc}") from None
    try:
        model = Sequential(*layers)
    except (TypeError, ValueError) as exc:
        raise _damaged(path, f"the layers do not fit together: {exc}") from None
    expected = model.named_parameters()
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise _damaged(
            path,
            f"parameter(s) missing: {missing}, unexpected: {unexpected} "
            "(a load never fills in weights)",
        )
    for name, value in params.items():
        if value.shape != expected[name].shape:
            raise _damaged(
                path,
                f"parameter {name} has shape {value.shape}; the architecture needs "
                f"{expected[name].shape}",
            )
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise _damaged(path, f"parameter {name} has dtype {value.dtype}, not a number")
    model.set_parameters(params)
    return model
