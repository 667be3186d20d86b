"""The held-out set of real, non-MLP "my network does not learn" reports (issue 20, item 10).

Each case is two standalone training scripts in this folder, ``<name>_sick.py`` (the bug as
reported) and ``<name>_fixed.py`` (the accepted fix applied, otherwise identical), rebuilt from
the public report at ``url`` at a size that runs on one CPU thread in seconds, with synthetic
data. ``expected`` is the finding code ``nndoctor`` should rank first among the causes of the
sick script's report (of the section named ``section`` when the script trains several models);
``alternates`` are codes that count as a partial answer (a symptom, or a neighbouring cause);
``expected=None`` marks a real cause that no code describes (reported apart as "no code").

The set was written, and its sick scripts checked to show the symptom and its fixed scripts to
learn, before ``nndoctor`` was run on any of it; it must not be used to tune the rules.
``python benchmarks/bench_heldout_real.py`` scores it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    url: str
    family: str  # cnn, unet, lstm, transformer, lm, embedding, gan, gnn, ...
    data: str  # the data structure the model is fed and trained on
    loss: str
    expected: str | None  # the cause nndoctor should rank first; None: no code describes it
    saw: str  # one line: what the asker saw
    cause: str  # one line: what the accepted answer (or the fixing change) found
    alternates: tuple[str, ...] = ()  # codes counted as a partial answer
    section: str | None = None  # the report section to read in a multi-model script
    note: str = ""

    @property
    def scripts(self) -> tuple[str, str]:
        """File names of the sick and the fixed script, in this folder."""
        return f"{self.name}_sick.py", f"{self.name}_fixed.py"


NAN = ("non-finite-values", "diverged")  # the NaN itself, seen but not traced to its source

CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ nan-source
    Case(
        "tfenc_padmask_nan",
        "https://github.com/pytorch/pytorch/issues/24816",
        "transformer",
        "token ids (batch, time) with padding; key_padding_mask; some documents all padding",
        "CrossEntropyLoss",
        "nan-source",
        "a TransformerEncoder given src_key_padding_mask outputs NaN for a fully padded "
        "sequence, and after backward every output is NaN",
        "softmax over a row whose every position is masked with -inf gives 0/0; do not feed "
        "all-padding sequences (or leave one position unmasked)",
        NAN,
        note="today's nn.MultiheadAttention returns zeros for such a row, so the attention is "
        "written out as the 2019 code did it (masked_fill(-inf), softmax)",
    ),
    Case(
        "siamese_sqrt_nan",
        "https://github.com/adambielski/siamese-triplet/issues/18",
        "embedding",
        "image pairs (batch, 1, 16, 16) x2, same/different labels; duplicate images",
        "contrastive loss on sqrt(sum((a - b)^2))",
        "nan-source",
        "the derivatives suddenly become NaN at some iteration of a siamese (contrastive) net",
        "some distances are exactly 0 (two identical samples) and the derivative of sqrt at 0 "
        "is infinite; add a small constant under the sqrt",
        NAN,
    ),
    Case(
        "sft_all_ignored_nan",
        "https://github.com/nvidia-cosmos/cosmos-rl/pull/155",
        "lm",
        "token ids (1, 16) micro-batches, labels with ignore_index=-100 on prompt and padding",
        "F.cross_entropy(ignore_index=-100), gradient accumulation over 8 micro-batches",
        "nan-source",
        "the SFT loss is NaN",
        "a micro-batch whose labels are all -100 (its answer truncated away) makes "
        "cross_entropy divide 0 by 0; return zero loss for it",
        ("diverged", "non-finite-values"),
        note="PyTorch gives the all-ignored micro-batch a zero gradient, so the weights stay "
        "finite and the model learns: the NaN is in the loss value the user sees",
    ),
    Case(
        "bf16_clamp_log1p_nan",
        "https://github.com/fastino-ai/GLiNER2/pull/155",
        "transformer",
        "token ids (batch, 20) with padding mask, per-token span targets; bfloat16 autocast",
        "BCEWithLogits on tokens + 0.1 x consistency loss on log1p(-p.clamp(max=1-1e-6))",
        "nan-source",
        "the loss prints normally, then one backward puts non-finite gradients in the whole "
        "encoder and a single step destroys the model",
        "1 - 1e-6 rounds to 1.0 in bfloat16, so a saturated probability gives log1p(-1) = -inf "
        "and 0 * inf = NaN in the backward pass; compute the term in float32",
        NAN,
    ),
    Case(
        "gat_scatter_softmax_overflow",
        "https://github.com/pyg-team/pytorch_geometric/issues/53",
        "gnn",
        "node features (nodes, 50) of raw word counts, edge list, node labels (full batch)",
        "CrossEntropyLoss on training nodes",
        "nan-source",
        "GATConv produces 'nan' frequently",
        "the edge softmax does exp(score) directly and overflows; subtract each node's "
        "maximum score first",
        NAN,
    ),
    # ------------------------------------------------------------------ optimizer-model-mismatch
    Case(
        "textcnn_conv_list",
        "https://github.com/pytorch/pytorch/issues/1053",
        "embedding",
        "token ids (batch, 20) into fixed pretrained word vectors, Conv1d widths 3, 4, 5",
        "CrossEntropyLoss",
        "optimizer-model-mismatch",
        "submodules defined in a Python list are not registered (still on CPU after .cuda())",
        "a plain list hides the Conv1d layers from parameters(), so no optimizer holds them; "
        "use nn.ModuleList",
        ("frozen-parameters",),
    ),
    Case(
        "head_replaced_after_optimizer",
        "https://github.com/feedly/transfer-nlp/pull/14",
        "transformer",
        "token ids (batch, 12), 4 labels; body pretrained on a 2-label task",
        "CrossEntropyLoss",
        "optimizer-model-mismatch",
        "fine-tuning the last layer: freeze the body and swap model.classifier for a new "
        "Linear after the optimizer was built",
        "the optimizer holds the old head's tensors, not the new head's; add the new "
        "parameters to the optimizer (add_param_group) or rebuild it",
        ("frozen-parameters",),
    ),
    Case(
        "charrnn_model_twice",
        "https://github.com/spro/practical-pytorch/issues/9",
        "rnn",
        "one-hot characters (batch, 7, 26), a language label per name",
        "NLLLoss on log_softmax",
        "optimizer-model-mismatch",
        "with optimizer.step() instead of a manual update the loss is big and goes up and "
        "down, does not diminish",
        "the model is instantiated twice; the optimizer holds the first instance, the loop "
        "trains the second; build the optimizer after the second",
        ("frozen-parameters",),
    ),
    Case(
        "distill_memory_not_optimised",
        "https://github.com/leggedrobotics/rsl_rl/pull/94",
        "rnn",
        "observation sequences (batch, 16, 6), teacher actions (batch, 16, 2)",
        "MSE (behaviour cloning / distillation)",
        "optimizer-model-mismatch",
        "the recurrent student's memory is not trained during distillation",
        "the optimizer was built from the actor's parameters only; the PR adds the RNN's",
        ("frozen-parameters",),
    ),
    # ------------------------------------------------------------------ batch-mixing
    Case(
        "lstm_rows_seq_first",
        "https://github.com/yunjey/pytorch-tutorial/issues/196",
        "lstm",
        "images read row by row, (batch, 16 rows, 16 pixels)",
        "CrossEntropyLoss",
        "batch-mixing",
        "after changing batch_first=True to False, loss about 2 and accuracy about 11%",
        "the LSTM reads the (batch, seq, feature) tensor as (seq, batch, feature)",
    ),
    Case(
        "lstm_rows_view",
        "https://github.com/yunjey/pytorch-tutorial/issues/89",
        "lstm",
        "images read row by row, reshaped to (rows, batch, pixels)",
        "CrossEntropyLoss",
        "batch-mixing",
        "after deleting batch_first=True and changing the dimensions, accuracy drops to 11%",
        "the dimensions were changed with a view/reshape where a transpose was meant",
        note="the stored thread is cut before the asker's loop: the reshape is this rebuild's "
        "reading of 'changed the dimension'",
    ),
    Case(
        "tfenc_batch_first_default",
        "https://github.com/Exorust/TorchLeet/issues/5",
        "transformer",
        "token ids (batch, 12), first-position readout",
        "CrossEntropyLoss",
        "batch-mixing",
        "high training loss and test error",
        "nn.TransformerEncoderLayer defaults to batch_first=False; pass batch_first=True",
    ),
    Case(
        "sphereface_logsoftmax_dim0",
        "https://github.com/clcarwin/sphereface_pytorch/issues/24",
        "cnn",
        "face images (batch, 1, 12, 12), identity labels",
        "hand-written focal-style angular loss on F.log_softmax(output, 0)",
        "batch-mixing",
        "loss=nan / bad training when replacing the loss; the log_softmax has no dim",
        "log_softmax over dim 0 normalises across the batch; it should be dim 1",
        note="the answer's dim-0 diagnosis is rebuilt; the asker's NaN was not reproduced",
    ),
    # ------------------------------------------------------------------ existing codes
    Case(
        "unet_binary_imbalance",
        "https://github.com/NVIDIA/DeepLearningExamples/issues/263",
        "unet",
        "images (batch, 1, 32, 32), per-pixel class targets (batch, 32, 32), ~3% foreground",
        "CrossEntropyLoss over 2 channels",
        "class-imbalance",
        "the target class covers ~4% of the pixels and every pixel is predicted background",
        "class imbalance; weight the classes in the loss",
        ("loss-at-baseline", "output-collapse"),
    ),
    Case(
        "unet_mask_255",
        "https://github.com/MontaEllis/Pytorch-Medical-Segmentation/issues/8",
        "unet",
        "images (batch, 1, 32, 32), masks (batch, 1, 32, 32) valued 0 and 255",
        "BCEWithLogitsLoss",
        "targets-out-of-range",
        "the BCEWithLogitsLoss value is negative",
        "the labels are not 0/1 (PNG masks 0/255); normalise them when reading",
        ("wrong-loss-for-targets", "unscaled-targets"),
    ),
    Case(
        "unet_augment_mismatch",
        "https://github.com/Project-MONAI/MONAI/issues/1102",
        "unet",
        "images and masks (batch, 1, 32, 32), random rot90/flip augmentation",
        "BCEWithLogitsLoss",
        None,
        "the image and its segmentation get different random rotation angles",
        "the random transform is drawn separately for image and mask; draw it once per sample",
        ("no-signal",),
        note="no code: a data-pipeline fault; the targets no longer match the inputs, so "
        "no-signal is the closest the doctor can come",
    ),
    Case(
        "gan_d_no_zero_grad",
        "https://github.com/Adversarial-Deep-Learning/code-soup/pull/73",
        "gan",
        "images (batch, 1, 8, 8), noise (batch, 16); two models, two Adam optimizers",
        "BCEWithLogitsLoss (real/fake)",
        "stale-gradients",
        "the GAN step has no zero_grad() for the discriminator",
        "gradients pile up in the discriminator; the PR adds d_optimizer.zero_grad()",
        section="Sequential",
        note="section 'Sequential' is the discriminator (its optimizer steps first); the "
        "generator is 'Sequential #2'",
    ),
    Case(
        "gan_g_detached",
        "https://github.com/nikhilsinghmus/image2reverb/issues/37",
        "gan",
        "conditional images (batch, 2, 8, 8) -> (batch, 1, 8, 8); two models, two optimizers",
        "least-squares adversarial + 10 x L1",
        "detached-graph",
        "the discriminator dominates very early (D loss ~0.2, D(real) ~0.9)",
        "fake.detach() in the generator step cuts the adversarial loss off the generator",
        section="Sequential",
        note="section 'Sequential' is the generator; it still gets gradients from its L1 term, "
        "so only part of its loss is cut",
    ),
    Case(
        "sfm_scheduler_replaces_step",
        "https://github.com/ClementPinard/SfmLearner-Pytorch/issues/5",
        "cnn",
        "images (batch, 1, 16, 32) -> disparity maps (batch, 1, 16, 32)",
        "L1",
        "frozen-parameters",
        "with the new scheduler the loss does not come down",
        "`if scheduler: scheduler.step() else: optimizer.step()`: the optimizer never steps",
        note="no optimizer ever steps, so `nndoctor run` (which pairs a model at its "
        "optimizer's first step) may have nothing to report",
    ),
    Case(
        "stgcn_steplr_per_batch",
        "https://github.com/hazdzz/stgcn/issues/18",
        "gnn",
        "speed windows (batch, 1, 8 steps, 10 sensors) -> next speeds (batch, 10)",
        "MSELoss",
        "lr-schedule-collapse",
        "the learning rate decreases too fast",
        "scheduler.step() inside the batch loop with an epoch-sized StepLR; step per epoch",
        ("lr-too-low",),
    ),
    Case(
        "transformer_regression_broadcast",
        "https://github.com/deepset-ai/FARM/issues/229",
        "transformer",
        "token ids (batch, 16), scores (batch, 1) from 0 to 16",
        "MSELoss",
        "loss-shape-broadcast",
        "'Using a target size ([32, 1]) that is different to the input size ([32])'",
        "the regression logits are squeezed while the labels are (batch, 1)",
        ("loss-at-baseline",),
    ),
    Case(
        "word_lm_lr20",
        "https://github.com/pytorch/examples/issues/846",
        "lm",
        "token ids (16, 32) seq-first, next-token targets",
        "CrossEntropyLoss",
        "lr-too-high",
        "the Transformer LM always predicts the most frequent token",
        "SGD at lr 20 with clipping at 0.25 (the LSTM's defaults); lr 0.1 without clipping",
        ("loss-plateau", "oscillating-loss"),
    ),
    Case(
        "lstm_similarity_sigmoid",
        "https://github.com/cvqluu/nn-similarity-diarization/issues/4",
        "lstm",
        "frame features (batch, 20, 16), per-frame binary targets (batch, 20)",
        "BCEWithLogitsLoss",
        "double-activation",
        "adding the paper's sigmoid to the output raised the error from 9.7% to 37%",
        "BCEWithLogitsLoss already applies the sigmoid",
    ),
    Case(
        "cnn_unshuffled_loader",
        "https://github.com/Deci-AI/super-gradients/issues/416",
        "cnn",
        "images (batch, 3, 16, 16) stored class by class, DataLoader without shuffle",
        "CrossEntropyLoss",
        "unshuffled-data",
        "the network sees one class at a time, which throws it out of the minima",
        "the default loader parameters did not pass shuffle=True",
        ("class-imbalance", "output-collapse"),
    ),
)
