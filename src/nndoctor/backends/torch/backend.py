"""The PyTorch backend: any ``torch.nn.Module`` seen by ``diagnose``.

``diagnose`` trains deep copies of the user's model with a plain loop (the user's model, its
weights and the global random state are never touched) watched by
:class:`~nndoctor.backends.torch.watch.Watch`; ``watch()`` puts the same Watch around the
user's own loop. Imported only when the user passes a torch model (torch is then loaded).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor._validate import as_float_array, check_instance, check_positive_int
from nndoctor.backends.torch.fixes import (
    QKNormMode,
    in_float32,
    uses_attention,
    warmup_lr,
    with_z_loss,
)
from nndoctor.backends.torch.loss import loss_spec
from nndoctor.backends.torch.model import (
    held,
    hidden_init,
    insert_activation,
    is_constant_init,
    relu_hidden,
    replace_output,
    reset_parameters,
    untouched,
    weighted_modules,
)
from nndoctor.backends.torch.nan_tap import locate_step, weight_growth
from nndoctor.backends.torch.task import (
    LossView,
    input_kind,
    loss_spec_of,
    read_loss,
    task_spec,
)
from nndoctor.backends.torch.validate import check_device, check_first_rows, check_loader_alone
from nndoctor.backends.torch.watch import Watch, optimizer_spec
from nndoctor.doctor.changes import (
    DATA_CHANGES,
    Change,
    ClipGradients,
    Float32,
    InsertActivation,
    LearningRate,
    QKNorm,
    Reinit,
    RemoveOutputActivation,
    ReplaceActivations,
    ReplaceLoss,
    ReplaceOutput,
    SetOption,
    SwitchOptimizer,
    Warmup,
    ZLoss,
    apply_data_change,
)
from nndoctor.doctor.recorder import PROBE_ROWS
from nndoctor.doctor.schema import (
    NON_FINITE_WEIGHTS,
    Fit,
    LayerSpec,
    LossSpec,
    Probes,
    Run,
    TaskSpec,
    batch_mean_loss,
)

# the loop's stability settings diagnose takes (and the trials set): steps of a linear warmup,
# the gradient-norm clip, float16 loss scaling
LOOP_SETTINGS = ("warmup", "clip", "grad_scaler")


def loop_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The stability settings of ``options``, checked (one sentence per problem)."""
    out: dict[str, Any] = {}
    warmup = options.get("warmup")
    if warmup is not None:
        out["warmup"] = check_positive_int(warmup, "warmup")
    clip = options.get("clip")
    if clip is not None:
        if not (isinstance(clip, int | float) and clip > 0 and math.isfinite(clip)):
            raise ValueError(f"clip must be a positive number (a gradient norm), got {clip!r}")
        out["clip"] = float(clip)
    if options.get("grad_scaler"):
        out["grad_scaler"] = True
    return out


# rows of the traced forward pass that reads the architecture
TRACE_ROWS = 8
# rows (at most) of the batch whose loss tells the data's structure
TASK_ROWS = 64
# the recorded run probes at least this many steps apart (while that leaves 16 probes): a
# probe on the fixed probe batch costs about two milliseconds whatever the model, a step of a
# small model a fraction of one, and 100 probes would cost such a run several times its length
DIAGNOSE_MIN_EVERY = 8


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu")
        if not value.is_floating_point():
            return value.numpy().astype(np.int64)
        value = value.double().numpy()
    return np.asarray(value)


def _from_loader(loader: Iterable) -> tuple[np.ndarray, np.ndarray, int | None, bool | None]:
    """All ``(inputs, targets)`` batches of a DataLoader as arrays, its batch size and
    whether it shuffles (None when it cannot tell)."""
    xs, ys = [], []
    for i, batch in enumerate(loader):
        if not isinstance(batch, list | tuple) or len(batch) != 2:
            raise TypeError(
                f"X must yield (inputs, targets) batches; batch {i} is {type(batch).__name__}"
            )
        xs.append(_to_numpy(batch[0], "inputs"))
        ys.append(_to_numpy(batch[1], "targets"))
    if not xs:
        raise ValueError("the DataLoader X yields no batches")
    sampler = getattr(loader, "sampler", None)
    shuffle = None
    if sampler is not None:
        shuffle = isinstance(sampler, torch.utils.data.RandomSampler)
    return np.concatenate(xs), np.concatenate(ys), getattr(loader, "batch_size", None), shuffle


