"""The engine backend: :mod:`nndoctor.nn` models (``Sequential``)."""

from nndoctor.backends.engine.backend import ENGINE, EngineBackend
from nndoctor.backends.engine.recorder import Recorder

__all__ = ["ENGINE", "EngineBackend", "Recorder"]
