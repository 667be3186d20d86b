"""The plain data the doctor's core works on, whatever trained the model.

Nothing here imports a framework: a backend (``nndoctor.backends.engine`` for
``nndoctor.nn``, ``nndoctor.backends.torch`` for ``torch.nn.Module``) fills these
structures, and the rules, the trials' judge and the report read only them.

- :class:`LayerTrace` and :class:`Probes`: what was recorded during training, per weighted layer
  and for the whole run;
- :class:`LayerSpec`, :class:`LossSpec`, :class:`DataStats` and :class:`Context`: the
  architecture, the loss, the data and the bounds, known before training;
- :class:`Run`: one training run, the unit trials and pre-flight checks re-run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# a sigmoid/tanh pre-activation beyond this is saturated (derivative below 0.0066 for sigmoid)
SATURATION_Z = 5.0
# relative singular-value cut-off for the numeric rank of a layer's activations
RANK_TOL = 1e-6
# weights of a layer with more entries than this are kept as a seeded random projection of
# their rows (enough to tell identical units apart), not as a full copy
MAX_WEIGHT_COPY = 1_000_000

SQUASHING = ("sigmoid", "tanh")
RECTIFIED = ("relu",)
# an activation the recorder could not see: rules that need it stay silent
UNKNOWN = "unknown"

# the per-probe series of every LayerTrace, in the order of Probes.as_dict
LAYER_SERIES = (
    "weight_norm",
    "grad_norm",
    "update_ratio",
    "frac_saturated",
    "frac_dead",
    "act_rank",
    "z_rms",
)

AUTOENCODER = "autoencoder"
REGRESSION = "regression"
BINARY = "binary"
CLASSIFICATION = "classification"

# what one input is (TaskSpec.inputs)
FEATURES = "features"  # (n, f) floats
IMAGES = "images"  # (n, c, h, w)
SEQUENCES = "sequences"  # (n, t, f)
TOKENS = "tokens"  # integer ids into an embedding, (n, t) or (n,)
# what one target is (TaskSpec.unit): a sample, or an element of one
SAMPLE = "sample"


@dataclass
class LayerTrace:
    """One weighted layer (its units) and the activation that follows it.

    Series have one entry per probe (shape ``(m,)``); snapshots are arrays of the weights,
    viewed as ``(units, fan_in)`` (``Dense`` and ``torch.nn.Linear`` store them so; a conv
    kernel is flattened per output channel). ``z_rms`` is the root-mean-square output of the
    layer (the pre-activation) on the probe batch. ``name`` is what the user knows the layer
    by: ``"0"`` (engine index) or ``"encoder.fc1"`` (``named_modules()``). ``activation`` is
    ``"unknown"`` when the recorder could not tell.
    """

    name: str
    in_features: int
    out_features: int
    activation: str
    weight_norm: np.ndarray
    grad_norm: np.ndarray
    update_ratio: np.ndarray
    frac_saturated: np.ndarray
    frac_dead: np.ndarray
    act_rank: np.ndarray
    W_init: np.ndarray
    b_init: np.ndarray
    W_final: np.ndarray
    b_final: np.ndarray
    dead_units: np.ndarray
    unit_saturation: np.ndarray
    z_rms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    kind: str = "dense"


@dataclass
class ParameterFacts:
    """One parameter tensor as the training loop treated it."""

    numel: int
    requires_grad: bool
    in_optimizer: bool
    # whether training changed its value at all
    changed: bool
    # gradient checks (probe steps) at which it had no gradient (``.grad`` None)
    no_grad_checks: int = 0


# why a parameter got no gradient though it requires one, when the loss does not use it:
# its module never ran in the forward pass, or ran but its output never reached the loss, or
# its module's forward never reads it (its other parameters got gradients)
NOT_RUN = "not-run"
NOT_REACHING_LOSS = "not-reaching-loss"
NOT_READ = "not-read"


@dataclass
class BatchMixing:
    """Whether a sample's output depends on the other samples of its batch, in eval mode.

    Every even row of the probe batch is replaced by the odd row after it; the odd rows keep
    their place and content, so their outputs must not change.

    Attributes
    ----------
    rows : int
        Rows whose outputs were compared (the ones kept).
    replaced : int
        Rows replaced.
    changed_rows : int
        Compared rows whose output changed by more than ``tolerance``.
    max_change : float
        The largest relative change of a compared row's output: ``|o' - o| / max(|o|,
        mean row norm)`` (Euclidean norms over the row's outputs).
    row : int
        The row (of the probe batch) where it is largest.
    tolerance : float
        The relative change that counts as a change (rounding of the weights' dtype).
    """

    rows: int
    replaced: int
    changed_rows: int
    max_change: float
    row: int
    tolerance: float


@dataclass
class LoopFacts:
    """What a backend that sees the user's training loop records besides the probes.

    Attributes
    ----------
    parameters : dict of str to ParameterFacts
        Every parameter of the model by its qualified name.
    gradient_checks : int
        Probe steps at which the parameters' gradients were checked.
    stale_checks, decided_stale_checks : int
        Checks that saw the previous steps' gradients still in ``.grad``, of those that could
        tell (the old gradient large enough).
    leaked_checks, decided_leak_checks : int
        Checks whose gradient still held what a backward pass put there before another
        optimizer stepped (a GAN generator's loss, run through the discriminator, added to the
        discriminator's next update), of those that could tell.
    cut_terms : tuple of (int, int)
        Probe steps whose loss added a term that reached parameters, none of them this
        model's optimizer's (a generator's adversarial term on a detached fake reaches the
        discriminator alone), of the probe steps whose loss added several terms.
    cut_reached : int
        The parameter tensors such a term reached.
    lr_steps : list of (int, float)
        ``(step, learning rate)`` where the rate changed, the first step included.
    eval_steps, steps : int
        Optimizer steps taken with the model in ``eval()`` mode, and in all.
    train_mode_evals, train_mode_eval_gaps : int
        Forward passes of the model without gradients (an evaluation) while it was in
        ``train()`` mode, and the gaps between optimizer steps that held at least one.
    has_norm_or_dropout : bool
        Whether the model holds BatchNorm or Dropout (eval mode changes what they compute).
    loss_shapes : (tuple, tuple) or None
        Prediction and target shapes of the first loss call seen.
    output_activation : str
        The activation read off the model's output layer (``"unknown"`` when none fits).
    unused : dict of str to str
        Parameters that require a gradient and never got one because the loss does not use
        them, by name: ``"not-run"`` (their module never ran in the forward pass) or
        ``"not-reaching-loss"`` (it ran, but changing its output changes no output the loss
        reads) or ``"not-read"`` (its module's forward never reads it: the module's other
        parameters got gradients). The others without a gradient are cut from the loss (a
        detached graph).
    optimizer_only : dict of str to int
        Tensors the optimizer holds that are no parameter of the model at the end and got no
        gradient (the model no longer uses them: layers replaced after the optimizer was
        built), by name (the model's name for them when they were its parameters, else
        ``param_groups[g][k]``) and shape, with their element counts.
    not_in_optimizer : dict of str to int
        The model's parameters at the end that require a gradient and that no parameter group
        of the optimizer holds, by name, with their element counts.
    batch_mixing : BatchMixing or None
        The end-of-run check of whether outputs mix samples; None when it could not run (no
        probe batch of one tensor, an output without a row per sample, a norm layer that
        uses the batch's statistics in eval mode).
    softmax_over_batch : (str, tuple of int) or None
        A softmax or log-softmax the loss's graph takes over dim 0 of a tensor of the batch's
        rows (not a square ``(rows, rows)`` matrix of pairs, which a contrastive loss
        normalises both ways by design), as ``(operation, shape)``: each sample's loss then
        depends on the other samples of its batch.
    nll_scores : (float, float) or None
        An NLL loss given raw scores instead of log-probabilities, as ``(median logsumexp of
        its input's rows, largest input)`` (0 and at most 0 for log-probabilities).
    target_range : (float, float) or None
        The smallest and largest class label of all the probed batches (ignored labels left
        out; None for float targets): the classes a watched loop trained on, where its kept
        sample holds the first probed batches only.
    ranks, missing_ranks : int, list of int
        Processes merged into these facts, and those that sent nothing (distributed runs).
    adversarial : bool
        The loss runs through another model trained beside this one (a GAN's pair): a loss
        that rises says nothing of the step size (a discriminator's rises as its generator
        improves).
    """

    parameters: dict[str, ParameterFacts] = field(default_factory=dict)
    gradient_checks: int = 0
    stale_checks: int = 0
    decided_stale_checks: int = 0
    leaked_checks: int = 0
    decided_leak_checks: int = 0
    cut_terms: tuple[int, int] = (0, 0)
    cut_reached: int = 0
    lr_steps: list[tuple[int, float]] = field(default_factory=list)
    eval_steps: int = 0
    steps: int = 0
    train_mode_evals: int = 0
    train_mode_eval_gaps: int = 0
    has_norm_or_dropout: bool = False
    loss_shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    output_activation: str = UNKNOWN
    # softmax and log-softmax applied in a row right before the loss (2: the loss applies the
    # one the model already did, as F.cross_entropy after a softmax), read off its graph
    loss_softmaxes: int = 0
    unused: dict[str, str] = field(default_factory=dict)
    optimizer_only: dict[str, int] = field(default_factory=dict)
    not_in_optimizer: dict[str, int] = field(default_factory=dict)
    batch_mixing: BatchMixing | None = None
    softmax_over_batch: tuple[str, tuple[int, ...]] | None = None
    nll_scores: tuple[float, float] | None = None
    target_range: tuple[float, float] | None = None
    ranks: int = 1
    missing_ranks: list[int] = field(default_factory=list)
    adversarial: bool = False


# what made the first NaN or inf of a run (NanSource.kind)
LOG_OF_ZERO = "log-of-zero"
LOG_OF_NEGATIVE = "log-of-negative"
DIVISION_BY_ZERO = "division-by-zero"
MASKED_SOFTMAX = "masked-softmax"
EXP_OVERFLOW = "exp-overflow"
OVERFLOW = "overflow"
SQRT_OF_NEGATIVE = "sqrt-of-negative"
INVALID = "invalid"
NON_FINITE_DATA = "non-finite-data"
NON_FINITE_WEIGHTS = "non-finite-weights"
BACKWARD = "backward"
IN_LOSS = "in-loss"
NOT_REPRODUCED = "not-reproduced"
NAN_KINDS = (
    LOG_OF_ZERO,
    LOG_OF_NEGATIVE,
    DIVISION_BY_ZERO,
    MASKED_SOFTMAX,
    EXP_OVERFLOW,
    OVERFLOW,
    SQRT_OF_NEGATIVE,
    INVALID,
    NON_FINITE_DATA,
    NON_FINITE_WEIGHTS,
    BACKWARD,
    IN_LOSS,
    NOT_REPRODUCED,
)


@dataclass
class NanSource:
    """Where the first NaN or inf of a run came from: the operation that made it out of
    finite numbers, found by replaying the failing step (the PyTorch backend).

    Attributes
    ----------
    kind : str
        One of :data:`NAN_KINDS`: ``"log-of-zero"``, ``"division-by-zero"``,
        ``"masked-softmax"`` (a softmax or attention over a row with every entry masked),
        ``"overflow"`` (finite inputs, an inf out: beyond the dtype's largest number),
        ``"exp-overflow"``, ``"backward"`` (the forward pass and the loss finite, a gradient
        not), ``"non-finite-data"`` (the batch itself), ``"non-finite-weights"`` (already
        NaN/inf before the step: an earlier update made them so), ``"in-loss"`` (the model's
        output finite, the loss not, and the loss could not be replayed), ``"not-reproduced"``
        (the replay was finite throughout), ...
    step : int
        The step whose loss (or gradient) was not finite.
    phase : str
        ``"forward"`` (the model), ``"loss"``, ``"backward"``, ``"data"`` (the batch itself) or
        ``"input"`` (an input computed in the step by something else than the model: ``module``
        then names the argument, ``"input 1"``, or is ``""`` when not known).
    op : str
        The operation: a torch function (``"log"``, ``"div"``, ``"softmax"``, ``"linear"``,
        ``"multi_head_attention_forward"``) or a backward node (``"SqrtBackward0"``).
    module : str
        Qualified name of the module it ran in (``"encoder.attn"``; ``""`` the model's own
        forward; ``"loss"`` the loss).
    module_type : str
        That module's class name.
    dtype : str
        The dtype of the operation's output (``"float16"``, ``"bfloat16"``, ``"float32"``).
    values : dict
        The numbers around it, per kind (``zeros``, ``first_index``, ``max_input``,
        ``dtype_max``, ``masked_rows``, ``batch_rows``, ...), and ``then``: the operation
        where a NaN appeared next when the origin made an inf (``"mul"``: 0 times inf).
    weight_growth : float
        Largest ratio over the weighted layers of the weights' norm at the failing step to
        their norm at the start (NaN when unknown): whether the weights grew before the NaN.
    """

    kind: str
    step: int
    phase: str = "forward"
    op: str = ""
    module: str = ""
    module_type: str = ""
    dtype: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    weight_growth: float = math.nan

    @property
    def located(self) -> bool:
        """Whether an operation (or the data, or the weights) was named."""
        return self.kind != NOT_REPRODUCED


@dataclass
class StabilityTrace:
    """What a backend records for the stability rules (:mod:`nndoctor.doctor.rules.stability`):
    per step one gradient norm, per probe a summary per layer and per attention site.

    Every per-step number stays on the device between probes (no wait for it on a step without
    a probe); a probe brings them to the host in one transfer and keeps ``O(layers)`` numbers.

    Attributes
    ----------
    layers : list of str
        The weighted layers whose gradients are summarised (the columns of ``grad_*``).
    grad_norm : ndarray, shape (steps,)
        Norm of the weighted layers' weight gradients at every optimizer step (NaN where the
        step had none), combined across the ranks of a sharded model.
    steps : ndarray, shape (m,)
        The step of each probe of this trace (its last row: the end of the run).
    grad_max, grad_mean : ndarray, shape (m, layers)
        Per layer the largest and the mean per-step gradient norm over the steps since the
        previous probe (this probe's step included); NaN where no step was recorded.
    grad_max_step : ndarray, shape (m, layers)
        The step of that largest norm (float: NaN where none).
    attention : list of str
        The attention sites seen (the module that called the attention), columns of
        ``attention_*``.
    attention_logit_max : ndarray, shape (m, sites)
        Largest attention logit (``q . k * scale``, masked entries left out) on the probe's
        forward pass; NaN where the site was not seen.
    attention_entropy : ndarray, shape (m, sites)
        Mean entropy (nats) of the attention rows.
    logit_lse, logit_max : ndarray, shape (m,)
        Mean log-sum-exp of the model's output logits over the last axis (the log of the
        softmax's normaliser, ``log Z``) and the largest absolute logit; NaN when the output
        is not logits.
    compute_dtype : str
        ``"float16"``, ``"bfloat16"`` or ``"float32"``/``"float64"``: what the forward pass
        computed in (autocast's dtype, else the weights').
    scaler_scale : ndarray, shape (m,)
        A loss scaler's scale at each probe (NaN without one).
    scaler_skipped : ndarray, shape (m,)
        Optimizer steps the scaler skipped so far (non-finite gradients), at each probe.
    scaler_updates : int
        The scaler's updates in all (steps taken and skipped); 0 without a scaler.
    scaler_skipped_total, scaler_longest_skip_run : int
        Steps skipped in all, and the most skipped in a row.
    scaler_collapse_start : int
        The optimizer steps taken when the episode with the most skipped steps began (skips
        fewer than 8 good steps apart are one episode; -1: none).
    scaler_scale_first, scaler_scale_last : float
        The scale at the first update seen and at the last probe.
    """

    layers: list[str]
    grad_norm: np.ndarray
    steps: np.ndarray
    grad_max: np.ndarray
    grad_mean: np.ndarray
    grad_max_step: np.ndarray
    attention: list[str] = field(default_factory=list)
    attention_logit_max: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    attention_entropy: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    logit_lse: np.ndarray = field(default_factory=lambda: np.zeros(0))
    logit_max: np.ndarray = field(default_factory=lambda: np.zeros(0))
    compute_dtype: str = "float32"
    scaler_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scaler_skipped: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scaler_updates: int = 0
    scaler_skipped_total: int = 0
    scaler_longest_skip_run: int = 0
    scaler_collapse_start: int = -1
    scaler_scale_first: float = math.nan
    scaler_scale_last: float = math.nan


@dataclass
class Probes:
    """Everything recorded during one training run.

    Attributes
    ----------
    steps : ndarray, shape (m,)
        Step index of each probe.
    step_loss : ndarray, shape (steps_run,)
        Loss of every step before its update.
    epoch_loss : ndarray, shape (epochs_run,)
    layers : list of LayerTrace
        The weighted layers, in the order the forward pass ran them.
    output_std : ndarray, shape (m,)
        Mean over outputs of the std of the predictions across the probe batch.
    target_std : float
        The same for the probe targets (one-hot for class labels).
    probe_output : ndarray, shape (rows, out)
        Predictions on the probe batch at the end (last finite weights).
    probe_target : ndarray
        The probe targets.
    diverged : dict or None
        ``step``, ``epoch``, ``layer`` (first layer whose output or weights were non-finite).
    steps_per_epoch, epochs, batch_size : int
    probe_every : int
    probe_loss : float
        Loss of the end weights on the probe batch, averaged over consecutive chunks of
        ``batch_size`` rows: the unit of ``epoch_loss``, but with the weights held fixed.
    eps : float
        Machine epsilon of the dtype the weights were trained in.
    loop : LoopFacts or None
        The training loop's facts, from a backend that sees the loop (PyTorch's hooks); None
        otherwise (the rules that need them stay silent).
    nan_source : NanSource or None
        Where the first NaN or inf came from, from a backend that replays the failing step;
        None when nothing was non-finite or the backend cannot tell.
    """

    steps: np.ndarray
    step_loss: np.ndarray
    epoch_loss: np.ndarray
    layers: list[LayerTrace]
    output_std: np.ndarray
    target_std: float
    probe_output: np.ndarray
    probe_target: np.ndarray
    diverged: dict[str, Any] | None
    steps_per_epoch: int
    epochs: int
    batch_size: int
    probe_every: int
    probe_loss: float = math.nan
    loop: LoopFacts | None = None
    # False: the loop marked no epochs; ``epoch_loss`` holds means over windows of
    # ``steps_per_epoch`` steps (and the report says "steps")
    epochs_known: bool = True
    nan_source: NanSource | None = None
    # machine epsilon of the weights' dtype: what "equal up to rounding" means
    eps: float = float(np.finfo(np.float64).eps)
    # the stability rules' per-step gradient norms and per-probe summaries (a backend that
    # records them: PyTorch's watch); None otherwise (those rules stay silent)
    stability: StabilityTrace | None = None

    @property
    def finite_epoch_loss(self) -> np.ndarray:
        """``epoch_loss`` without its non-finite entries (a diverged run's last epoch)."""
        return self.epoch_loss[np.isfinite(self.epoch_loss)]

    @property
    def final_loss(self) -> float:
        """Mean loss of the last full epoch (of the last finite steps when diverged)."""
        if self.diverged is None and len(self.epoch_loss):
            return float(self.epoch_loss[-1])
        finite = self.step_loss[np.isfinite(self.step_loss)]
        return float(np.mean(finite[-self.steps_per_epoch :])) if finite.size else math.nan

    def as_dict(self) -> dict[str, Any]:
        """The series by name, for plots and the report."""
        out: dict[str, Any] = {
            "steps": self.steps,
            "step_loss": self.step_loss,
            "epoch_loss": self.epoch_loss,
            "output_std": self.output_std,
            "target_std": self.target_std,
            "steps_per_epoch": self.steps_per_epoch,
        }
        for t in self.layers:
            for key in LAYER_SERIES:
                out[f"{t.name}.{key}"] = getattr(t, key)
            # for the report's plots: the activation's name, the end weights (unit similarity)
            out[f"{t.name}.activation"] = t.activation
            out[f"{t.name}.W_final"] = t.W_final
        return out


@dataclass
class LayerSpec:
    """One layer: ``kind`` is ``"dense"`` (any weighted layer) or an activation name
    (``"sigmoid"``, ``"relu"``, ``"softmax"``, ``"unknown"``); ``conv``: a convolution (a
    Linear and a convolution in a row meet through a reshape)."""

    kind: str
    in_features: int | None = None
    out_features: int | None = None
    init: str | None = None
    name: str | None = None
    conv: bool = False


# loss kinds the bounds and rules know
LOSS_KINDS = ("sse", "mse", "bce", "cross_entropy")


@dataclass(frozen=True)
class LossSpec:
    """What the loss computes, as plain data.

    Attributes
    ----------
    kind : str
        ``"sse"``, ``"mse"``, ``"bce"``, ``"cross_entropy"``, or the class name of a loss the
        doctor does not know (then the bounds are skipped).
    reduction : {"mean", "sum"}
    from_logits : bool
        BCE computed from logits (``BCEWithLogitsLoss``): predictions are compared after a
        sigmoid. CrossEntropy always takes logits.
    name : str
        The loss as the user named it (``"MSELoss"``, ``"SSE"``).
    kind_read : bool
        ``kind`` was read from the loss's graph, not from the name (a ``focal`` function
        around ``F.cross_entropy``): reports then call the loss by its ``name``.
    weighted : bool
        The loss weighs its classes or positives (``weight``, ``pos_weight``) or smooths its
        labels: its best constant prediction is not the one the class shares give, so the
        bounds are skipped and say why.
    added_terms : bool
        The loss the user wrote adds other terms to this one (a Dice term, a weight penalty):
        ``kind`` is the term the doctor knows, whose targets and outputs the rules read; the
        value is not that loss's, so the bounds are skipped and say why.
    """

    kind: str
    reduction: str = "mean"
    from_logits: bool = False
    name: str = ""
    kind_read: bool = False
    weighted: bool = False
    added_terms: bool = False

    @property
    def words(self) -> str:
        """What a report calls the loss (``bce plus other terms`` when it adds some)."""
        words = self.name if self.kind_read and self.name else self.kind
        return f"{words} plus other terms" if self.added_terms else words

    @property
    def known(self) -> bool:
        return self.kind in LOSS_KINDS

    @property
    def scale(self) -> float:
        """The constant in front of the sum (0.5 for SSE)."""
        return 0.5 if self.kind == "sse" else 1.0

    def numpy_loss(self) -> Any:
        """The same loss as an ``nndoctor.nn`` loss object (plain NumPy), which the bounds and
        the probe-batch loss evaluate; None for a loss the doctor does not know."""
        from nndoctor.nn import losses

        make = {
            "sse": lambda: losses.SSE(),
            "mse": lambda: losses.MSE(self.reduction),
            "bce": lambda: losses.BCE(self.reduction),
            "cross_entropy": lambda: losses.CrossEntropy(self.reduction),
        }.get(self.kind)
        return make() if make else None


@dataclass
class DataStats:
    """Statistics of inputs and targets, computed once before training."""

    n_samples: int
    x_std: np.ndarray
    x_mean: np.ndarray
    x_absmax: float
    y_min: np.ndarray
    y_max: np.ndarray
    y_std: np.ndarray
    y_integer: bool
    class_counts: np.ndarray | None
    # correlation of consecutive targets in data order: about 0 for shuffled data, near 1
    # for data sorted by class or by target (time series)
    y_order_corr: float = math.nan


@dataclass(frozen=True)
class TaskSpec:
    """The data's structure as the loss sees it: what one input is, what one target is, and the
    unit the loss averages over.

    Attributes
    ----------
    inputs : {"features", "images", "sequences", "tokens"}
        Token ids are ids: no scale, no variance, no distance between them.
    unit : str
        What one target is: ``"sample"`` (a class or a value per sample), or an element of one
        (``"token"``, ``"pixel"``, ``"step"``, ``"element"``): then every count, share, baseline
        and bound is per element.
    units_per_sample : float
        Targets per sample, the ignored ones left out (1 for ``"sample"``).
    ignore_index : int or None
        Class targets equal to it are left out of everything (``ignore_index=-100``).
    scale : float
        The loss's value over the mean loss of its units: 1 when it averages over them, the units
        of a batch when it sums them, the units of a sample for a sum per sample averaged over the
        batch; NaN when the doctor could not read it (a loss it cannot see into).
    known : bool
        Whether the structure was read off the loss's own computation (False: assumed, one
        target per sample; the rules that need more stay silent).
    """

    inputs: str = FEATURES
    unit: str = SAMPLE
    units_per_sample: float = 1.0
    ignore_index: int | None = None
    scale: float = 1.0
    known: bool = True

    @property
    def per_sample(self) -> bool:
        return self.unit == SAMPLE


@dataclass
class Context:
    """What the rules know besides the probes.

    Attributes
    ----------
    layers : list of LayerSpec
    loss : LossSpec
    optimizer : dict
        ``name`` and the constructor arguments (``lr``, ...).
    task : str
        ``"autoencoder"``, ``"regression"``, ``"binary"`` (BCE) or ``"classification"`` (CE).
    data : DataStats
    bounds : dict
        ``baseline``, ``loss_at_rank`` (autoencoders), ``explained_variance_ratio``,
        ``least_squares``, ``predictability`` (a dict), ``text``.
    preflight : dict
        Results of :mod:`nndoctor.doctor.preflight` (may be empty).
    gradcheck : dict or None
        ``passed`` and per-parameter worst relative errors.
    shuffle : bool or None
        Whether training reshuffles the samples every epoch; None when unknown.
    structure : TaskSpec
        What one input and one target are, and the loss's unit.
    """

    layers: list[LayerSpec]
    loss: LossSpec
    optimizer: dict[str, Any]
    task: str
    data: DataStats
    bounds: dict[str, Any] = field(default_factory=dict)
    preflight: dict[str, Any] = field(default_factory=dict)
    gradcheck: dict[str, Any] | None = None
    shuffle: bool | None = None
    structure: TaskSpec = field(default_factory=TaskSpec)

    @property
    def loss_name(self) -> str:
        return self.loss.kind

    @property
    def dense_widths(self) -> list[int]:
        return [s.out_features for s in self.layers if s.kind == "dense" and s.out_features]

    @property
    def hidden_widths(self) -> list[int]:
        return self.dense_widths[:-1]

    @property
    def output_activation(self) -> str:
        """Name of the last layer when it is an activation, else ``"identity"``."""
        last = self.layers[-1].kind if self.layers else "identity"
        return "identity" if last == "dense" else last

    @property
    def lr(self) -> float:
        return float(self.optimizer.get("lr", math.nan))


@dataclass
class Run:
    """One training run: a backend's model, loss and optimiser with the data and budget.

    ``model``, ``loss`` and ``optimizer`` are the backend's own objects (for PyTorch the
    optimiser is a factory ``params -> torch.optim.Optimizer``); the backend alone reads them.
    ``X`` and ``Y`` are NumPy arrays (``Y`` is ``X`` for an autoencoder). ``metric`` and
    ``unscale`` say how a trial that changed the loss or the targets' units is judged.
    """

    backend: Any
    model: Any
    X: np.ndarray
    Y: np.ndarray
    loss: Any
    optimizer: Any
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int
    metric: str = "loss"
    # maps the changed run's predictions back to the original targets' units
    unscale: Callable[[np.ndarray], np.ndarray] | None = None
    # backend-specific settings a change can set (PyTorch: zero_grad, train_mode, ...)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def autoencoder(self) -> bool:
        return is_autoencoder(self.X, self.Y)


@dataclass
class Fit:
    """A finished training run of a copy: the trained model and its loss curve.

    ``epoch_loss`` is the mean batch loss per epoch; ``diverged`` the first non-finite loss
    (``{"epoch", "step", "loss"}``) or None.
    """

    model: Any
    epoch_loss: np.ndarray
    diverged: dict[str, Any] | None = None
    wall_time: float = 0.0

    @property
    def final_loss(self) -> float:
        return float(self.epoch_loss[-1]) if len(self.epoch_loss) else math.nan


# --- small pure functions over these structures ---


def is_autoencoder(X: np.ndarray, Y: np.ndarray) -> bool:
    """Whether the targets are the inputs (the same array or equal values)."""
    return Y is X or (Y.shape == X.shape and np.array_equal(X, Y))


def batch_mean_loss(
    loss: Callable[[np.ndarray, np.ndarray], float], P: np.ndarray, Y: np.ndarray, batch_size: int
) -> float:
    """Mean of ``loss`` over consecutive chunks of ``batch_size`` rows of predictions ``P``
    ``(n, out)`` and targets ``Y``: the unit of ``History.loss``, with the weights held fixed."""
    return float(
        np.mean(
            [
                loss(P[lo : lo + batch_size], Y[lo : lo + batch_size])
                for lo in range(0, len(P), batch_size)
            ]
        )
    )


def effective_targets(Y: np.ndarray, n_outputs: int, labels: bool) -> np.ndarray:
    """Targets as the output space sees them: one-hot for class labels, else as they are."""
    if labels:
        return np.eye(max(n_outputs, 2))[Y.astype(np.intp)][:, :n_outputs]
    return Y


def prediction_space(P: np.ndarray, labels: bool) -> np.ndarray:
    """Predictions comparable with :func:`effective_targets`: softmax of logits for labels."""
    if labels:
        Z = np.exp(P - P.max(axis=1, keepdims=True))
        return Z / Z.sum(axis=1, keepdims=True)
    return P


def numeric_rank(H: np.ndarray) -> int:
    """Numeric rank of the centred activations ``H`` (rows = samples)."""
    Hc = H - H.mean(axis=0)
    if not np.all(np.isfinite(Hc)) or not Hc.any():
        return 0
    s = np.linalg.svd(Hc, compute_uv=False)
    return int(np.sum(s > RANK_TOL * s[0]))


def weight_view(W: np.ndarray, seed: int = 0) -> np.ndarray:
    """``W`` as ``(units, fan_in)`` float64; rows of a very large layer projected onto a seeded
    random basis of ``MAX_WEIGHT_COPY // units`` columns (equal rows stay equal)."""
    W = np.asarray(W, dtype=np.float64).reshape(len(W), -1)
    if W.size <= MAX_WEIGHT_COPY:
        return W.copy()
    k = max(1, MAX_WEIGHT_COPY // len(W))
    R = np.random.default_rng(seed).standard_normal((W.shape[1], k)) / math.sqrt(k)
    return W @ R
