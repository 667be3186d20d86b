"""Where the first NaN or inf of a step came from: the operation, the module it ran in and the
numbers around it, found by replaying the step on copies.

- :func:`replay`: the step's forward pass and loss again, on a copy of the model with the
  weights of the failing step, under a :class:`~torch.overrides.TorchFunctionMode` that looks
  at what every torch function returns. The first call whose inputs hold no NaN and whose
  output does is where the NaN appeared; an inf made earlier out of finite numbers (a log of
  0, an exp or a float16 overflow; not an inf written on purpose, a mask's ``-inf``) is its
  origin. A forward pre-hook stack on the copy's modules names the module. When the forward
  pass and the loss are finite, the backward pass is replayed with a hook on every node of
  its graph: the first node fed finite gradients that passes on non-finite ones
  (``SqrtBackward0`` of a distance at 0) is the source.
- :func:`graph_source`: for a loss that cannot be called again (a functional loss in the
  user's loop), the loss's own autograd graph just before ``.backward()``, read through the
  inputs its nodes saved.
- :func:`characterise`: what an operation's inputs say: a log of 0, a division by 0, a softmax
  over a row whose every entry is masked, an overflow of the output's dtype.

The user's objects are left alone: the model and the loss are copies (without the watch's own
hooks), the random state is forked, the copies' buffers are their own.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor.backends.torch.task import reached_parameters
from nndoctor.doctor.schema import (
    BACKWARD,
    DIVISION_BY_ZERO,
    EXP_OVERFLOW,
    INVALID,
    LOG_OF_NEGATIVE,
    LOG_OF_ZERO,
    MASKED_SOFTMAX,
    NON_FINITE_DATA,
    NON_FINITE_WEIGHTS,
    NOT_REPRODUCED,
    OVERFLOW,
    SQRT_OF_NEGATIVE,
    NanSource,
)

# the operations, by their names with underscores stripped and aliases resolved
_LOG = {"log": 0.0, "log2": 0.0, "log10": 0.0, "log1p": -1.0}  # where each one is -inf
_DIV = {"div", "rdiv", "reciprocal"}
_SOFTMAX = {"softmax", "log_softmax", "softmin"}
_ATTENTION = {"multi_head_attention_forward", "scaled_dot_product_attention"}
_EXP = {"exp", "exp2", "expm1", "sinh", "cosh"}
_ALIASES = {
    "truediv": "div",
    "itruediv": "div",
    "divide": "div",
    "true_divide": "div",
    "rtruediv": "rdiv",
    "ipow": "pow",
    "float_power": "pow",
    "imul": "mul",
}
# functions that write a value they were given (a mask's -inf): an inf they make is meant
_WRITERS = {"masked_fill", "fill", "full", "full_like", "new_full", "where", "index_fill", "tensor"}
# positions of F.multi_head_attention_forward's masks (nn.MultiheadAttention names them)
_MHA_MASKS = {"key_padding_mask": 14, "attn_mask": 16}
# most indices listed in a finding's values
MAX_LISTED = 8


class Located(Exception):
    """Raised inside the replay once the NaN's source is known: the rest need not run."""