def as_tensor(a: np.ndarray, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """Data for the model: integers (labels, token ids) as int64, the rest in its dtype."""
    if np.issubdtype(a.dtype, np.integer):
        return torch.as_tensor(a, dtype=torch.long, device=device)
    return torch.as_tensor(a, dtype=dtype, device=device)


def _parameter_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    if p is None:
        raise ValueError("the model has no parameters to train")
    return p.device, p.dtype


class TorchBackend:
    """:class:`~nndoctor.doctor.protocol.Backend` for ``torch.nn.Module`` models."""

    name = "torch"
    # the costly checks only when the recorded run leaves them something to judge: a small
    # PyTorch run costs less than they do (benchmarks/bench_diagnose_torch.py)
    deferred_checks = True
    # trials train in this process: a forked child inherits torch's thread pools and CUDA
    # state, which fork does not copy safely
    fork_safe = False

    # --- the run ---

    def prepare(
        self,
        model: nn.Module,
        X: Any,
        Y: Any,
        loss: Any,
        optimizer: Callable,
        epochs: int,
        batch_size: int | None,
        shuffle: bool,
        seed: int,
        options: dict[str, Any],
    ) -> Run:
        """Validate and copy everything ``diagnose`` needs into a :class:`Run`; ``options``:
        ``device``, ``zero_grad``, ``scheduler``, and the loop's stability settings
        ``warmup`` (steps of a linear learning-rate warmup), ``clip`` (gradient-norm
        clipping) and ``grad_scaler`` (float16 loss scaling with ``torch.amp.GradScaler``)."""
        unknown = set(options) - {"device", "zero_grad", "scheduler", *LOOP_SETTINGS}
        if unknown:
            raise TypeError(f"unknown PyTorch setting(s) {sorted(unknown)}")
        device = options.get("device")
        zero_grad = options.get("zero_grad", True)
        scheduler = options.get("scheduler")
        check_instance(loss, nn.Module, "loss", "")
        if not callable(loss):
            raise TypeError(
                "loss must be a torch loss module or a callable (output, target) -> scalar "
                f"tensor, got {type(loss).__name__}"
            )
        if isinstance(optimizer, torch.optim.Optimizer) or not callable(optimizer):
            raise TypeError(
                "optimizer must be a factory params -> torch.optim.Optimizer, e.g. "
                "lambda p: torch.optim.SGD(p, lr=0.1); got "
                f"{type(optimizer).__name__}"
            )
        if scheduler is not None and not callable(scheduler):
            raise TypeError("scheduler must be a factory optimizer -> LR scheduler")
        epochs = check_positive_int(epochs, "epochs")
        check_loader_alone(X, Y)
        if Y is None and not isinstance(X, np.ndarray | torch.Tensor):
            Xv, Yv, loader_bs, loader_shuffle = _from_loader(X)
            batch_size = batch_size or loader_bs
            shuffle = loader_shuffle if loader_shuffle is not None else shuffle
        else:
            Xv = _to_numpy(X, "X")
            Yv = Xv if Y is None else _to_numpy(Y, "Y")
        # integer inputs (token ids for an Embedding) stay integers
        if not np.issubdtype(np.asarray(Xv).dtype, np.integer):
            Xv = as_float_array(Xv, "X", ndim=None)
        if Xv.ndim == 0 or len(Xv) == 0:
            raise ValueError("X has no samples")
        if Yv is not Xv and np.issubdtype(Yv.dtype, np.floating):
            Yv = as_float_array(Yv, "Y", ndim=None)
        if len(Yv) != len(Xv):
            raise ValueError(f"X has {len(Xv)} samples (rows) but Y has {len(Yv)}")
        bs = len(Xv) if batch_size is None else check_positive_int(batch_size, "batch_size")
        dev, dtype = check_device(model, device)
        private = copy.deepcopy(model)
        # one forward pass and one loss call on the first rows of a copy where training will
        # run (a lazy layer it initialises is the copy's): a mistake is named here in one
        # sentence, not deep inside the training loop
        rows = slice(0, TRACE_ROWS)
        check_first_rows(
            copy.deepcopy(private).to(dev),
            as_tensor(Xv[rows], dtype, dev),
            Yv,
            as_tensor(Yv[rows], dtype, dev),
            loss,
        )
        remap = {id(p): name for name, p in model.named_parameters()}
        settings = {
            "zero_grad": bool(zero_grad),
            "scheduler": scheduler,
            "train_mode": model.training,
            "device": dev,
            "dtype": dtype,
            "remap": remap,
            **loop_settings(options),
        }
        run = Run(
            self, private, Xv, Yv, loss, optimizer, epochs, min(bs, len(Xv)), bool(shuffle),
            seed, options=settings,
        )  # fmt: skip
        settings["task"], settings["loss_view"] = self._read_task(run)
        return run

    def _read_task(self, run: Run) -> tuple[TaskSpec, LossView | None]:
        """The data's structure, read off the loss of one batch of the training batch size and
        of half of it on a copy (:mod:`~nndoctor.backends.torch.task`): a loss whose scale
        doubles with the batch sums its units, one whose scale stays averages them."""
        opts = run.options
        n = min(run.batch_size, len(run.X), TASK_ROWS)
        views = []
        for rows in (n, max(n // 2, 1)):
            model = copy.deepcopy(run.model).to(opts["device"])
            model.train(opts["train_mode"])
            devices = [opts["device"].index or 0] if opts["device"].type == "cuda" else []
            with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                xb = as_tensor(run.X[:rows], opts["dtype"], opts["device"])
                yb = as_tensor(run.Y[:rows], opts["dtype"], opts["device"])
                try:
                    out = model(xb)
                    views.append((read_loss(run.loss(out, yb)), out.numel()))
                except Exception:  # the run itself will say what is wrong, where it happens
                    views.append((None, 0))
        (view, outputs), (half, _) = views
        spec = task_spec(view, input_kind(run.X), n, outputs)
        if view is not None and half is not None and rows != n:
            per_row = math.isfinite(view.scale) and math.isclose(
                view.scale / max(half.scale, 1e-300), n / rows, rel_tol=0.05
            )
            if per_row and not spec.per_sample:  # a sum over the batch's units
                spec = replace(spec, scale=view.scale / n * run.batch_size)
        return spec, view

    def _optimizer(self, run: Run, model: nn.Module) -> torch.optim.Optimizer:
        """The user's optimizer on ``model``'s parameters. A factory that picks parameters of
        the user's original model (a closure over it) gets the copy's same-named ones."""
        opt = run.optimizer(model.parameters())
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(
                f"the optimizer factory returned {type(opt).__name__}, not a torch.optim.Optimizer"
            )
        names = run.options["remap"]
        mine = dict(model.named_parameters())
        own = {id(p) for p in mine.values()}
        foreign = any(id(p) not in own for g in opt.param_groups for p in g["params"])
        if foreign:
            groups = [
                {**g, "params": [mine[names[id(p)]] if id(p) in names else p for p in g["params"]]}
                for g in opt.param_groups
            ]
            opt = type(opt)(groups, **opt.defaults)
        if run.options.get("unfreeze"):
            stepped = held(opt)
            missing = [p for p in model.parameters() if id(p) not in stepped]
            if missing:
                opt.add_param_group({"params": missing})
        lr = run.options.get("lr")
        if lr is not None:
            for g in opt.param_groups:
                g["lr"] = lr
                if "initial_lr" in g:
                    g["initial_lr"] = lr
        return opt

    def _tensors(self, run: Run) -> tuple[torch.Tensor, torch.Tensor]:
        dev, dtype = run.options["device"], run.options["dtype"]
        return as_tensor(run.X, dtype, dev), as_tensor(run.Y, dtype, dev)

    def _train(
        self,
        run: Run,
        epochs: int,
        seed: int,
        record: bool,
        progress: Any = None,
        inspect: tuple[int, Callable[[nn.Module, torch.Tensor, torch.Tensor], None]] | None = None,
        stop_below: float | None = None,
    ) -> tuple[Fit, Watch | None]:
        """Train a copy of ``run``; ``record``: watched. ``inspect``: ``(step, fn)`` calls
        ``fn(model, inputs, targets)`` before that step and stops there (the run is seeded:
        it is the same step as in any other run of the same seed). ``stop_below``: stop after
        the first epoch whose mean loss is at most that."""
        opts = run.options
        # the user's random state is theirs: every draw here happens in a forked one
        devices = [opts["device"].index or 0] if opts["device"].type == "cuda" else []
        # the user's warnings (a broadcasting loss, say) become findings, not noise from
        # every re-run
        with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(seed)
            model = copy.deepcopy(run.model).to(opts["device"])
            model.train(opts["train_mode"])
            if opts.get("unfreeze"):
                for p in model.parameters():
                    p.requires_grad_(True)
            opt = self._optimizer(run, model)
            sched = opts["scheduler"](opt) if opts["scheduler"] is not None else None
            X, Y = self._tensors(run)
            n, bs = len(X), run.batch_size
            steps = -(-n // bs) * epochs
            loss_fn = run.loss
            if opts.get("z_loss"):
                loss_fn = with_z_loss(run.loss, opts["z_loss"])
            base_lr = [g["lr"] for g in opt.param_groups]
            warmup, clip = opts.get("warmup") or 0, opts.get("clip")
            scaler = torch.amp.GradScaler(opts["device"].type) if opts.get("grad_scaler") else None
            # a fix a trial makes for the whole run: attention's queries and keys normalised,
            # modules in float32
            fixes = contextlib.ExitStack()
            if opts.get("qk_norm"):
                fixes.enter_context(QKNormMode())
            if opts.get("float32"):
                fixes.enter_context(in_float32(model, list(opts["float32"])))
            watch = (
                Watch(model, opt, loss=run.loss, total_steps=steps, min_every=DIAGNOSE_MIN_EVERY)
                if record
                else None
            )
            if watch is not None:
                rows = np.sort(np.random.default_rng(run.seed).permutation(n)[:PROBE_ROWS])
                watch.set_probe_batch(X[torch.as_tensor(rows, device=X.device)])
            rng = np.random.default_rng(seed)
            epoch_loss: list[float] = []
            diverged = None
            step = 0
            start = time.perf_counter()
            try:
                fixes.__enter__()
                for epoch in range(epochs):
                    order = (
                        torch.as_tensor(rng.permutation(n), device=X.device)
                        if run.shuffle
                        else None
                    )
                    total, count = 0.0, 0
                    for lo in range(0, n, bs):
                        idx = order[lo : lo + bs] if order is not None else slice(lo, lo + bs)
                        xb, yb = X[idx], Y[idx]
                        if inspect is not None and step == inspect[0]:
                            inspect[1](model, xb, yb)
                            diverged = {"epoch": epoch, "step": step, "inspected": True}
                            break
                        if step < warmup:
                            rates = warmup_lr(base_lr, step, warmup)
                            for g, lr in zip(opt.param_groups, rates, strict=True):
                                g["lr"] = lr
                        if opts["zero_grad"]:
                            opt.zero_grad(set_to_none=True)
                        out = model(xb)
                        if opts.get("reshape_target") and yb.numel() == out.numel():
                            yb = yb.reshape(out.shape)
                        value_t = loss_fn(out, yb)
                        if watch is not None and not isinstance(run.loss, nn.Module):
                            watch.log(value_t, out, yb)
                        value = float(value_t.detach())
                        total += value
                        count += 1
                        if not math.isfinite(value) and scaler is None:
                            diverged = {"epoch": epoch, "step": step, "loss": value}
                            if watch is not None:
                                if not watch.loss.seen_by_hook:
                                    # no backward pass follows, which would tell the watch
                                    watch.log(value_t)
                                locate_nan(self, run, seed, watch, step, yb)
                            break
                        if scaler is not None:
                            scaler.scale(value_t).backward()
                            scaler.unscale_(opt)
                        else:
                            value_t.backward()
                        if clip:
                            nn.utils.clip_grad_norm_(model.parameters(), clip)
                        if scaler is not None:
                            scaler.step(opt)
                            scaler.update()
                        else:
                            opt.step()
                        step += 1
                    epoch_loss.append(total / max(count, 1))
                    if diverged is not None:
                        break
                    if stop_below is not None and epoch_loss[-1] <= stop_below:
                        break
                    if watch is not None:
                        watch.end_epoch()
                    if sched is not None:
                        sched.step()
            finally:
                fixes.close()
                if watch is not None:
                    watch.close()
            fit = Fit(model, np.asarray(epoch_loss), diverged, time.perf_counter() - start)
        return fit, watch

    # --- the Backend protocol ---

    def record(self, run: Run, progress: bool | None) -> tuple[Probes, Fit]:
        fit, watch = self._train(run, run.epochs, run.seed, True, progress)
        assert watch is not None
        rows = np.sort(np.random.default_rng(run.seed).permutation(len(run.X))[:PROBE_ROWS])
        Xp = as_tensor(run.X[rows], run.options["dtype"], run.options["device"])
        zs, out = watch.end_state(Xp)
        P = self.predict(fit.model, run.X[rows])
        with np.errstate(all="ignore"):
            probe_loss = self.loss_value(run, P, run.Y[rows])
        view = self._view(run, fit.model, Xp, run.Y[rows])
        probes = watch.probes(
            end_state=(zs, out, run.Y[rows], probe_loss, view),
            epochs=run.epochs,
            batch_size=run.batch_size,
        )
        return probes, fit

    def _view(self, run: Run, model: nn.Module, X: torch.Tensor, Y: np.ndarray) -> LossView | None:
        """The loss's own view of the probe batch with the end weights (the run left as it
        was: its random state forked, its norm statistics restored)."""
        opts = run.options
        buffers = [b.clone() for b in model.buffers()]
        devices = [X.device.index or 0] if X.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.enable_grad():
                return read_loss(run.loss(model(X), as_tensor(Y, opts["dtype"], X.device)))
        except Exception:  # a loss the probe batch breaks: the end state has no view
            return None
        finally:
            with torch.no_grad():
                for b, saved in zip(model.buffers(), buffers, strict=True):
                    b.copy_(saved)

    def fit(self, run: Run, epochs: int, seed: int, *, stop_below: float | None = None) -> Fit:
        return self._train(run, epochs, seed, False, stop_below=stop_below)[0]

    def predict(self, model: nn.Module, X: np.ndarray) -> np.ndarray:
        dev, dtype = _parameter_device_dtype(model)
        outs = []
        with untouched(model, dev):
            for lo in range(0, len(X), 4096):
                xb = as_tensor(X[lo : lo + 4096], dtype, dev)
                outs.append(model(xb).detach().to("cpu", torch.float64))
        return torch.cat(outs).numpy()  # the model's own output shape

    def loss_value(self, run: Run, P: np.ndarray, Y: np.ndarray) -> float:
        dtype = run.options["dtype"]

        def one(p: np.ndarray, t: np.ndarray) -> float:
            tt = as_tensor(t, dtype, "cpu")
            pt = torch.as_tensor(p, dtype=dtype)
            if pt.shape != tt.shape and pt.numel() == tt.numel() and tt.is_floating_point():
                pt = pt.reshape(tt.shape) if run.options.get("reshape_target") else pt
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(run.loss(pt, tt))

        return batch_mean_loss(one, P, Y, run.batch_size)

    def describe(self, run: Run) -> list[LayerSpec]:
        """Weighted layers in forward order, each followed by the activation read off a
        traced forward pass (``"unknown"`` where none fits)."""
        model = copy.deepcopy(run.model)
        opt = self._optimizer(run, model)
        xb = as_tensor(run.X[:TRACE_ROWS], run.options["dtype"], "cpu")
        watch = Watch(model.to("cpu"), opt)
        try:
            with torch.random.fork_rng(devices=[]):
                watch.trace(xb)
        finally:
            watch.close()
        return watch.layer_specs()

    def loss_spec(self, run: Run) -> LossSpec:
        # a function around a standard loss says what it is through its graph
        return loss_spec_of(run.options.get("loss_view"), loss_spec(run.loss))

    def task_spec(self, run: Run) -> TaskSpec:
        return run.options.get("task") or TaskSpec(known=False)

    def optimizer_spec(self, run: Run) -> dict[str, Any]:
        opt = self._optimizer(run, copy.deepcopy(run.model))
        if run.options["scheduler"] is not None:
            # the scheduler sets the first step's rate (a warm-up's start) and its base rate
            run.options["scheduler"](opt)
        return optimizer_spec(opt)

    def n_parameters(self, run: Run) -> int:
        return sum(p.numel() for p in run.model.parameters())

    def reinitialise(self, run: Run, seed: int, init: str | None = None) -> Run:
        if init is not None:
            return replace(run, model=hidden_init(run.model, init, seed))
        if is_constant_init(run.model):
            return run  # another seed of a constant init is the same net
        return replace(run, model=reset_parameters(run.model, seed))

    def same_weights(self, a: Run, b: Run) -> bool:
        pa, pb = dict(a.model.named_parameters()), dict(b.model.named_parameters())
        return all(torch.equal(pa[k], pb[k]) for k in pa)

    def gradient_check(self, run: Run) -> dict[str, Any] | None:
        # autograd computes the gradients: there is no hand-written backward to check
        return None

    def apply(self, run: Run, change: Change) -> Run | None:
        make = _CHANGES.get(type(change))
        return None if make is None else make(run, change)


def locate_nan(
    backend: TorchBackend, run: Run, seed: int, watch: Watch, step: int, target: torch.Tensor
) -> None:
    """Where step ``step``'s non-finite loss came from (its weights are still those it ran
    with). Weights already non-finite: the update of the step before made them so; that
    step is trained to again (the run is seeded) and replayed, its backward pass included.
    """
    found = watch.nan.locate(step, loss_fn=run.loss, target=target)
    if found is None or found.kind != NON_FINITE_WEIGHTS or step == 0:
        return
    init = [w for w, _ in watch.recording.init]
    reshape = bool(run.options.get("reshape_target"))

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # the target as the training loop hands it to the loss
        return run.loss(out, y.reshape(out.shape) if reshape and y.numel() == out.numel() else y)

    def before(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> None:
        earlier, _ = locate_step(model, (xb,), {}, step - 1, loss_fn=loss, target=yb, backward=True)
        growth = weight_growth(weighted_modules(model), init)
        if earlier is None:
            # finite loss and gradients, non-finite weights after the update: its size
            found.values["update_overflowed"] = True
            found.weight_growth = max(found.weight_growth, growth)
            return
        earlier.weight_growth = growth
        watch.nan.source = earlier

    backend._train(run, run.epochs, seed, False, inspect=(step - 1, before))


# --- the changes this backend can make, one function each ---


def _learning_rate(run: Run, change: LearningRate) -> Run:
    return replace(run, options={**run.options, "lr": change.value})


def _switch_optimizer(run: Run, change: SwitchOptimizer) -> Run | None:
    if change.name != "adam":
        return None
    lr = change.lr
    return replace(
        run, optimizer=lambda p: torch.optim.Adam(p, lr=lr), options={**run.options, "lr": None}
    )


def _set_option(run: Run, change: SetOption) -> Run:
    return replace(run, options={**run.options, change.key: change.value})


def _reinit(run: Run, change: Reinit) -> Run:
    return TORCH.reinitialise(run, run.seed, change.init)


def _with_model(run: Run, model: nn.Module | None) -> Run | None:
    return None if model is None else replace(run, model=model)


def _insert_activation(run: Run, change: InsertActivation) -> Run | None:
    return _with_model(run, insert_activation(run.model, change.activation))


def _remove_output_activation(run: Run, change: RemoveOutputActivation) -> Run | None:
    return _with_model(run, replace_output(run.model, None))


def _replace_output(run: Run, change: ReplaceOutput) -> Run | None:
    act = None if change.activation == "identity" else change.activation
    return _with_model(run, replace_output(run.model, act))


def _replace_activations(run: Run, change: ReplaceActivations) -> Run | None:
    return _with_model(run, relu_hidden(run.model, run.seed))


def _replace_loss(run: Run, change: ReplaceLoss) -> Run | None:
    if change.loss != "mse":
        return None
    model = replace_output(run.model, None)
    return None if model is None else replace(run, model=model, loss=nn.MSELoss())


def _warmup(run: Run, change: Warmup) -> Run:
    return replace(run, options={**run.options, "warmup": change.steps})


def _clip(run: Run, change: ClipGradients) -> Run:
    return replace(run, options={**run.options, "clip": change.max_norm})


def _qk_norm(run: Run, change: QKNorm) -> Run | None:
    x = as_tensor(run.X[:TRACE_ROWS], run.options["dtype"], run.options["device"])
    if not uses_attention(run.model, x):
        return None  # no scaled_dot_product_attention to normalise
    return replace(run, options={**run.options, "qk_norm": True})


def _z_loss(run: Run, change: ZLoss) -> Run:
    return replace(run, options={**run.options, "z_loss": change.weight})


def _float32(run: Run, change: Float32) -> Run | None:
    if change.module and change.module not in dict(run.model.named_modules()):
        return None
    return replace(run, options={**run.options, "float32": [change.module]})


_CHANGES: dict[type, Callable[[Run, Any], Run | None]] = {
    **dict.fromkeys(DATA_CHANGES, apply_data_change),
    LearningRate: _learning_rate,
    SwitchOptimizer: _switch_optimizer,
    SetOption: _set_option,
    Reinit: _reinit,
    InsertActivation: _insert_activation,
    RemoveOutputActivation: _remove_output_activation,
    ReplaceOutput: _replace_output,
    ReplaceActivations: _replace_activations,
    ReplaceLoss: _replace_loss,
    Warmup: _warmup,
    ClipGradients: _clip,
    QKNorm: _qk_norm,
    ZLoss: _z_loss,
    Float32: _float32,
}


TORCH = TorchBackend()
