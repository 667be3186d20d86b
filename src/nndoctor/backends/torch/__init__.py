"""The PyTorch backend: any ``torch.nn.Module`` (importing it imports torch).

- :mod:`~nndoctor.backends.torch.backend`: ``diagnose``'s copies, trained and changed;
- :mod:`~nndoctor.backends.torch.watch`: the hooks around a training loop (``nndoctor.watch``);
- :mod:`~nndoctor.backends.torch.model`: layers, activations and structural changes of a module;
- :mod:`~nndoctor.backends.torch.distributed`: the ranks of a distributed run.
"""

from nndoctor.backends.torch.backend import TORCH, TorchBackend
from nndoctor.backends.torch.loss import listen_backward
from nndoctor.backends.torch.watch import Watch

__all__ = ["TORCH", "TorchBackend", "Watch", "listen_backward"]
