"""What a watch records: the steps' losses and each probe's numbers in the core's
:class:`~nndoctor.doctor.recorder.RecorderCore`, the first non-finite loss, and at the end the
run as :class:`~nndoctor.doctor.schema.Probes`, with the loop's facts and the end-of-run checks
(:mod:`~nndoctor.backends.torch.checks`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from nndoctor.backends.torch.checks import flat_tensors, sample_mixing, unused_parameters
from nndoctor.backends.torch.model import kind_of, untouched, weight_of
from nndoctor.backends.torch.sharded import local, norms
from nndoctor.backends.torch.statistics import (
    as_numpy,
    layer_weights,
    predicted,
    to_host,
    unit_states,
)
from nndoctor.backends.torch.task import nll_not_log_probs, refresh, view_arrays
from nndoctor.doctor.recorder import LayerInfo, RecorderCore, Schedule
from nndoctor.doctor.schema import UNKNOWN, LoopFacts, Probes, effective_targets

# steps a window of a loop without epochs holds at least
MIN_WINDOW = 8

log = logging.getLogger("nndoctor")
T = TypeVar("T")


def final_rows(rows: Any, whole: Any, now: Any) -> Any:
    """The loss's input ``rows`` of a probed step redone on ``now``, the model's output for the
    same batch with the final weights, where those rows were the first of the model's own
    output ``whole`` of that step, or of one tensor of it (a model that returns a tuple: the
    logits, then features); ``rows`` otherwise."""
    if not isinstance(rows, torch.Tensor):
        return rows
    wholes, nows = flat_tensors(whole), flat_tensors(now)
    if len(wholes) != len(nows):
        return rows
    for w, n in zip(wholes, nows, strict=True):
        if (
            n.shape == w.shape
            and len(rows) <= len(w)
            and torch.equal(rows, w[: len(rows)].detach())
        ):
            return n.detach()[: len(rows)]
    return rows


def _refreshed(view: Any, whole: Any, now: Any) -> Any:
    """``view`` redone on ``now`` (:func:`task.refresh`), through whichever tensor of the
    model's output ``whole`` (one, or a tuple's) the loss read; ``view`` as it was otherwise."""
    for old, new in zip(flat_tensors(whole), flat_tensors(now), strict=False):
        if (again := refresh(view, old, new)) is not None:
            return again
    return view


def _or(default: T, what: str, check: Callable[[], T]) -> T:
    """An end-of-run check's result, or ``default`` when it fails on this model (the rules
    that read it then stay silent; the rest of the report stands)."""
    try:
        return check()
    except Exception as exc:
        log.debug("nndoctor: the %s check was skipped: %s: %s", what, type(exc).__name__, exc)
        return default


class Recording:
    """The recorded numbers of one watch.

    Parameters
    ----------
    watch : Watch
        The owner: its parts (``forward``, ``loss``, ``grads``), ``step``, ``epoch_ends`` and
        the loop facts it counts.
    layers : list of (str, torch.nn.Module)
        The weighted layers, in registration order.
    schedule : Schedule
    """

    def __init__(self, watch: Any, layers: list[tuple[str, nn.Module]], schedule: Schedule):
        self.watch = watch
        self.layers = layers
        self.schedule = schedule
        self.core: RecorderCore | None = None
        self.diverged: dict[str, Any] | None = None
        # copies: for float64 CPU parameters the views share memory and would follow training
        self.init = [tuple(a.copy() for a in layer_weights(m)) for _, m in layers]

    @property
    def probes_held(self) -> int:
        return len(self.core.steps) if self.core is not None else 0

    def ensure_core(self) -> RecorderCore:
        if self.core is None:
            acts = self.watch.forward.activations
            infos = []
            for i, (name, m) in enumerate(self.layers):
                W = weight_of(m)
                act = acts[i] if i < len(acts) else UNKNOWN
                fan_in = math.prod(W.shape[1:])
                infos.append(LayerInfo(name, fan_in, W.shape[0], act, kind_of(m)))
            self.core = RecorderCore(infos, self.schedule)
        return self.core

    def flush(self) -> None:
        """Move the steps' losses to the host (one sync) and into the recorder."""
        if not self.watch.loss.unsynced:
            return
        core = self.ensure_core()
        first = len(core.losses)
        read = self.watch.loss.drain()
        core.step_losses([math.nan if v is None else v for v in read])
        seen = [v for v in read if v is not None]
        if self.diverged is None and not math.isfinite(sum(seen)):
            k = next(k for k, v in enumerate(read) if v is not None and not math.isfinite(v))
            bad = [n for (n, m) in self.layers if not torch.isfinite(local(weight_of(m))).all()]
            self.diverged = {
                "step": first + k,
                "epoch": len(self.watch.epoch_ends),
                "layer": bad[0] if bad else None,
            }
            if first + k == self.watch.step:  # this step's own loss: its weights are here yet
                self.watch.nan.at_nonfinite_loss(first + k)

    def probe(self) -> None:
        """A probed step, before its update: norms of the weights and gradients, the spread of
        the predictions, the gradient checks, and the forward statistics of its pass."""
        watch = self.watch
        step = watch.step
        self.flush()
        self._take_update_ratios()  # the previous probed step's update
        core = self.ensure_core()
        ws = [weight_of(m) for _, m in self.layers]
        grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in ws]
        # whole-tensor norms (combined across the ranks of a sharded model)
        device = [norms([w.detach() for w in ws]), norms([g.detach() for g in grads])]
        forward = watch.forward
        if forward.fixed_probe:
            forward.probe_forward()
        spread = self._predictions(forward.probe_out)
        if spread is not None:
            # the spread of the predictions over the probe rows (units), per output, averaged
            device.append(spread.std(dim=0, correction=0).mean())
        values = to_host(device)  # one transfer
        L = len(ws)
        losses = core.losses
        watch.nan.after_gradients(
            step, values[L : 2 * L], bool(losses) and math.isfinite(losses[-1])
        )
        watch.grads.keep_before(ws, list(values[:L]))
        output_std = values[2 * L] if len(values) > 2 * L else math.nan
        watch.grads.check_gradients()
        watch.grads.trace_loss(watch.loss.loss_edge, forward.out_edges)
        watch.loss.loss_edge, forward.out_edges = None, []
        watch.grads.check_stale()
        core.probe(step, values[:L], values[L : 2 * L], forward.last_stats, output_std)
        forward.last_stats = None

    def update_ratios(self) -> None:
        """The size of the probed step's update, now that it is done (read at the next probe:
        the step after a probe does not wait for the device)."""
        grads = self.watch.grads
        if self.core is not None and grads.before is not None:
            grads.measure_update([weight_of(m) for _, m in self.layers])
        grads.before = None

    def _take_update_ratios(self) -> None:
        ratios = self.watch.grads.take_update_ratios()
        if ratios is not None and self.core is not None:
            self.core.update_ratios(ratios)

    def end_epoch(self) -> None:
        self.flush()
        self.ensure_core().end_epoch()

    def probes(
        self,
        end_state: tuple[list[torch.Tensor | None], Any, np.ndarray, float, Any] | None,
        epochs: int | None,
        batch_size: int | None,
    ) -> Probes:
        """The run so far (see :meth:`Watch.probes`)."""
        watch = self.watch
        loss, forward = watch.loss, watch.forward
        trailing = [float(v) for v in (*loss.pending, *loss.parts)]
        if not all(math.isfinite(v) for v in trailing):
            loss.take_step_loss()  # a last loss without a step: training stopped on a NaN
        if watch.grads.before is not None:  # the last step was probed: the size of its update
            watch.guard("step", self.update_ratios)
        watch.guard("step", self._take_update_ratios)
        self.flush()
        core = self.ensure_core()
        if not watch.epoch_ends:
            # a user's loop has no epochs we can see: at most 100 windows of at least
            # MIN_WINDOW steps, whose means the curve rules read (minibatch noise averaged)
            n = len(core.losses)
            window = max(math.ceil(n / 100), MIN_WINDOW)
            chunks = np.array_split(np.asarray(core.losses), max(n // window, 1)) if n else []
            core.epoch_losses = [float(np.mean(c)) for c in chunks]
        if end_state is not None:
            zs, out, targets, probe_loss, view = end_state
        else:
            # where it fails, the report stands on the last probed step instead
            _or(None, "end-of-run forward pass", forward.probe_forward)
            zs, out, probe_loss = forward.last_z, loss.last_output, math.nan
            targets, view = loss.last_target, loss.view
            if loss.last_input is not None:
                # the last probed batch's output and view, redone with the final weights (kept
                # as they were where the model takes more than that input: a hidden state, a
                # mask): the last probe may be hundreds of steps before the end
                now = _or(None, "the final output", lambda: self._output_now(loss.last_input))
                batch, whole = loss.output_from
                if batch is not None:
                    # (rows kept at an earlier probe step are redone on that step's own batch)
                    again = (
                        now
                        if batch is loss.last_input
                        else _or(None, "the final output", lambda: self._output_now(batch))
                    )
                    out = final_rows(out, whole, again)
                if view is not None:
                    view = _or(view, "the final view", lambda: _refreshed(view, loss.last_out, now))
        acts = forward.activations
        states = [
            unit_states(
                zs[i] if i < len(zs) else None,
                weight_of(m).shape[0],
                acts[i] if i < len(acts) else UNKNOWN,
            )
            for i, (_, m) in enumerate(self.layers)
        ]
        P, T = self._end_outputs(out, targets, view)
        probes = core.finish(
            weights_init=self.init,  # type: ignore[arg-type]
            weights_final=[layer_weights(m) for _, m in self.layers],
            unit_states=states,
            probe_output=P,
            probe_target=T,
            probe_loss=probe_loss,
            diverged=self.diverged,
            steps_per_epoch=max(1, watch.step // max(len(core.epoch_losses), 1)),
            epochs=epochs or max(len(core.epoch_losses), 1),
            batch_size=batch_size or (len(T) if T.size else 1),
            loop=self._loop_facts(),
        )
        probes.eps = watch.eps
        probes.epochs_known = bool(watch.epoch_ends)
        probes.nan_source = watch.nan.source
        return probes

    def _output_now(self, x: torch.Tensor) -> Any:
        """The model's output on ``x`` with the current weights, the run left as it was."""
        with untouched(self.watch.model, x.device):
            return self.watch.model(x)

    def _predictions(self, out: Any) -> torch.Tensor | None:
        """The probe's predictions, one row per unit of the loss: the model's output (its
        rows), or the loss's own view when its targets are tokens or pixels."""
        view, task = self.watch.loss.view, self.watch.task_spec()
        if view is not None and not task.per_sample:
            return view.predictions if len(view.predictions) else None
        if isinstance(out, torch.Tensor) and out.dim() >= 1 and len(out):
            return predicted(out, self.watch.loss_spec())
        return None

    def _end_outputs(self, out: Any, targets: Any, view: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and targets at the end, one row per unit of the loss (a sample, a token,
        a pixel): the loss's own view when the targets are not one per sample (or the loop gave
        none), else the model's output and the targets as given."""
        task = self.watch.task_spec()
        if view is not None and (not task.per_sample or not isinstance(out, torch.Tensor)):
            return view_arrays(view)
        P = np.zeros((0, 1))
        if isinstance(out, torch.Tensor):
            P = predicted(out, self.watch.loss_spec()).cpu().numpy()
        T = as_numpy(targets)
        labels = self.watch.loss_spec().kind == "cross_entropy"
        if not T.size or (labels and T.ndim > 1 and T.shape[1:] != (1,)):
            return P, np.zeros((0, P.shape[1]))  # class targets with no per-sample view
        ignore = task.ignore_index
        if labels and ignore is not None and len(T) == len(P):
            keep = T.reshape(len(T), -1)[:, 0] != ignore  # rows the loss leaves out
            P, T = P[keep], T[keep]
        return P, effective_targets(T, P.shape[1], labels)

    def _rows_are_samples(self) -> bool | None:
        """Whether dim 0 of the loop's inputs is its samples, as the loss counts them (None
        when the loss's targets are unknown): not
        when the loss's targets have another leading size (a sequence-first language model
        feeds (time, batch) and scores time * batch tokens: its rows are time steps, which a
        causal model mixes by design; a graph net scores the nodes of a mask, a subset of the
        rows it mixes by design). The targets' size comes from the loss module's call or, for
        a functional loss, from its node in the graph."""
        first, loss = self.watch.forward.first_x, self.watch.loss
        shapes, view = loss.shapes, loss.view
        if shapes is not None and shapes[1]:
            rows = shapes[1][0]
        elif view is not None and view.raw[1].dim() >= 1 and view.raw[1].numel():
            rows = len(view.raw[1])
        else:
            return None
        return first is None or rows == len(first)

    def _loop_facts(self) -> LoopFacts:
        watch, grads = self.watch, self.watch.grads
        model, x = watch.model, watch.forward.probe_x
        optimizer_only, not_held = grads.out_of_step()
        missing = grads.without_gradient()
        samples = self._rows_are_samples()
        unused = _or(
            {},
            "unused parameters",
            lambda: unused_parameters(model, x, missing, grads.used_outputs),
        )
        return LoopFacts(
            parameters=grads.parameter_facts(),
            gradient_checks=grads.checks,
            stale_checks=grads.stale[0],
            decided_stale_checks=grads.stale[1],
            leaked_checks=grads.leaked[0],
            decided_leak_checks=grads.leaked[1],
            cut_terms=(watch.loss.cut_terms[0], watch.loss.cut_terms[1]),
            cut_reached=watch.loss.cut_reached,
            lr_steps=list(watch.lr_changes),
            eval_steps=watch.eval_steps,
            train_mode_evals=watch.train_mode_evals.calls,
            train_mode_eval_gaps=watch.train_mode_evals.gaps,
            steps=watch.step,
            has_norm_or_dropout=watch.has_norm,
            loss_shapes=watch.loss.shapes,
            output_activation=watch.forward.output_activation,
            loss_softmaxes=watch.loss.view.softmaxes if watch.loss.view is not None else 0,
            unused=unused,
            optimizer_only=optimizer_only,
            not_in_optimizer=not_held,
            adversarial=watch.adversarial,
            batch_mixing=(
                _or(None, "batch mixing", lambda: sample_mixing(model, x, samples is True))
                if samples is not False
                else None
            ),
            softmax_over_batch=watch.loss.softmax_over_batch if samples is not False else None,
            target_range=watch.loss.target_range,
            nll_scores=nll_not_log_probs(watch.loss.view),
        )