def op_name(func: Any) -> str:
    """A torch function's plain name: ``Tensor.__truediv__`` and ``torch.divide`` are
    ``"div"``, ``Tensor.log_`` is ``"log"``, ``F.softmax`` is ``"softmax"``."""
    name = getattr(func, "__name__", None) or str(func)
    plain = name.strip("_")
    return _ALIASES.get(plain, plain)


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple):
        for v in value:
            yield from _flat(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _flat(v)
    else:
        yield value


def _floats(value: Any) -> list[torch.Tensor]:
    return [t for t in _flat(value) if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _has_nan(ts: list[torch.Tensor]) -> bool:
    return any(bool(torch.isnan(t).any()) for t in ts)


def _has_inf(ts: list[torch.Tensor]) -> bool:
    return any(bool(torch.isinf(t).any()) for t in ts)


def _first_index(mask: torch.Tensor) -> list[int]:
    """The index of the first True of ``mask`` (empty when it has none, or no dimensions)."""
    where = mask.nonzero() if mask.dim() else ()
    return [int(i) for i in where[0]] if len(where) else []


def _count(mask: torch.Tensor) -> int:
    return int(mask.sum())


def _tensor_or_none(value: Any) -> torch.Tensor | None:
    return value if isinstance(value, torch.Tensor) else None


def _arg(args: tuple, kwargs: dict[str, Any], index: int, name: str) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _masked_rows(full: torch.Tensor) -> dict[str, Any]:
    """``full``: one boolean per row (True: every entry masked), of any leading shape."""
    rows = full.nonzero()
    leading = sorted({int(r[0]) for r in rows}) if full.dim() else []
    return {
        "masked_rows": int(full.sum()),
        "rows": int(full.numel()),
        "first_row": [int(i) for i in rows[0]] if len(rows) else [],
        "batch_rows": leading[:MAX_LISTED],
    }


def _attention_masks(op: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The first mask of an attention call with a row that masks every key, as
    :func:`_masked_rows` values plus ``mask`` (its argument name); None when none does."""
    if op == "multi_head_attention_forward":
        masks = [(name, _arg(args, kwargs, i, name), True) for name, i in _MHA_MASKS.items()]
    else:  # scaled_dot_product_attention: a boolean mask says which keys take part
        masks = [("attn_mask", _arg(args, kwargs, 3, "attn_mask"), False)]
    for name, mask, true_masks in masks:
        if not isinstance(mask, torch.Tensor) or mask.dim() == 0:
            continue
        if mask.dtype == torch.bool:
            full = mask.all(dim=-1) if true_masks else (~mask).all(dim=-1)
        else:
            full = torch.isneginf(mask).all(dim=-1)
        if bool(full.any()):
            return {"mask": name, **_masked_rows(full)}
    return None


def _dtype_values(out: torch.Tensor) -> dict[str, Any]:
    info = torch.finfo(out.dtype)
    return {"dtype_max": float(info.max)}


def characterise(
    op: str, args: tuple, kwargs: dict[str, Any], out: torch.Tensor
) -> tuple[str, dict[str, Any]]:
    """The kind of a non-finite ``out`` that ``op`` made from ``args`` and ``kwargs`` (which
    hold no NaN), and the numbers that show it.

    Returns
    -------
    kind : str
        ``"log-of-zero"``, ``"log-of-negative"``, ``"division-by-zero"``, ``"masked-softmax"``,
        ``"exp-overflow"``, ``"sqrt-of-negative"``, ``"overflow"`` (an inf out of finite
        numbers) or ``"invalid"`` (a NaN the others do not explain).
    values : dict
        Per kind: counts, the first offending index, the largest input, the dtype's largest
        number.
    """
    args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
    kwargs = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    out = out.detach()
    x = _tensor_or_none(args[0]) if args else None
    nan_out = bool(torch.isnan(out).any())
    if op in _LOG and x is not None:
        at = _LOG[op]
        below, equal = x < at, x == at
        if nan_out and bool(below.any()):
            return LOG_OF_NEGATIVE, {
                "negatives": _count(below),
                "min_input": float(x.min()),
                "first_index": _first_index(below),
                "of": x.numel(),
            }
        if bool(equal.any()):
            return LOG_OF_ZERO, {
                "zeros": _count(equal),
                "first_index": _first_index(equal),
                "of": x.numel(),
            }
    if op in _DIV:
        divisor = args[0] if op in ("rdiv", "reciprocal") else _arg(args, kwargs, 1, "other")
        numerator = None if op == "reciprocal" else (args[1] if op == "rdiv" else args[0])
        if isinstance(divisor, int | float):
            divisor = torch.tensor(float(divisor))
        if isinstance(divisor, torch.Tensor) and bool((divisor == 0).any()):
            zero = divisor == 0
            values = {"zero_divisors": _count(zero), "first_index": _first_index(zero)}
            if isinstance(numerator, torch.Tensor):
                both = zero & (numerator == 0)
                values["zero_over_zero"] = _count(both)
            return DIVISION_BY_ZERO, values
    if op in _SOFTMAX and x is not None:
        dim = _arg(args, kwargs, 1, "dim")
        dim = -1 if dim is None else int(dim)
        masked = torch.isposinf(x) if op == "softmin" else torch.isneginf(x)
        full = masked.all(dim=dim)
        if bool(full.any()):
            return MASKED_SOFTMAX, {**_masked_rows(full), "row_length": x.shape[dim]}
    if op in _ATTENTION:
        found = _attention_masks(op, args, kwargs)
        if found is not None:
            return MASKED_SOFTMAX, found
    if op in ("sqrt", "rsqrt") and x is not None:
        if nan_out and bool((x < 0).any()):
            return SQRT_OF_NEGATIVE, {
                "negatives": _count(x < 0),
                "min_input": float(x.min()),
                "first_index": _first_index(x < 0),
            }
        if op == "rsqrt" and bool((x == 0).any()):
            return DIVISION_BY_ZERO, {
                "zero_divisors": _count(x == 0),
                "first_index": _first_index(x == 0),
            }
    if op == "pow" and x is not None:
        exponent = _arg(args, kwargs, 1, "exponent")
        if isinstance(exponent, torch.Tensor):
            negative_power = bool((exponent < 0).any())
        else:
            negative_power = isinstance(exponent, int | float) and exponent < 0
        if negative_power and bool((x == 0).any()):
            return DIVISION_BY_ZERO, {
                "zero_divisors": _count(x == 0),
                "first_index": _first_index(x == 0),
            }
    inputs = _floats((args, kwargs))
    biggest = max((float(t.abs().max()) for t in inputs if t.numel()), default=math.nan)
    if op in _EXP and x is not None and bool(torch.isinf(out).any()):
        limit = math.log(torch.finfo(out.dtype).max)
        return EXP_OVERFLOW, {"max_input": float(x.max()), "limit": limit, **_dtype_values(out)}
    if bool(torch.isinf(out).any()) and not _has_inf(inputs):
        return OVERFLOW, {"max_abs_input": biggest, **_dtype_values(out)}
    return INVALID, {"inf_inputs": _has_inf(inputs)}


def _writes_inf(op: str, args: tuple, kwargs: dict[str, Any]) -> bool:
    """Whether the call writes an inf it was given (a mask's ``-inf``): meant, not made."""
    if op not in _WRITERS:
        return False
    given = [v for v in _flat((args, kwargs)) if isinstance(v, int | float)]
    given += [t for t in _floats((args, kwargs)) if t.dim() == 0]
    return any(math.isinf(float(v)) for v in given)


class FirstNonFinite(TorchFunctionMode):
    """Checks what each torch function returns; stops the replay at the first NaN.

    ``module`` is a callable giving the qualified name of the module running now. After the
    replay, ``nan`` describes the first call that made a NaN out of inputs holding none, and
    ``inf`` the first that made an inf out of finite numbers and was not writing one it was
    given (see :meth:`_seen`). ``nodes`` maps each autograd node the replay created (at the
    level of these calls) to the module that created it.
    """

    def __init__(self, module: Callable[[], str]) -> None:
        super().__init__()
        self.module = module
        self.nan: dict[str, Any] | None = None
        self.inf: dict[str, Any] | None = None
        self.nodes: dict[Any, str] = {}

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        # an in-place call overwrites its first input: look at a copy of it taken before
        inplace = (name.endswith("_") and not name.endswith("__")) or name.startswith("__i")
        seen = args
        if inplace and args and isinstance(args[0], torch.Tensor):
            seen = (args[0].detach().clone(), *args[1:])
        out = func(*args, **kwargs)
        outs = _floats(out)
        if not outs:
            return out
        for t in outs:
            if t.grad_fn is not None:
                self.nodes.setdefault(t.grad_fn, self.module())
        nan, inf = _has_nan(outs), _has_inf(outs)
        if not (nan or inf):
            return out
        op = op_name(func)
        ins = _floats((seen, kwargs))
        nan_in, inf_in = _has_nan(ins), _has_inf(ins)
        made_inf = inf and not nan_in and not inf_in and self.inf is None
        if made_inf and not _writes_inf(op, seen, kwargs):
            self.inf = self._seen(op, seen, kwargs, outs, inf_in)
        if nan and not nan_in:
            self.nan = self._seen(op, seen, kwargs, outs, inf_in)
            raise Located
        return out

    def _seen(
        self, op: str, args: tuple, kwargs: dict[str, Any], outs: list, inf_in: bool
    ) -> dict[str, Any]:
        """The call, characterised now (a later in-place call could change its inputs)."""
        bad = next(t for t in outs if not bool(torch.isfinite(t).all()))
        kind, values = characterise(op, args, kwargs, bad)
        return {
            "op": op,
            "module": self.module(),
            "kind": kind,
            "values": values,
            "dtype": str(bad.dtype).removeprefix("torch."),
            "inf_inputs": inf_in,
        }


class ModuleStack:
    """The qualified name of the module running now, kept by pre-hooks and hooks on every
    module of ``model`` (a copy: nothing of the user's is hooked)."""

    def __init__(self, model: nn.Module, outer: str = "") -> None:
        self.names = [outer]
        self.types = {name: type(m).__name__ for name, m in model.named_modules()}
        self.handles = []
        for name, m in model.named_modules():
            self.handles.append(m.register_forward_pre_hook(self._enter(name)))
            self.handles.append(m.register_forward_hook(self._leave, always_call=True))

    def _enter(self, name: str) -> Callable[..., None]:
        def enter(module: nn.Module, args: Any) -> None:
            self.names.append(name)

        return enter

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        if len(self.names) > 1:
            self.names.pop()

    def __call__(self) -> str:
        return self.names[-1]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def twin(obj: Any, owners: tuple[Any, ...]) -> Any:
    """A deep copy of ``obj`` (a model, a loss module) without the hooks whose owner is one
    of ``owners`` (the watch's parts, which are not copied either)."""
    memo = {id(o): o for o in owners}
    out = copy.deepcopy(obj, memo)
    if isinstance(out, nn.Module):
        mine = {id(o) for o in owners}
        for m in out.modules():
            for hooks in (m._forward_pre_hooks, m._forward_hooks):
                for key, hook in list(hooks.items()):
                    if id(getattr(hook, "__self__", None)) in mine:
                        del hooks[key]
    return out


def _where_nonfinite(named: Iterator[tuple[str, torch.Tensor]]) -> tuple[str, torch.Tensor] | None:
    for name, t in named:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name, t
    return None


def _nonfinite_values(t: torch.Tensor) -> dict[str, Any]:
    bad = ~torch.isfinite(t)
    return {
        "count": _count(bad),
        "of": t.numel(),
        "nan": _count(torch.isnan(t)),
        "first_index": _first_index(bad),
    }


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def check_data(
    args: tuple,
    kwargs: dict[str, Any],
    target: Any,
    step: int,
    own: frozenset[int] = frozenset(),
) -> NanSource | None:
    """A NaN in the batch (any floating input, the target), or an inf in its first input (a
    float mask's ``-inf`` elsewhere is meant). An input computed in the step itself (it has a
    ``grad_fn``) is not the batch: where its graph reaches none of the model's parameters
    (``own``, their ids: another module made it, a graph learner's adjacency) that graph is
    read (:func:`graph_source`; after the backward pass has freed it, the loss's graph read
    before it says, see ``NanTap.locate``); else ``not-reproduced``."""
    named: list[tuple[str, Any]] = [(f"input {i}", a) for i, a in enumerate(args)]
    named += [(f"input {k}", v) for k, v in kwargs.items()] + [("target", target)]
    for i, (name, value) in enumerate(named):
        for t in _floats(value):
            if bool(torch.isnan(t).any()) or (i == 0 and bool(torch.isinf(t).any())):
                if t.grad_fn is not None:
                    # computed in this step (a recurrent state fed back from the model's last
                    # call, another model's output): not the batch, and its first NaN came
                    # from a computation a replay of this call cannot see. A state that ran
                    # through this model is left to the growth rules (its weights grew into
                    # it); another module's computation is read off its graph
                    foreign = not reached_parameters(t) & own
                    found = graph_source(t, step, phase="input", module=name) if foreign else None
                    return found or NanSource(
                        NOT_REPRODUCED,
                        step,
                        values={"argument": name, "computed": True, "foreign": foreign},
                    )
                return NanSource(
                    NON_FINITE_DATA,
                    step,
                    phase="data",
                    op="",
                    module="",
                    dtype=str(t.dtype).removeprefix("torch."),
                    values={"argument": name, **_nonfinite_values(t)},
                )
    return None


def check_weights(model: nn.Module, step: int, buffers: bool = False) -> NanSource | None:
    """A parameter (``buffers``: a buffer) that is NaN or inf before the step: an earlier
    update (or the initialisation) made it so. Buffers are looked at only when the replay
    found nothing else: the step's own forward pass may have written a NaN into them (a
    BatchNorm's running mean), which a forward pass in training mode does not read."""
    named = model.named_buffers() if buffers else model.named_parameters()
    found = _where_nonfinite(iter(list(named)))
    if found is None:
        return None
    name, t = found
    owner = _owner(name)
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    return NanSource(
        NON_FINITE_WEIGHTS,
        step,
        phase="forward",
        op="",
        module=owner,
        module_type=types.get(owner, ""),
        dtype=str(t.dtype).removeprefix("torch."),
        values={"parameter": name, **_nonfinite_values(t)},
    )


def _source(seen: dict[str, Any], step: int, types: dict[str, str]) -> NanSource:
    module = seen["module"]
    return NanSource(
        seen["kind"],
        step,
        phase="loss" if module == "loss" else "forward",
        op=seen["op"],
        module=module,
        module_type=types.get(module, ""),
        dtype=seen["dtype"],
        values=dict(seen["values"]),
    )


def _autocast(state: tuple[str, torch.dtype] | None) -> Any:
    if state is None:
        return torch.autocast("cpu", enabled=False)
    return torch.autocast(state[0], dtype=state[1])


def autocast_state(device_type: str) -> tuple[str, torch.dtype] | None:
    """``(device type, dtype)`` of the autocast region a forward pass runs in, or None."""
    if torch.is_autocast_enabled(device_type):
        return device_type, torch.get_autocast_dtype(device_type)
    return None


def replay(
    model: nn.Module,
    args: tuple,
    kwargs: dict[str, Any],
    *,
    step: int,
    loss_fn: Callable[..., Any] | None = None,
    target: Any = None,
    autocast: tuple[str, torch.dtype] | None = None,
    backward: bool = False,
) -> tuple[NanSource | None, torch.Tensor | None]:
    """Run one step's forward pass, loss and (when those are finite) backward pass again on
    ``model`` (a copy: it is hooked and its gradients are written) and say where the first
    NaN or inf came from.

    Parameters
    ----------
    model : torch.nn.Module
        A copy with the weights of the failing step.
    args, kwargs
        What the model was called with.
    step : int
    loss_fn : callable ``(output, target) -> scalar``, optional
        The loss (a copy when it is a module); without it only the model is replayed, and
        the backward pass (``backward``) starts from the sum of the outputs.
    target : optional
    autocast : (device type, dtype), optional
        The autocast region the step ran in.
    backward : bool
        When the forward pass and the loss are finite, replay the backward pass too (a
        gradient was not finite).

    Returns
    -------
    source : NanSource or None
        None when everything was finite (forward, loss and gradients).
    output : torch.Tensor or None
        The model's output when its forward pass was finite (detached).
    """
    stack = ModuleStack(model)
    mode = FirstNonFinite(stack)
    output: torch.Tensor | None = None
    end: torch.Tensor | None = None  # the loss, or the sum of the outputs without one
    try:
        with torch.enable_grad(), _autocast(autocast):
            with mode:
                out = model(*args, **kwargs)
            flat = _floats(out)
            output = flat[0].detach() if flat else None
            if loss_fn is not None:
                stack.names.append("loss")
                with mode:
                    end = loss_fn(out, target)
                stack.names.pop()
            elif flat:
                end = torch.stack([t.float().sum() for t in flat]).sum()
    except Located:
        pass
    finally:
        stack.remove()
    nan, inf = mode.nan, mode.inf
    if nan is None:
        if isinstance(end, torch.Tensor) and bool(torch.isfinite(end).all()):
            # an inf made and then dropped (a where() around a log) does not matter
            if not backward or not end.requires_grad:
                return None, output
            return backward_source(end, mode.nodes, step, stack.types), output
        # an inf loss without a NaN: its origin, if an operation seen here made it
        return (_source(inf, step, stack.types) if inf is not None else None), output
    if inf is not None and nan["inf_inputs"]:
        # an inf made out of finite numbers, then a NaN made out of it (0 times inf, inf -
        # inf): the inf is the origin
        source = _source(inf, step, stack.types)
        source.values["then"] = nan["op"]
        return source, None
    return _source(nan, step, stack.types), None


def _node_name(node: Any) -> str:
    return type(node).__name__


def _graph(root: Any) -> list[tuple[Any, int, Any]]:
    """``(node, depth, consumer)`` of every node reachable from ``root``, breadth first."""
    out, seen, queue = [], {root}, [(root, 0, None)]
    while queue:
        node, depth, consumer = queue.pop(0)
        out.append((node, depth, consumer))
        for nxt, _ in getattr(node, "next_functions", ()):
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, depth + 1, node))
    return out


def _saved(node: Any) -> dict[str, torch.Tensor]:
    """The floating tensors a node saved for its backward pass, by name without ``_saved_``."""
    out = {}
    for attr in dir(node):
        if attr.startswith("_saved_"):
            try:
                value = getattr(node, attr)
            except (RuntimeError, ValueError):  # freed already, or not a tensor it can give
                continue
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                out[attr.removeprefix("_saved_")] = value
    return out


def backward_source(
    loss: torch.Tensor, nodes: dict[Any, str], step: int, types: dict[str, str]
) -> NanSource | None:
    """Backward from a finite ``loss`` with a hook on every node of its graph: the first node
    (in the order backward runs them) fed finite gradients that passes on a non-finite one;
    None when every gradient is finite. ``nodes`` names the module that made a node; a node
    made inside a call (a composite function) takes its consumer's."""
    graph = _graph(loss.grad_fn)
    module: dict[Any, str] = {}
    for node, _, consumer in graph:
        module[node] = nodes.get(node, module.get(consumer, ""))
    found: list[Any] = []

    def hook(node: Any) -> Callable[..., None]:
        def check(grad_inputs: tuple, grad_outputs: tuple) -> None:
            if found:
                return
            given = [g for g in grad_outputs if isinstance(g, torch.Tensor)]
            made = [g for g in grad_inputs if isinstance(g, torch.Tensor)]
            if all(bool(torch.isfinite(g).all()) for g in given) and not all(
                bool(torch.isfinite(g).all()) for g in made
            ):
                found.append((node, next(g for g in made if not bool(torch.isfinite(g).all()))))

        return check

    handles = [n.register_hook(hook(n)) for n, _, _ in graph if hasattr(n, "register_hook")]
    try:
        loss.backward(retain_graph=True)  # the found node's saved inputs are read after
    finally:
        for h in handles:
            h.remove()
    if not found:
        return None
    node, grad = found[0]
    saved = _saved(node)
    values: dict[str, Any] = {"node": _node_name(node), **_nonfinite_values(grad)}
    # a derivative infinite at 0 (sqrt, a norm, a distance, x ** 0.5): the zeros it saved
    zeros = {name: _count(t == 0) for name, t in saved.items()}
    if any(zeros.values()):
        name = max(zeros, key=lambda k: zeros[k])
        values.update(saved=name, saved_zeros=zeros[name])
    where = module.get(node, "")
    return NanSource(
        BACKWARD,
        step,
        phase="backward",
        op=_node_name(node),
        module=where,
        module_type=types.get(where, ""),
        dtype=str(grad.dtype).removeprefix("torch."),
        values=values,
    )


# what a backward node saved of its operation's inputs, in the operation's order
_NODE_INPUTS = ("self", "other")


def graph_source(
    root: torch.Tensor, step: int, *, phase: str = "loss", module: str = "loss"
) -> NanSource | None:
    """Where a non-finite tensor came from, read off its autograd graph (a loss's before
    ``.backward()`` frees it; a model's input computed in the step, ``phase="input"``): the
    node farthest from ``root`` whose saved inputs hold no NaN and whose operation
    :func:`characterise` finds at fault (a log of 0, a division by 0, a softmax over masked
    rows, an exp overflow), said to be in ``module``. None when no node says (the graph does
    not keep what it would need)."""
    found = graph_fault(root, step, phase=phase, module=module)
    return found[0] if found is not None else None


def graph_fault(
    root: torch.Tensor, step: int, *, phase: str = "loss", module: str = "loss"
) -> tuple[NanSource, Any] | None:
    """:func:`graph_source` and the graph node it names (what it reaches tells whether it
    ran in a model or outside it)."""
    if root.grad_fn is None:
        return None
    best: tuple[int, NanSource, Any] | None = None
    for node, depth, _ in _graph(root.grad_fn):
        name = _node_name(node)
        op = op_name(name.split("Backward")[0].lower())
        saved = _saved(node)
        args = tuple(saved.get(role) for role in _NODE_INPUTS)
        result = saved.get("result")
        if args[0] is None and result is None:
            continue
        if _has_nan([a for a in args if a is not None]):
            continue
        if op in _EXP and result is not None:
            # exp saves its output only: an inf there is the overflow
            if not bool(torch.isinf(result).any()):
                continue
            limit = math.log(torch.finfo(result.dtype).max)
            kind, values = EXP_OVERFLOW, {"limit": limit, **_dtype_values(result)}
            out = result
        elif op in _SOFTMAX and result is not None:
            # softmax saves its output: a NaN row there came from a row masked whole
            dim = int(getattr(node, "_saved_dim", -1))
            dim = dim - 2**64 if dim >= 2**63 else dim  # kept as an unsigned number
            full = torch.isnan(result).all(dim=dim)
            if not bool(full.any()):
                continue
            kind, values = MASKED_SOFTMAX, _masked_rows(full)
            out = result
        else:
            if args[0] is None:
                continue
            exponent = getattr(node, "_saved_exponent", None)
            call = (args[0], args[1] if args[1] is not None else exponent)
            with torch.no_grad():
                out = _recompute(op, call)
            if out is None or bool(torch.isfinite(out).all()):
                continue
            kind, values = characterise(op, call, {}, out)
        if best is None or depth > best[0]:
            best = (
                depth,
                NanSource(
                    kind,
                    step,
                    phase=phase,
                    op=op,
                    module=module,
                    dtype=str(out.dtype).removeprefix("torch."),
                    values=values,
                ),
                node,
            )
    return (best[1], best[2]) if best is not None else None


# the operations a saved input is enough to compute again
_RECOMPUTE: dict[str, Callable[..., torch.Tensor]] = {
    "log": torch.log,
    "log2": torch.log2,
    "log10": torch.log10,
    "log1p": torch.log1p,
    "div": torch.div,
    "reciprocal": torch.reciprocal,
    "exp": torch.exp,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "pow": torch.pow,
}


def _recompute(op: str, args: tuple) -> torch.Tensor | None:
    fn = _RECOMPUTE.get(op)
    if fn is None or (op in ("div", "pow") and args[1] is None):
        return None
    return fn(*args) if op in ("div", "pow") else fn(args[0])
