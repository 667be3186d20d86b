"""Gradient checks: analytic gradients against central finite differences and torch autograd.

Every element of every parameter tensor (biases included) is perturbed by ``+-eps`` and the
central difference ``(L(p + eps) - L(p - eps)) / (2 eps)`` is compared with the analytic value.

The pass rule, element by element, with ``a`` the analytic and ``n`` the reference value::

    rel = |a - n| / max(|a|, |n|)          (0 when both are 0)
    passes when  rel <= rtol  or  |a - n| <= atol + noise_tol

The absolute part exists because a central difference is not exact: where the true gradient is
near 0, its error makes ``rel`` meaningless. ``atol`` (default ``16 * macheps * |L| / eps``, a few
times the round-off of a well-conditioned loss: 3.6e-9 for ``|L| = 1``, ``eps = 1e-6``) covers
that case. ``noise_tol`` covers ill-conditioned losses (a saturated sigmoid under BCE computes
``log(1 - p)`` with ``1 - p`` near 1e-5, so the loss carries round-off 1e4 times larger): every
element is also differenced with step ``2 eps``, the largest ``|D_eps - D_2eps|`` over all
elements (leaving out those near a kink, see below) is the measured finite-difference noise,
and ``noise_tol`` is 8 times that. In :func:`check_function_gradients`, where kinks in your code
cannot be seen, ``noise_tol`` is capped at 1e-3 of the largest numeric gradient, so that a kink
cannot pass for noise and excuse a real error. Neither part depends on the analytic gradient, so
a wrong gradient cannot loosen its own check.
The worst element of a tensor is the one that misses the rule by the largest factor,
``min(rel / rtol, |a - n| / (atol + noise_tol))``.

A ReLU or LeakyReLU whose input changes sign between ``p - eps``, ``p`` and ``p + eps`` makes the
difference straddle a kink, where it is not a derivative; such elements are counted, named in the
summary, and left out of the finite-difference verdict (autograd still checks them). Elements
whose ``2 eps`` step alone crosses a kink are left out of the noise estimate.

The engine-vs-autograd comparison uses the same ``rtol`` and an absolute tolerance of
``1024 * macheps`` times the largest autograd gradient, the size of summation-order differences.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor import _extras
from nndoctor._progress import ProgressBar
from nndoctor._validate import as_float_array, check_finite
from nndoctor.nn import BCE, LeakyReLU, Loss, ReLU, Sequential, get_loss, validate_data
from nndoctor.torch import loss_to_torch, target_to_torch, to_torch, torch_parameter_name

_MACHEPS = float(np.finfo(np.float64).eps)
# Multiples of machine epsilon for the default absolute tolerances (see the module docstring).
_ROUNDOFF_FACTOR = 16.0
_NOISE_FACTOR = 8.0
_NOISE_CAP = 1e-3
# BCE predictions this close to 0 or 1 leave 1 - p (or p) with fewer than half its digits
_BCE_SATURATED = 1e-8
_AUTOGRAD_NOISE_FACTOR = 1024.0
_KINKED = (ReLU, LeakyReLU)


@dataclass(frozen=True)
class ParameterCheck:
    """Analytic gradient of one parameter tensor against central finite differences.

    ``worst_index`` is the element that misses the pass rule by the largest factor; ``analytic``
    and ``numeric`` are the two gradients there. ``n_failed`` counts failing elements and
    ``n_kinks`` the elements left out because the difference step crossed a ReLU kink.
    """

    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    passed: bool
    n_failed: int
    n_kinks: int = 0


@dataclass(frozen=True)
class AutogradCheck:
    """Engine gradient of one parameter tensor against torch autograd on the float64 twin."""

    name: str
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    engine: float
    autograd: float
    passed: bool
    n_failed: int


@dataclass(frozen=True)
class GradCheckResult:
    """Outcome of a gradient check.

    Attributes
    ----------
    parameters : dict of str to ParameterCheck
        Finite-difference check of every parameter tensor, in parameter order.
    autograd : dict of str to AutogradCheck or None
        Engine against torch autograd, when it ran.
    loss : float
        Loss at the unperturbed parameters.
    eps, rtol : float
        Difference step and relative tolerance.
    atol : float
        Total absolute tolerance of the finite-difference verdict: the ``atol`` argument (or its
        default) plus the allowance for the measured noise.
    fd_noise : float
        Measured finite-difference noise, the largest ``|D_eps - D_2eps|`` over all elements.
    notes : tuple of str
        ReLU kinks crossed, autograd skipped and why.
    """

    parameters: dict[str, ParameterCheck]
    autograd: dict[str, AutogradCheck] | None
    loss: float
    eps: float
    rtol: float
    atol: float
    fd_noise: float
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every parameter passes every check that ran."""
        checks = list(self.parameters.values()) + list((self.autograd or {}).values())
        return all(c.passed for c in checks)

    @property
    def failed(self) -> list[str]:
        """Names of parameters that fail the finite-difference or the autograd check."""
        bad = [name for name, c in self.parameters.items() if not c.passed]
        bad += [n for n, c in (self.autograd or {}).items() if not c.passed and n not in bad]
        return bad

    def summary(self) -> str:
        """A short, readable account: verdict, one line per parameter, then the notes."""
        n_bad = sum(not c.passed for c in self.parameters.values())
        n = len(self.parameters)
        verdict = (
            f"all {n} parameter tensors pass"
            if n_bad == 0
            else (f"FAILED for {n_bad} of {n} parameter tensors")
        )
        lines = [
            f"Gradient check against central finite differences: {verdict}",
            f"  (eps {self.eps:.0e}; an element passes when rel. error <= {self.rtol:.0e} or "
            f"abs. error <= {self.atol:.1e};",
            f"   measured difference noise {self.fd_noise:.1e}; loss {self.loss:.6g})",
        ]
        rows = [
            (
                c.name,
                str(c.shape),
                c.max_abs_error,
                c.max_rel_error,
                c.worst_index,
                c.analytic,
                c.numeric,
                "ok" if c.passed else f"FAIL ({c.n_failed} of {_size(c.shape)} elements)",
            )
            for c in self.parameters.values()
        ]
        lines += _table(("parameter", "shape", "analytic", "numeric"), rows)
        if self.autograd is not None:
            bad = [c for c in self.autograd.values() if not c.passed]
            worst = max((c.max_rel_error for c in self.autograd.values()), default=0.0)
            if not bad:
                lines.append(
                    f"Engine against torch autograd (float64 twin): all {len(self.autograd)} "
                    f"parameter tensors agree (max rel. error {worst:.1e})"
                )
            else:
                lines.append(
                    f"Engine against torch autograd (float64 twin): FAILED for {len(bad)} of "
                    f"{len(self.autograd)} parameter tensors"
                )
                rows = [
                    (
                        c.name,
                        "",
                        c.max_abs_error,
                        c.max_rel_error,
                        c.worst_index,
                        c.engine,
                        c.autograd,
                        "ok" if c.passed else f"FAIL ({c.n_failed} elements)",
                    )
                    for c in self.autograd.values()
                ]
                lines += _table(("parameter", "", "engine", "autograd"), rows)
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _table(headers: tuple[str, str, str, str], rows: list[tuple]) -> list[str]:
    name_w = max([len(headers[0])] + [len(r[0]) for r in rows])
    shape_w = max([len(headers[1])] + [len(r[1]) for r in rows])
    index_w = max([8] + [len(str(r[4])) for r in rows])
    head = (
        f"  {headers[0]:<{name_w}}  {headers[1]:<{shape_w}}  {'max abs err':>11}  "
        f"{'max rel err':>11}  {'worst at':<{index_w}}  {headers[2]:>11}  {headers[3]:>11}  verdict"
    )
    out = [head]
    for name, shape, abs_err, rel_err, index, a, n, verdict in rows:
        out.append(
            f"  {name:<{name_w}}  {shape:<{shape_w}}  {abs_err:>11.2e}  {rel_err:>11.2e}  "
            f"{index!s:<{index_w}}  {a:>+11.4e}  {n:>+11.4e}  {verdict}"
        )
    return out


