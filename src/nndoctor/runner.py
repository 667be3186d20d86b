"""``nndoctor run train.py [args...]``: watch an unmodified training script.

The script runs as ``python train.py args`` would run it: same ``sys.argv``, ``__name__ ==
"__main__"``, working directory, ``sys.path[0]`` (the script's folder) and exit status. While it
runs, PyTorch's global hooks see every module called and every optimizer that steps, and
:class:`GlobalWatcher` starts a watch for each (model, optimizer) pair at the optimizer's
first step: one report section per model. ``DistributedDataParallel`` and ``DataParallel``
wrappers are looked through: the model inside is watched.

When the script ends, raises or is interrupted (SIGINT), the watches are closed and their reports
printed on stderr (the script's own stdout stays clean). A script that raises keeps its own
traceback (without the runner's frames) and exits with status 1; ``sys.exit(n)`` exits with n;
SIGINT with 130, as a shell reports it. nndoctor changes that status only when the script
exited 0 and a report could not be built or written (1). Its options are parsed in
:mod:`nndoctor.cli`; the output paths are checked before the script starts.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
import types
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from nndoctor._files import write_text_atomic

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell shows for a script stopped by Ctrl-C


@dataclass
class ScriptResult:
    """How the script ended: its exit status and the exception that ended it, if any, and
    its global names when it ran to its end (they keep its models alive for the report)."""

    status: int
    error: BaseException | None = None
    names: dict[str, Any] | None = None


def _exit_status(code: Any) -> int:
    """The status ``sys.exit(code)`` gives: None is 0, an int itself, anything else 1 (printed
    on stderr by Python itself, as here)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return EXIT_ERROR


def _print_script_traceback(exc: BaseException, script: str) -> None:
    """The traceback Python would print, from the script's first frame on (the runner's and
    runpy's frames are noise to the user)."""
    tb = exc.__traceback__
    target = os.path.abspath(script)
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != target:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb if tb is not None else exc.__traceback__)


