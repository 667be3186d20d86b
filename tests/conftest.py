"""Shared fixtures. Torch tests never skip silently in CI: NNDOCTOR_REQUIRE_TORCH=1 makes a
missing torch a failure instead of a skip."""

from __future__ import annotations

import importlib
import os

import pytest


@pytest.fixture(scope="session")
def torch():
    """The torch module, or a skip (a failure when NNDOCTOR_REQUIRE_TORCH=1)."""
    try:
        module = importlib.import_module("torch")
    except ImportError:
        if os.environ.get("NNDOCTOR_REQUIRE_TORCH") == "1":
            pytest.fail("torch is required (NNDOCTOR_REQUIRE_TORCH=1) but not installed")
        pytest.skip("torch not installed: pip install 'nndoctor[torch]'")
    module.set_default_dtype(module.float64)
    return module


@pytest.fixture()
def nn(torch):
    """``torch.nn``, with one thread: tiny matrices, where threads only add waiting."""
    torch.set_num_threads(1)
    return torch.nn