def _compare(
    analytic: np.ndarray,
    reference: np.ndarray,
    rtol: float,
    atol: float,
    exclude: np.ndarray | None = None,
) -> tuple[float, float, tuple[int, ...], int, bool]:
    """Errors of ``analytic`` against ``reference`` under the module's pass rule.

    Returns (max abs error, max rel error, worst index, number failing, passed), all over the
    elements not in ``exclude``.
    """
    diff = np.abs(analytic - reference)
    denom = np.maximum(np.abs(analytic), np.abs(reference))
    rel = np.divide(diff, denom, out=np.zeros_like(diff), where=denom > 0)
    counted = np.ones(diff.shape, dtype=bool) if exclude is None else ~exclude
    if diff.size == 0 or not counted.any():
        index = (0,) * diff.ndim if diff.size else ()
        return 0.0, 0.0, index, 0, True
    # how many times over the rule an element is: > 1 means it fails
    badness = rel / rtol
    if atol > 0:
        badness = np.minimum(badness, diff / atol)
    badness = np.where(counted, badness, -np.inf)
    flat = int(np.argmax(badness))
    index = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    n_failed = int(np.count_nonzero(badness > 1.0))
    return float(diff[counted].max()), float(rel[counted].max()), index, n_failed, n_failed == 0


def _check_settings(eps: float, rtol: float, atol: float | None) -> None:
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if not (np.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol must be a positive finite number, got {rtol!r}")
    if atol is not None and not (np.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol must be a non-negative finite number or None, got {atol!r}")


def _scalar_loss(value: Any, where: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(
            f"the loss must be a real scalar, got {type(value).__name__} with shape {arr.shape} "
            f"and dtype {arr.dtype}"
        )
    loss = float(arr.reshape(()))
    if not np.isfinite(loss):
        raise ValueError(f"the loss is {loss} {where}; gradients cannot be checked there")
    return loss


Evaluate = Callable[[], tuple[float, list[np.ndarray]]]


@dataclass
class _Differences:
    numeric: dict[str, np.ndarray]  # central differences with step eps
    noise: dict[str, np.ndarray]  # |D_eps - D_2eps| per element
    kinks: dict[str, np.ndarray]  # the eps step crossed a kink
    near_kinks: dict[str, np.ndarray]  # the 2 eps step crossed one


def _central_differences(
    evaluate: Evaluate,
    params: dict[str, np.ndarray],
    eps: float,
    progress: bool | None = None,
) -> _Differences:
    """Central differences of ``evaluate`` with steps ``eps`` and ``2 eps`` for every element of
    ``params`` (perturbed in place, then restored), and whether each step changed the sign
    pattern that ``evaluate`` reports. ``progress``: a bar on stderr, as in ``train``."""
    _, base_signs = evaluate()
    total = sum(arr.size for arr in params.values())
    bar = ProgressBar(total, "gradient check", enabled=progress)
    done = 0

    def difference(arr: np.ndarray, index: tuple[int, ...], step: float) -> tuple[float, bool]:
        old = arr[index]
        # the steps actually taken, after rounding, are the right denominator
        hi, lo = old + step, old - step
        arr[index] = hi
        f_hi, signs_hi = evaluate()
        arr[index] = lo
        f_lo, signs_lo = evaluate()
        arr[index] = old
        crossed = any(
            np.any(s != b) for s, b in zip(signs_hi + signs_lo, base_signs * 2, strict=True)
        )
        return (f_hi - f_lo) / (hi - lo), crossed

    out = _Differences({}, {}, {}, {})
    for name, arr in params.items():
        out.numeric[name] = np.empty(arr.shape)
        out.noise[name] = np.empty(arr.shape)
        out.kinks[name] = np.zeros(arr.shape, dtype=bool)
        out.near_kinks[name] = np.zeros(arr.shape, dtype=bool)
        for index in np.ndindex(arr.shape):
            d1, crossed1 = difference(arr, index, eps)
            d2, crossed2 = difference(arr, index, 2.0 * eps)
            out.numeric[name][index] = d1
            out.noise[name][index] = abs(d1 - d2)
            out.kinks[name][index] = crossed1
            out.near_kinks[name][index] = crossed2
            done += 1
            if done % 64 == 0 or done == total:
                bar.update(done)
    bar.close()
    return out


def _finite_difference_checks(
    analytic: dict[str, np.ndarray],
    diffs: _Differences,
    loss: float,
    eps: float,
    rtol: float,
    atol: float | None,
    cap_noise: bool,
) -> tuple[dict[str, ParameterCheck], float, float]:
    """Per-parameter verdicts, the total absolute tolerance, and the measured noise."""
    if atol is None:
        atol = _ROUNDOFF_FACTOR * _MACHEPS * abs(loss) / eps
    usable = [diffs.noise[name][~(diffs.kinks[name] | diffs.near_kinks[name])] for name in analytic]
    noise = max(float(np.max(u, initial=0.0)) for u in usable)
    allowance = _NOISE_FACTOR * noise
    if cap_noise:
        largest = max(float(np.max(np.abs(n), initial=0.0)) for n in diffs.numeric.values())
        allowance = min(allowance, _NOISE_CAP * largest)
    tolerance = float(atol) + allowance
    checks = {}
    for name, a in analytic.items():
        n, kinks = diffs.numeric[name], diffs.kinks[name]
        abs_err, rel_err, index, n_failed, passed = _compare(a, n, rtol, tolerance, kinks)
        checks[name] = ParameterCheck(
            name=name,
            shape=tuple(a.shape),
            max_abs_error=abs_err,
            max_rel_error=rel_err,
            worst_index=index,
            analytic=float(a[index]) if a.size else 0.0,
            numeric=float(n[index]) if a.size else 0.0,
            passed=passed,
            n_failed=n_failed,
            n_kinks=int(np.count_nonzero(kinks)),
        )
    return checks, tolerance, noise


def _kink_notes(checks: dict[str, ParameterCheck], kinks: dict[str, np.ndarray]) -> list[str]:
    notes = []
    for name, check in checks.items():
        if check.n_kinks:
            first = tuple(int(i) for i in np.argwhere(kinks[name])[0])
            notes.append(
                f"{name}: at {check.n_kinks} element(s), e.g. {first}, the difference step crossed "
                "a ReLU/LeakyReLU kink (an input at 0 changed sign), where a finite difference is "
                "not a derivative; those elements are left out of the finite-difference verdict"
            )
    return notes


def _saturation_note(model: Sequential, X: np.ndarray, loss: Loss) -> list[str]:
    if not isinstance(loss, BCE):
        return []
    P = model.forward(X)  # (n, n_out)
    saturated = np.argwhere(np.minimum(P, 1.0 - P) < _BCE_SATURATED)
    if not len(saturated):
        return []
    first = tuple(int(i) for i in saturated[0])
    return [
        f"BCE: {len(saturated)} prediction(s), e.g. at {first}, lie within {_BCE_SATURATED:.0e} "
        "of 0 or 1, where the loss is computed from 1 - p with few correct digits or is clamped; "
        "there finite differences and autograd can disagree with any formula, so a mismatch "
        "confined to such samples is not a backprop bug (saturated outputs are worth fixing)"
    ]


def check_function_gradients(
    loss_fn: Callable[[dict[str, np.ndarray]], float],
    grad_fn: Callable[[dict[str, np.ndarray]], Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-7,
    atol: float | None = None,
    progress: bool | None = None,
) -> GradCheckResult:
    """Check a hand-written gradient of your own NumPy code against finite differences.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(params) -> float``, the loss at a dict of parameter arrays.
    grad_fn : callable
        ``grad_fn(params) -> dict`` of gradients with the same keys and shapes as ``params``.
    params : mapping of str to array_like
        Where to check, e.g. ``{"W1": (3, 8), "b1": (3,), ...}`` arrays. Never modified: every
        call of either function receives fresh float64 copies, so a function that changes its
        input in place changes nothing the check uses.
    eps : float, default 1e-6
        Central-difference step.
    rtol : float, default 1e-7
        Relative tolerance per element.
    atol : float, optional
        Absolute tolerance per element, to which the allowance for the measured difference noise
        is added; default ``16 * macheps * |loss| / eps`` (see the module docstring).
    progress : bool or None
        Progress bar on stderr (4 loss evaluations per element); None = only on a terminal for
        checks longer than about a second.

    Returns
    -------
    GradCheckResult
        ``.passed``, and per parameter the max errors, the worst element and its two values.

    Raises
    ------
    ValueError
        NaN or inf in a parameter or gradient, a gradient of the wrong shape, keys of the
        gradient dict that differ from those of ``params``, a non-finite loss.
    TypeError
        ``params`` not a mapping, non-numeric arrays, a loss that is not a real scalar.
    """
    _check_settings(eps, rtol, atol)
    if not isinstance(params, Mapping) or not params:
        raise TypeError(
            f"params must be a non-empty dict of name -> array, got {type(params).__name__}"
        )
    work = {
        name: np.array(as_float_array(value, f"params[{name!r}]", ndim=None), dtype=np.float64)
        for name, value in params.items()
    }
    grads = grad_fn({name: arr.copy() for name, arr in work.items()})
    if not isinstance(grads, Mapping):
        raise TypeError(f"grad_fn must return a dict of gradients, got {type(grads).__name__}")
    missing = [name for name in work if name not in grads]
    extra = [name for name in grads if name not in work]
    if missing or extra:
        raise ValueError(
            "grad_fn must return a gradient for exactly the keys of params; "
            f"missing: {missing}, unexpected: {extra}"
        )
    analytic = {}
    for name, arr in work.items():
        g = as_float_array(grads[name], f"gradient {name!r}", ndim=None)
        if g.shape != arr.shape:
            raise ValueError(
                f"gradient {name!r} has shape {g.shape} but parameter {name!r} has {arr.shape}"
            )
        analytic[name] = g

    def fresh() -> dict[str, np.ndarray]:
        return {name: arr.copy() for name, arr in work.items()}

    def evaluate() -> tuple[float, list[np.ndarray]]:
        return _scalar_loss(loss_fn(fresh()), "at a perturbed point"), []

    loss = _scalar_loss(loss_fn(fresh()), "at params")
    diffs = _central_differences(evaluate, work, eps, progress)
    checks, tolerance, noise = _finite_difference_checks(
        analytic, diffs, loss, eps, rtol, atol, cap_noise=True
    )
    return GradCheckResult(checks, None, loss, float(eps), float(rtol), tolerance, noise)


def _engine_gradients(
    model: Sequential, X: np.ndarray, Y: np.ndarray, loss: Any
) -> dict[str, np.ndarray]:
    model.zero_grad()
    P = model.forward(X)  # (n, n_out)
    model.backward(loss.gradient(P, Y))
    return {name: np.array(g, dtype=np.float64) for name, g in model.named_gradients().items()}


def _autograd_gradients(
    model: Sequential, X: np.ndarray, Y: np.ndarray, loss: Any
) -> dict[str, np.ndarray]:
    twin = to_torch(model)
    torch_loss = loss_to_torch(loss)
    torch = _extras.require("torch")
    value = torch_loss(twin(torch.from_numpy(X)), target_to_torch(loss, Y))
    value.backward()
    torch_grads = {name: p.grad for name, p in twin.named_parameters()}
    return {
        name: torch_grads[torch_parameter_name(name)].detach().numpy().copy()
        for name in model.named_parameters()
    }


def check_gradients(
    model: Sequential,
    X: Any,
    Y: Any,
    loss: Loss | str,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-7,
    atol: float | None = None,
    autograd: bool | None = None,
    progress: bool | None = None,
) -> GradCheckResult:
    """Check an engine model's backward pass against finite differences and torch autograd.

    Parameters
    ----------
    model : nndoctor.nn.Sequential
        Checked on a deep copy: the model (weights, gradients, caches) is left untouched.
    X : array_like, shape (n_samples, n_features)
    Y : array_like, shape (n_samples, n_outputs), or (n_samples,) integer labels for
        CrossEntropy; None means ``X`` (an autoencoder)
    loss : Loss or str
        An engine loss (``SSE()``, ``MSE()``, ...) or its name (``"sse"``, ...).
    eps : float, default 1e-6
        Central-difference step.
    rtol : float, default 1e-7
        Relative tolerance per element.
    atol : float, optional
        Absolute tolerance per element for the finite-difference check, to which the allowance
        for the measured difference noise is added; default ``16 * macheps * |loss| / eps``.
    autograd : bool, optional
        None: also compare with autograd on the :func:`nndoctor.torch.to_torch` twin when torch
        is installed and the model and loss have twins (a note says why when skipped);
        True: require it; False: skip it.
    progress : bool or None
        Progress bar on stderr; None = only on a terminal for checks longer than a second.

    Returns
    -------
    GradCheckResult

    Raises
    ------
    ValueError, TypeError
        Shapes of X or Y that do not fit the model, NaN or inf (with its position), labels out
        of range, a model or loss of the wrong kind.
    ImportError
        ``autograd=True`` without torch installed.
    """
    _check_settings(eps, rtol, atol)
    loss = get_loss(loss)
    X, Y = validate_data(model, X, Y, loss)
    if not model.named_parameters():
        raise ValueError("the model has no parameters to check (no Dense layer)")
    for name, value in model.named_parameters().items():
        check_finite(value, f"the model's parameter {name}")
    work = copy.deepcopy(model)
    # inputs of scale 1e300 overflow in the backward pass: a clear error, not a warning
    with np.errstate(over="ignore", invalid="ignore"):
        analytic = _engine_gradients(work, X, Y, loss)
    for name, g in analytic.items():
        check_finite(g, f"the engine's gradient of {name} (an overflow: rescale the data)")
    params = work.named_parameters()

    def evaluate() -> tuple[float, list[np.ndarray]]:
        h = X
        signs = []
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a non-finite loss
            for layer in work.layers:
                if isinstance(layer, _KINKED):
                    signs.append(h > 0)
                h = layer.forward(h)
            value = loss(h, Y)
        return _scalar_loss(value, "at a perturbed point"), signs

    loss_value = _scalar_loss(evaluate()[0], "at the model's parameters")
    diffs = _central_differences(evaluate, params, eps, progress)
    checks, tolerance, noise = _finite_difference_checks(
        analytic, diffs, loss_value, eps, rtol, atol, cap_noise=False
    )
    notes = _kink_notes(checks, diffs.kinks) + _saturation_note(work, X, loss)

    autograd_checks = None
    if autograd is not False:
        try:
            reference = _autograd_gradients(work, X, Y, loss)
        except (ImportError, TypeError) as exc:
            if autograd:
                raise
            notes.append(f"autograd comparison skipped: {exc}")
        else:
            scale = max(float(np.max(np.abs(g), initial=0.0)) for g in reference.values())
            ag_atol = _AUTOGRAD_NOISE_FACTOR * _MACHEPS * scale
            autograd_checks = {}
            for name, a in analytic.items():
                abs_err, rel_err, index, n_failed, passed = _compare(
                    a, reference[name], rtol, ag_atol
                )
                autograd_checks[name] = AutogradCheck(
                    name=name,
                    max_abs_error=abs_err,
                    max_rel_error=rel_err,
                    worst_index=index,
                    engine=float(a[index]),
                    autograd=float(reference[name][index]),
                    passed=passed,
                    n_failed=n_failed,
                )
    return GradCheckResult(
        checks, autograd_checks, loss_value, float(eps), float(rtol), tolerance, noise, tuple(notes)
    )