@contextmanager
def _as_main(script: str, args: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` and ``sys.path[0]`` as ``python script args`` sets them, restored after."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def run_script(script: str, args: Sequence[str] = ()) -> ScriptResult:
    """Run ``script`` as ``__main__`` with ``args``; never raises for what the script does.

    Returns
    -------
    ScriptResult
        ``status`` is what ``python script args`` would exit with; the traceback of an
        exception (KeyboardInterrupt included) is already printed on stderr.
    """
    if not os.path.isfile(script):
        raise FileNotFoundError(f"no such script: {script}")
    with _as_main(script, args):
        try:
            names = runpy.run_path(script, run_name="__main__")
        except SystemExit as exc:
            return ScriptResult(_exit_status(exc.code), exc if exc.code else None)
        except KeyboardInterrupt as exc:
            _print_script_traceback(exc, script)
            return ScriptResult(EXIT_INTERRUPTED, exc)
        except BaseException as exc:  # the script's own failure: report it as Python would
            _print_script_traceback(exc, script)
            return ScriptResult(EXIT_ERROR, exc)
    return ScriptResult(0, names=names)


@dataclass
class _Built:
    """An optimizer the script built: its class and, until it steps, the tensors it holds and
    the top-level modules seen that own some of them (kept alive, so that one that never steps
    can be named when the script ends, even after it is gone)."""

    name: str
    tensors: dict[int, Any]  # id -> tensor; emptied at the first step
    models: list[Any] = field(default_factory=list)

    def attach(self, module: Any) -> None:
        if any(id(p) in self.tensors for p in module.parameters()):
            self.models.append(module)

    def step(self) -> None:
        self.tensors, self.models = {}, []


@dataclass
class _Pair:
    """One trained model, its optimizer and the watch on them."""

    name: str
    model: Any
    optimizer: Any
    watch: Any


def _unwrap(model: Any) -> Any:
    """The module a data-parallel wrapper holds (its layers are the user's)."""
    from torch import nn

    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


# how many levels up from a part the module that holds all the parts is looked for
MAX_ENCLOSING_DEPTH = 8


def _parent(module: Any) -> Any:
    """The module whose ``_modules`` holds ``module`` (found through the garbage collector's
    referrers: a module does not know its parent), or None."""
    import gc

    from torch import nn

    def holds(owner: Any, modules: dict) -> bool:
        return isinstance(owner, nn.Module) and owner.__dict__.get("_modules") is modules

    for modules in gc.get_referrers(module):  # the parent's _modules dict
        if not isinstance(modules, dict):
            continue
        for referrer in gc.get_referrers(modules):
            if holds(referrer, modules):  # (an instance whose attributes live inline)
                return referrer
            if isinstance(referrer, dict) and referrer.get("_modules") is modules:
                # the parent's attribute dict, referred to by the parent
                for owner in gc.get_referrers(referrer):
                    if holds(owner, modules):
                        return owner
    return None


def _enclosing(models: list[Any]) -> list[Any]:
    """``[the module of which every one of models is a part]`` when there is one: a script that
    calls ``model.forward(x)`` (or ``model.forward_train(...)``) skips the module call hooks,
    so the parts the model calls are seen as the top-level modules, and the model they make up
    is the one to watch (one section, not one per part); else ``models`` (separate models
    stepped by one optimizer)."""
    if len(models) < 2:
        return models
    ancestor = _parent(models[0])
    for _ in range(MAX_ENCLOSING_DEPTH):
        if ancestor is None:
            return models
        inside = {id(m) for m in ancestor.modules()}
        if all(id(m) in inside for m in models):
            return [ancestor]
        ancestor = _parent(ancestor)
    return models


class _LastLoss:
    """The scalar ``.backward()`` was last called on (fed to a watch that starts at the step
    it belongs to), seen through :func:`nndoctor.backends.torch.listen_backward`."""

    def __init__(self) -> None:
        self.value: Any = None
        self.listener: Any = None  # the registration's handle while listening
        # until the first watch starts: where a non-finite loss came from, read off its graph
        # before the backward pass frees it (the step a watch starts at cannot be replayed)
        self.early = True
        self.source: Any = None
        self.reached: set[int] = set()  # the parameters the source's operation depends on

    def on_backward(self, tensor: Any) -> None:
        # no detach here (a few microseconds on every step of the run): the watch detaches
        # what it is handed, once
        self.value = tensor
        if self.early and tensor.numel() == 1 and not bool(tensor.detach().isfinite()):
            from nndoctor.backends.torch.nan_replay import graph_fault
            from nndoctor.backends.torch.task import reached_under

            found = graph_fault(tensor, 0)
            if found is not None:
                self.source, self.reached = found[0], reached_under(found[1])

    def source_for(self, model: Any) -> Any:
        """The source read before the first watch, as ``model``'s watch tells it: an operation
        that depends on none of its parameters ran outside it (on its inputs: a graph
        learner's adjacency), not in the loss."""
        if self.source is None or self.reached & {id(p) for p in model.parameters()}:
            return self.source
        return replace(self.source, phase="input", module="")


@dataclass
class GlobalWatcher:
    """PyTorch's global module and optimizer hooks, starting one watch per (model, optimizer).

    A global forward pre-hook and forward hook note the *top-level* calls (a module called
    while no other module runs: the model, or a loss module such as ``nn.MSELoss``). At an
    optimizer's first step (:meth:`pair`: from a global step pre-hook, or called by a framework
    once the gradients are ready), the top-level modules whose trainable parameters it holds
    each get a watch, which is handed the loss of that step (the last loss module's output and
    target, else the scalar ``.backward()`` was called on) and records from that step on. The
    first step's forward pass ran before the watch existed: its layer statistics are missing
    from the first probe, nothing else is.

    Parameters
    ----------
    make_watch : callable
        ``make_watch(model, optimizer, loss_module, every, alerts)`` -> a watch with ``close()``
        and ``report()`` (:func:`torch_watch` in ``nndoctor run``; tests pass their own).
    every : int or None
        Probe interval (None: the watch's default schedule).
    alerts : bool
        Whether the watches say their findings while the script runs.
    pair_on_step : bool
        Pair an optimizer at its step pre-hook (False: the caller calls :meth:`pair`).
    """

    make_watch: Callable[..., Any]
    every: int | None = None
    alerts: bool = True
    pair_on_step: bool = True
    pairs: list[_Pair] = field(default_factory=list)
    # top-level modules seen so far (weak: a script may build and drop many)
    _roots: weakref.WeakValueDictionary[int, Any] = field(
        default_factory=weakref.WeakValueDictionary
    )
    _loss_call: tuple[Any, Any, Any, Any] | None = None  # (module, output, input, target)
    _seen: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    _waiting: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)  # no model found
    _depth: int = 0
    _handles: list[Any] = field(default_factory=list)
    _forward_handles: list[Any] = field(default_factory=list)
    _last_loss: _LastLoss = field(default_factory=_LastLoss)
    _last_paired: Any = None  # the optimizer of the last step, when it has its watch
    # every optimizer the script built -> what it holds until it steps (one that never steps
    # beside one that does: a GAN's forgotten discriminator step)
    _built: weakref.WeakKeyDictionary[Any, _Built] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _records: list[_Built] = field(default_factory=list)
    # the first values of each top-level module's parameters (a few each), when first seen:
    # a model whose weights a loop updates by hand has no optimizer, and yet changed
    _first_values: weakref.WeakKeyDictionary[Any, list[Any]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _init: Any = None  # Optimizer.__init__ as torch defines it, while it is wrapped
    # the script's globals once it ran to its end: the sections made after it (never_stepped)
    # name its models by them
    script_names: dict[str, Any] | None = None
    # a loop that updates its weights by hand, with no optimizer (nndoctor.backends.torch.hand):
    # the listener to every backward pass, each model's values after the last one, and the
    # watches of the models found so updated (stepped once each backward pass is done)
    _hand: Any = None
    _traces: weakref.WeakKeyDictionary[Any, Any] = field(default_factory=weakref.WeakKeyDictionary)
    _by_hand: list[Any] = field(default_factory=list)
    _stepped: bool = False  # whether any optimizer stepped (then no update is by hand)

    def install(self) -> None:
        import torch
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        from nndoctor.backends.torch import listen_backward

        self._loss_type = torch.nn.modules.loss._Loss
        self._listen()
        if self.pair_on_step:
            self._handles.append(register_optimizer_step_pre_hook(self._pre_step))
            self._hand = listen_backward(self._on_backward)
        self._note_optimizers(torch.optim.Optimizer)

    def _note_optimizers(self, base: Any) -> None:
        """Wrap ``base.__init__`` (every optimizer class calls it) to note each optimizer built
        and what it holds (:class:`_Built`)."""
        from nndoctor.backends.torch.hand import HandUpdates

        init, records, built = base.__init__, self._records, self._built

        def noted_init(optimizer: Any, *args: Any, **kwargs: Any) -> None:
            init(optimizer, *args, **kwargs)
            if isinstance(optimizer, HandUpdates):  # the runner's own stand-in
                return
            tensors = {id(p): p for g in optimizer.param_groups for p in g["params"]}
            record = _Built(type(optimizer).__name__, tensors)
            for module in list(self._roots.values()):
                record.attach(module)
            records.append(record)
            built[optimizer] = record

        self._init = (base, init)
        base.__init__ = noted_init

    def _listen(self) -> None:
        """Note top-level module calls and the scalar ``.backward()`` is called on (until
        every optimizer that stepped is paired)."""
        from torch.nn.modules.module import (
            register_module_forward_hook,
            register_module_forward_pre_hook,
        )

        from nndoctor.backends.torch import listen_backward

        if not self._forward_handles:
            self._forward_handles = [
                register_module_forward_pre_hook(self._pre_forward),
                register_module_forward_hook(self._post_forward, always_call=True),
            ]
            self._last_loss.listener = listen_backward(self._last_loss.on_backward)

    @property
    def settled(self) -> bool:
        """Whether every optimizer that stepped has its watches (the global forward hooks are
        off until one steps that has none)."""
        return not self._forward_handles

    def _stop_listening(self) -> None:
        if not self._forward_handles:
            return
        for handle in self._forward_handles:
            handle.remove()
        self._forward_handles = []
        self._last_loss.listener.remove()
        self._last_loss.value = None  # (it holds the last step's graph)

    def _pre_forward(self, module: Any, args: Any) -> None:
        key = id(module)
        if self._depth == 0 and key not in self._roots and not isinstance(module, self._loss_type):
            from nndoctor.backends.torch.hand import first_values

            self._roots[key] = module
            self._first_values[module] = [first_values(p) for p in module.parameters()]
            for record in self._records:
                record.attach(module)
        self._depth += 1

    def _post_forward(self, module: Any, args: Any, output: Any) -> None:
        self._depth -= 1
        if self._depth == 0 and isinstance(module, self._loss_type) and len(args) >= 2:
            self._loss_call = (module, output, args[0], args[1])

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.pair(optimizer)

    def pair(self, optimizer: Any) -> None:
        """Start a watch for each top-level module ``optimizer`` trains (once per optimizer).

        The global forward hooks cost a Python call per module call: they are removed at the
        second step of a paired optimizer (every model trained so far has its watch), and put
        back when an optimizer steps whose model they did not see (its watch then starts at
        its next step; the hooks stay until it has, whatever other optimizers step between)."""
        if optimizer is self._last_paired and self.settled:
            return  # every step of a paired run: as little as possible
        self._stepped = True
        record = self._built.get(optimizer)
        if record is not None:
            record.step()
        if optimizer in self._seen:
            self._last_paired = optimizer
            if not self._waiting:  # (another optimizer's model is still to be seen)
                self._stop_listening()
            return
        from nndoctor.backends.torch.model import held

        params = held(optimizer)
        models = [m for m in self._roots.values() if any(id(p) in params for p in m.parameters())]
        if not models and optimizer in self._waiting:  # a whole step seen: nothing it holds ran
            models = self._orphans()
        if not models:  # trained by a module called while the hooks were off: see it next step
            self._waiting.add(optimizer)
            self._listen()
            return
        self._waiting.discard(optimizer)
        self._seen.add(optimizer)
        for model in _enclosing(models):
            self._start(_unwrap(model), optimizer)

    def _on_backward(self, loss: Any) -> Callable[[], None] | None:
        """Before each backward pass: what to do once it is done, for a loop that updates its
        weights by hand: step the watches of the models it so updates; while the script has
        built no optimizer, look for such updates."""
        if self._by_hand:
            return self._step_by_hand
        # (an optimizer built before the hooks, as a framework's, is known by its step)
        return None if self._records or self._stepped else self._look_for_hand_updates

    def _step_by_hand(self) -> None:
        for watch in self._by_hand:
            watch.before_step()  # gradients ready, the loop's own update to come

    def _look_for_hand_updates(self) -> None:
        """Watch each top-level module with gradients whose values moved since the last
        backward pass while no optimizer exists (the rate of the move as its ``lr``)."""
        from nndoctor.backends.torch.hand import HandUpdates, UpdateTrace

        for model in list(self._roots.values()):
            if not any(p.grad is not None for p in model.parameters()):
                continue
            trace = self._traces.get(model)
            if trace is None:
                self._traces[model] = UpdateTrace(model)
                continue
            rate = trace.moved()
            if rate is None:  # not moved (yet)
                trace.mark()
                continue
            del self._traces[model]
            model = _unwrap(model)
            self._start(
                model, HandUpdates([p for p in model.parameters() if p.requires_grad], rate)
            )
            self._by_hand.append(self.pairs[-1].watch)
            self._by_hand[-1].before_step()
        if self._by_hand:
            self._stop_listening()

    def _orphans(self) -> list[Any]:
        """The top-level modules seen whose parameters got gradients and that no watch has:
        paired with an optimizer that holds none of their parameters (a model built a second
        time after its optimizer was: the optimizer steps the first copy), the watch names the
        mismatch instead of the run going unreported."""
        watched = {id(p.model) for p in self.pairs}
        return [
            m
            for m in self._roots.values()
            if id(m) not in watched and any(p.grad is not None for p in m.parameters())
        ]

    def never_stepped(self) -> list[tuple[str, Any]]:
        """A report section with one ``frozen-parameters`` cause per model whose parameters
        got gradients and never changed because no optimizer stepped on them: when no
        optimizer stepped at all (``scheduler.step()`` in place of ``optimizer.step()``), each
        module :meth:`_orphans` finds; when others did, each model held by an optimizer the
        script built and never stepped (a frozen feature extractor that no optimizer holds
        gets gradients too, by design)."""
        if not self.pairs:
            return [
                self._frozen_section(model, "no optimizer ever stepped", None)
                for model in self._orphans()
                if self._unchanged(model)
            ]
        stepped = ", ".join(sorted({type(p.optimizer).__name__ for p in self.pairs}))
        out = []
        watched = {id(p.model) for p in self.pairs}
        for record in self._records:
            for model in record.models:
                if (
                    id(model) in watched
                    or not any(
                        id(p) in record.tensors and p.grad is not None for p in model.parameters()
                    )
                    or not self._unchanged(model)
                ):
                    continue
                watched.add(id(model))
                out.append(
                    self._frozen_section(
                        model,
                        f"the {record.name} optimizer built over them never stepped, while "
                        f"the script's other optimizers ({stepped}) did",
                        record.name,
                    )
                )
        return out

    def _unchanged(self, model: Any) -> bool:
        """Whether ``model``'s parameters still hold the values they had when it first ran
        (the first few of each)."""
        import torch

        from nndoctor.backends.torch.hand import first_values

        first = self._first_values.get(model)
        now = [first_values(p) for p in model.parameters()]
        return (
            first is not None
            and len(first) == len(now)
            and all(torch.equal(a, b) for a, b in zip(first, now, strict=True))
        )

    def _frozen_section(self, model: Any, what: str, optimizer: str | None) -> tuple[str, Any]:
        """``(label, report)``: the one cause of ``model``, whose weights ``what`` left as they
        were (``optimizer``: the class of the one built over them that never stepped)."""
        from nndoctor.doctor.finding import ERROR
        from nndoctor.doctor.report import Report
        from nndoctor.doctor.rules.torch_loop import FROZEN_PARAMETERS

        label = self._label(model)
        names = [n for n, p in model.named_parameters() if p.grad is not None]
        fix = (
            "call optimizer.step() after loss.backward(), and scheduler.step() beside it, not "
            "in its place"
            if optimizer is None
            else f"call that {optimizer} optimizer's step() after each backward pass of "
            f"{label}'s loss"
        )
        finding = FROZEN_PARAMETERS.finding(
            ERROR,
            f"backward passes gave gradients to {len(names)} parameter tensor(s) of "
            f"{label}, but {what}: the weights never changed",
            evidence={"frozen": names[:16], "with_gradients": len(names), "steps": 0},
            why="loss.backward() only computes gradients; the weights change when an "
            "optimizer's step() applies them, and none was called for these (a scheduler's "
            "step() changes the learning rate, not the weights)",
            fix=fix,
            score=1.0,
        )
        return label, Report([finding], {"steps": 0})

    def _label(self, model: Any) -> str:
        """A report section's name: what the script calls the model (``generator
        (Sequential)``), else its class, numbered after the first of that class."""
        name = type(model).__name__
        given = name_in_script(model, self.script_names)
        if given is not None:
            return f"{given} ({name})"
        same = sum(p.name.split(" ")[0] == name for p in self.pairs)
        return f"{name} #{same + 1}" if same else name

    def _start(self, model: Any, optimizer: Any) -> None:
        loss_module, output, target = None, None, None
        loss = self._last_loss.value
        if self._loss_call is not None:
            loss_module, loss, output, target = self._loss_call
            if callable(getattr(loss, "numel", None)) and loss.numel() != 1:
                # reduction="none": the loop's own sum or mean of it is the step's loss
                loss, output, target = self._last_loss.value, None, None
        label = self._label(model)
        watch = self.make_watch(model, optimizer, loss_module, self.every, self.alerts)
        if self._last_loss.source is not None and hasattr(watch, "nan"):
            watch.nan.before_start = self._last_loss.source_for(model)  # this step's NaN
        self._last_loss.early = False
        if loss is not None:
            watch.log(loss, output, target)  # this step's loss ran before the watch existed
        self.pairs.append(_Pair(label, model, optimizer, watch))

    def uninstall(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._stop_listening()
        if self._hand is not None:
            self._hand.remove()
            self._hand = None
        if self._init is not None:
            base, init = self._init
            base.__init__ = init
            self._init = None

    def _pair_adversaries(self) -> None:
        """Models one of whose losses runs through the other (a GAN's generator through its
        discriminator): both are told, their targets are labels the loop made up."""
        for a in self.pairs:
            reached = getattr(getattr(a.watch, "loss", None), "reached", set())
            for b in self.pairs:
                if b is not a and reached & {id(p) for p in b.model.parameters()}:
                    a.watch.paired_adversarially = b.watch.paired_adversarially = True

    def close(self) -> list[tuple[str, Any]] | None:
        """Remove every hook and return ``(model name, report)`` per watched pair; None on
        the ranks other than 0 of a distributed run (rank 0 reports for all)."""
        from nndoctor.watching import report_across_ranks

        self.uninstall()
        self._pair_adversaries()
        out = []
        for pair in self.pairs:
            pair.watch.close()
            try:
                out.append((pair.name, report_across_ranks(pair.watch)))
            except Exception as exc:  # the script's own outcome matters more than our report
                print(f"nndoctor: no report for {pair.name}: {exc}", file=sys.stderr)
        return None if any(report is None for _, report in out) else out


NOTHING_TO_REPORT = "nndoctor: no optimizer stepped on a module's parameters: nothing to report"


def name_in_script(obj: Any, names: dict[str, Any] | None = None) -> str | None:
    """The name the running script gives ``obj``: a global of its ``__main__`` (``D``,
    ``generator``), or an attribute or child module of one (``gan.generator``); None when it
    has none (a model built inside a function). ``names``: the script's globals, once it has
    ended (runpy has put the old ``__main__`` back by then)."""
    if names is None:
        main = sys.modules.get("__main__")
        names = vars(main) if main is not None else {}
    names = dict(names)
    for key, value in names.items():
        if value is obj and not key.startswith("_"):
            return key
    for key, value in names.items():
        if key.startswith("_") or isinstance(value, type | types.ModuleType):
            continue
        children = {**getattr(value, "__dict__", {}), **getattr(value, "_modules", {})}
        for attr, child in children.items():
            if child is obj and not attr.startswith("_"):
                return f"{key}.{attr}"
    return None


def print_reports(
    sections: list[tuple[str | None, Any]],
    stream: Any,
    verbosity: int = 1,
) -> None:
    """Print each ``(name, report)`` on ``stream`` (a heading per model when there are
    several; :data:`NOTHING_TO_REPORT` when there is none); ``verbosity`` 0 = short, 1 =
    normal, 2 = long."""
    if not sections:
        print(NOTHING_TO_REPORT, file=stream)
        return
    for i, (name, report) in enumerate(sections):
        if len(sections) > 1:
            heading = f"=== nndoctor: {name} ==="
            print(heading if i == 0 else "\n" + heading, file=stream)
        report.render(stream, verbosity)


def reports_payload(sections: list[tuple[str | None, Any]]) -> list[dict[str, Any]]:
    """The reports as plain values: a list of ``{"model", "report"}`` (what ``run --json``
    and the callbacks write, and ``nndoctor show`` reads)."""
    return [{"model": name, "report": report.to_dict()} for name, report in sections]


def write_json(path: str, sections: list[tuple[str | None, Any]]) -> None:
    """The reports as a JSON list of ``{"model", "report"}``, written atomically."""
    from nndoctor.outputs import dump_json

    dump_json(path, reports_payload(sections))


def write_html(path: str, sections: list[tuple[str | None, Any]]) -> None:
    """The reports as one self-contained HTML page, a section per model, written atomically."""
    from nndoctor.render.html import Section, render_page

    if len(sections) == 1:
        sections[0][1].save_html(path)
        return
    page = render_page(
        [Section(name or f"report {i + 1}", report) for i, (name, report) in enumerate(sections)],
        title=f"nndoctor: {len(sections)} reports" if sections else "nndoctor: no report",
        intro=[] if sections else [NOTHING_TO_REPORT],
    )
    write_text_atomic(path, page)


def torch_watch(
    model: Any,
    optimizer: Any,
    loss: Any,
    every: int | None,
    alerts: bool,
    step_pre_hook: bool = True,
) -> Any:
    """The watch ``nndoctor run`` (and the callbacks) start for each (model, optimizer) pair."""
    from nndoctor.watching import watch

    return watch(
        model, optimizer, loss=loss, every=every, alerts=alerts, step_pre_hook=step_pre_hook
    )


def execute(
    script: str,
    args: Sequence[str] = (),
    *,
    every: int | None = None,
    alerts: bool = True,
    verbosity: int = 1,
    json_path: str | None = None,
    html: str | None = None,
) -> int:
    """Run ``script`` watched and print one report section per trained model on stderr.

    Parameters
    ----------
    script : str
        Path of the training script.
    args : sequence of str
        The script's own arguments (its ``sys.argv[1:]``).
    every : int, optional
        Probe interval; default: the watch's adaptive schedule.
    alerts : bool
        Say findings while the script trains (the report is printed at the end either way).
    verbosity : int
        Of the report: 0 short, 1 normal, 2 long.
    json_path, html : str, optional
        Also write the reports there (checked before the script starts).

    Returns
    -------
    int
        The script's own exit status; 1 when the script exited 0 but nndoctor could not
        build or write a report (said on stderr).

    Raises
    ------
    ValueError
        A missing script or an output path that cannot be written, before the script runs.
    """
    from nndoctor._extras import require
    from nndoctor.outputs import check_outputs

    require("torch")
    if not os.path.isfile(script):
        raise ValueError(f"no such script: {script}")
    check_outputs({"--json": json_path, "--html": html}, inputs=[script], stdout=False)
    # the paths as checked, whatever folder the script moves to
    json_path, html = (None if p is None else os.path.abspath(p) for p in (json_path, html))
    watcher = GlobalWatcher(torch_watch, every=every, alerts=alerts)
    watcher.install()
    try:
        result = run_script(script, args)
    finally:
        sections = watcher.close()
    if sections is None:  # ranks other than 0: rank 0 alone reports
        return result.status
    failed = len(sections) < len(watcher.pairs)  # a report that could not be built (said)
    # models that got gradients and that no optimizer stepped on are told so
    watcher.script_names = result.names
    sections = sections + watcher.never_stepped()
    if sections or not watcher.pairs:
        print(file=sys.stderr)
        print_reports(sections, sys.stderr, verbosity)
        for label, path, write in (
            ("JSON", json_path, write_json),
            ("HTML report", html, write_html),
        ):
            if path is None:
                continue
            try:
                write(path, sections)
            except Exception as exc:  # the script's own status matters more than our files
                print(f"nndoctor run: error: {exc}", file=sys.stderr)
                failed = True
            else:
                print(f"\n{label}: {path}", file=sys.stderr)
    return EXIT_ERROR if failed and result.status == 0 else result.status
