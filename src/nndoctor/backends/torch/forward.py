"""The forward pass of probe steps: hooks on the model and its weighted layers, in place only
until the probed step's forward pass has been seen (the steps in between run without them).

A forward hook on every weighted layer sees its output ``z``; a forward pre-hook on each sees
its input, which is what the previous layer's activation produced, however it was computed
(``F.relu`` included). The activations are read off the first forward pass: an activation
module (``nn.ReLU``, ``nn.Tanh``, ...) whose input is a layer's output names that layer's
activation (pre-hooks on those modules, for that pass only); the others, functional code, by
their numbers (:func:`~nndoctor.backends.torch.model.infer_activation`).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from nndoctor.backends.torch.checks import flat_tensors
from nndoctor.backends.torch.model import (
    ACTIVATION_MODULES,
    infer_activation,
    kind_of,
    module_activation,
    own_pass,
    untouched,
)
from nndoctor.backends.torch.statistics import layer_stats
from nndoctor.doctor.recorder import PROBE_ROWS
from nndoctor.doctor.schema import UNKNOWN

# a watched loop takes the activations' rank (an eigen-decomposition per layer) on every
# RANK_EVERY-th probe only, not on the first (diagnose, with its fixed probe batch, on every
# probe); the rules read it as evidence only
RANK_EVERY = 4
# a probed step's whole output is kept up to this many numbers (a language model's logits can
# be a gigabyte)
MAX_KEPT_OUTPUT = 1 << 22


class ForwardTap:
    """The forward-pass hooks of one watch.

    Parameters
    ----------
    watch : Watch
        The owner: its ``due`` (this step is probed), ``failed``, ``guard``, its clock
        (``start_clock``, ``probe_own``) and ``probes_held``.
    model : torch.nn.Module
    layers : list of (str, torch.nn.Module)
        The weighted layers, in registration order.
    """

    def __init__(self, watch: Any, model: nn.Module, layers: list[tuple[str, nn.Module]]):
        self.watch = watch
        self.model = model
        self.layers = layers
        self.index = {id(m): i for i, (_, m) in enumerate(layers)}
        self.handles: list[Any] = []
        self.capturing = False
        self.armed = True  # the first forward is step 0's
        self.probe_x: torch.Tensor | None = None  # fixed rows for the probes' forward pass
        # the first input as the loop gave it (a reference): the probe's fallback when rows
        # gathered along dim 0 are not samples to the model (sequence-first inputs, a graph)
        self.first_x: torch.Tensor | None = None
        self.probe_full = False
        self.fixed_probe = False
        self.in_probe = False
        self.z: dict[int, Any] = {}
        self.inputs: dict[int, Any] = {}
        self.order: list[int] = []
        self.root_in: Any = None
        self.root_out: Any = None
        self.activations: list[str] = []
        self.activations_read = False
        # the first pass's activation modules: their hooks, the layers' outputs by id (an
        # activation module whose input is one names that layer's activation), and the
        # output's version counter (a later in-place change shows there)
        self.act_handles: list[Any] = []
        self.out_ids: dict[int, int] = {}
        self.versions: dict[int, int] = {}
        self.module_acts: dict[int, str] = {}
        self.order_seen: list[int] = []  # layer indices in the first forward pass's order
        self.output_activation = UNKNOWN
        # what the last captured pass gave: per layer its statistics (taken by the probe),
        # its output as (rows, units), and the model's output
        self.last_stats: list[dict[str, float]] | None = None
        self.last_z: list[torch.Tensor | None] = []
        self.probe_out: torch.Tensor | None = None
        self.step_out: torch.Tensor | tuple[torch.Tensor, ...] | None = None
        self.step_numel = 0  # numbers in that output (kept or not)
        # the last captured training pass's outputs as autograd edges, ``(grad_fn,
        # output_nr)`` per output tensor: which of them the loss reads (GradientBook)
        self.out_edges: list[Any] = []

    # --- the hooks, on and off ---

    def hook(self) -> None:
        if self.handles:
            return
        add = self.handles.append
        add(self.model.register_forward_pre_hook(self._root_pre))
        add(self.model.register_forward_hook(self._root_post))
        for _, m in self.layers:
            add(m.register_forward_pre_hook(self._layer_pre))
            add(m.register_forward_hook(self._layer_post))
        if not self.activations_read:
            self.act_handles = [
                m.register_forward_pre_hook(self._activation_pre)
                for m in self.model.modules()
                if isinstance(m, ACTIVATION_MODULES)
            ]

    def unhook(self) -> None:
        for h in (*self.handles, *self.act_handles):
            h.remove()
        self.handles.clear()
        self.act_handles.clear()

    def arm(self) -> None:
        """Capture the next training forward pass (the next step is probed)."""
        self.armed = True
        self.hook()

    # --- the passes ---

    def trace(self, x: torch.Tensor) -> None:
        """One forward pass of ``x`` with the hooks in place (activations and layer order are
        read off it), as the first step of a run would."""
        self.arm()
        with torch.enable_grad():
            self.model(x)

    def set_probe_batch(self, x: torch.Tensor) -> None:
        """Fix the rows every probe's forward pass runs on."""
        self.probe_x, self.probe_full, self.fixed_probe = x, True, True

    def probe_forward(self) -> None:
        """Forward the probe batch with the current weights: the layers' outputs for the
        statistics. The user's run is left as it was: no gradient, the random state and the
        norm layers' running statistics restored."""
        if self.probe_x is None:
            return
        self.hook()
        try:
            try:
                self._forward_probe(self.probe_x)
            except Exception:
                if self.first_x is None or self.fixed_probe:
                    raise
                self.probe_x, self.probe_full = self.first_x, True
                self._forward_probe(self.probe_x)
        finally:
            self.in_probe = False
            if not self.armed:
                self.unhook()

    def _forward_probe(self, x: torch.Tensor) -> None:
        with untouched(self.model, x.device):
            self.in_probe = True
            self.model(x)

    def _collect_probe_rows(self, x: Any) -> None:
        """The probe batch of a watched loop: the first ``PROBE_ROWS`` inputs seen."""
        if self.probe_full or not isinstance(x, torch.Tensor) or x.dim() < 1:
            return
        x = x.detach()
        if self.probe_x is None:
            self.first_x = x
            self.probe_x = x[:PROBE_ROWS].clone()
        elif self.probe_x.shape[1:] == x.shape[1:]:
            need = PROBE_ROWS - len(self.probe_x)
            self.probe_x = torch.cat([self.probe_x, x[:need]])
        self.probe_full = len(self.probe_x) >= PROBE_ROWS

    def _root_pre(self, module: nn.Module, args: tuple) -> None:
        training_forward = self.armed and torch.is_grad_enabled()
        if (training_forward or self.in_probe) and self.watch.failed is None:
            self.watch.start_clock()  # the first step's forward pass starts it
            self.capturing = True
            self.armed = False
            self.z.clear()
            self.inputs.clear()
            self.order.clear()
            self.out_ids.clear()
            self.module_acts.clear()
            self.root_in = args[0] if args else None
            if training_forward and len(args) == 1:
                self.watch.guard("probe batch", lambda: self._collect_probe_rows(args[0]))

    def _layer_pre(self, module: nn.Module, args: tuple) -> None:
        if self.capturing:
            i = self.index[id(module)]
            if i not in self.inputs:
                self.inputs[i] = args[0] if args else None

    def _layer_post(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self.capturing:
            i = self.index[id(module)]
            if i not in self.z:
                self.z[i] = output
                self.order.append(i)
                if not self.activations_read and isinstance(output, torch.Tensor):
                    self.out_ids[id(output)] = i
                    self.versions[i] = output._version

    def _activation_pre(self, module: nn.Module, args: tuple) -> None:
        """An activation module called on a weighted layer's output names its activation."""
        if self.capturing and args:
            i = self.out_ids.get(id(args[0]))
            if i is not None and i not in self.module_acts:
                conv = isinstance(self.layers[i][1], nn.modules.conv._ConvNd)
                self.module_acts[i] = module_activation(module, args[0], conv)

    def _root_post(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self.capturing:
            self.capturing = False
            self.root_out = output
            if not self.in_probe:
                self.out_edges = [(t.grad_fn, t.output_nr) for t in flat_tensors(output)]
            start = time.perf_counter()
            self.watch.guard("forward statistics", self._statistics)
            if self.watch.due or self.in_probe:
                self.watch.probe_own += time.perf_counter() - start
            self.root_out = None  # it holds the step's graph
            if not self.in_probe:
                self.unhook()

    # --- what a captured pass gives ---

    def _statistics(self) -> None:
        """Per weighted layer: saturation, dead units, activation rank, output RMS."""
        order = list(self.order)
        if not self.activations_read:
            self._infer_activations(order)
        out = self.root_out
        if not self.in_probe and self.watch.due and (parts := flat_tensors(out)):
            # the whole output of a probed training step (when not huge), each of its tensors
            # (a model may return logits, then features): the loss's view of it tells the
            # data's structure, and a watched loop's end state redoes that view on the final
            # weights (task.refresh). A copy: a loss may change the output in place
            # (CenterNet's ``hm.sigmoid_()``)
            small = sum(t.numel() for t in parts) <= MAX_KEPT_OUTPUT
            kept = tuple(t.detach().clone() for t in parts) if small else None
            one = isinstance(out, torch.Tensor)
            self.step_out = kept[0] if one and kept else kept
            if one:
                self.step_numel = out.numel()
        if not self.in_probe and (self.fixed_probe or not self.watch.due):
            # the statistics come from the probe batch's forward pass, or no probe reads them
            # (the first forward pass a watch sees is captured for the activations even when
            # its step is not probed: under `nndoctor run` the watch starts after step 0's)
            self.z.clear()
            self.inputs.clear()
            return
        rank_due = self.fixed_probe or self.watch.probes_held % RANK_EVERY == RANK_EVERY - 1
        h_of = [self._h_of(i, order) for i in range(len(self.layers))]
        self.last_stats, self.last_z = layer_stats(
            self.z, h_of, self.layers, self.activations, rank_due
        )
        if isinstance(out, torch.Tensor):
            self.probe_out = out.detach()[:PROBE_ROWS]
        self.z.clear()
        self.inputs.clear()

    def _h_of(self, i: int, order: list[int]) -> Any:
        """What layer ``i``'s activation produced: the next weighted layer's input, or the
        model's output for the last one."""
        if i not in order:
            return None
        k = order.index(i)
        return self.inputs.get(order[k + 1]) if k + 1 < len(order) else self.root_out

    def _infer_activations(self, order: list[int]) -> None:
        acts = []
        for i in range(len(self.layers)):
            if kind_of(self.layers[i][1]) != "dense":
                acts.append(UNKNOWN)
            elif i in self.module_acts:  # the modules say so
                acts.append(self.module_acts[i])
            else:  # functional code: the numbers, where they can tell
                z = self.z.get(i)
                moved = isinstance(z, torch.Tensor) and z._version != self.versions.get(i)
                acts.append(infer_activation(z, self._h_of(i, order), in_place=moved))
        self.activations = acts
        self.activations_read = True
        for h in self.act_handles:
            h.remove()
        self.act_handles.clear()
        self.out_ids.clear()
        self.versions.clear()
        self.module_acts.clear()
        self.order_seen = list(order)
        last = order[-1] if order else None
        self.output_activation = acts[last] if last is not None else UNKNOWN


class TrainModeEvals:
    """Forward passes of the model without gradients (an evaluation) while it is in train()
    mode, the doctor's own passes left out, and the gaps between optimizer steps that held at
    least one (a GAN's generator, run without gradients for its discriminator's step, holds
    one in every gap). :meth:`pre` is a forward pre-hook on the model, put on a model with
    BatchNorm only (in train mode it normalises with the batch's own statistics, a batch of
    one sample's included: the scores change, where Dropout only adds noise to them); it runs
    on every call."""

    def __init__(self) -> None:
        self.calls = 0
        self.gaps = 0
        self.gap_open = False  # the watch closes the gap at each optimizer step

    def pre(self, module: nn.Module, args: tuple) -> None:
        if module.training and not torch.is_grad_enabled() and not own_pass():
            self.calls += 1
            if not self.gap_open:
                self.gap_open = True
                self.gaps += 1
