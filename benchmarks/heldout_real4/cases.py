"""The fourth held-out set of real, non-MLP "my network does not learn" reports (issue 20).

Written by helper sessions that neither ran ``nndoctor`` nor read its rules, and committed
before the rule changes it is scored against (see ``README.md``). Each case is two standalone
scripts in this folder, ``<name>_sick.py`` and ``<name>_fixed.py``; the fields of :class:`Case`
are those of the first set. ``python benchmarks/bench_heldout_real.py --set heldout_real4``
scores it.
"""

from __future__ import annotations

from heldout_real.cases import NAN, Case

CASES: tuple[Case, ...] = (
    # --- CNN image classifiers and a detector
    Case(
        "cnn_centernet_no_zero_grad",
        "https://github.com/xingyizhou/CenterNet/issues/928",
        "cnn",
        "images (batch, 3, 24, 24) with one object; targets: Gaussian heat maps (batch, 3, 12, 12), centre index, box size",
        "CenterNet focal loss (_neg_loss on clamped sigmoid) + 0.1 * L1 size loss at the centre",
        "stale-gradients",
        "loss since the 2nd epoch becomes huge and unchanged",
        "the re-organised loop called loss.backward(); optimizer.step() without optimizer.zero_grad(), so gradients accumulated",
        ("loss-plateau", "oscillating-loss", "lr-too-high"),
        section=None,
        note="Detector (CenterNet ctdet, ResNet-like backbone with BatchNorm) rather than a plain classifier; Adam at 1.25e-3 over 960 synthetic images; the sick loss stays at 1.7-2.0 while the fixed one falls to 0.1, and the sick detection hit rate falls from 0.98 to 0.32.",
    ),
    Case(
        "cnn_keras_cifar10_adam_lr",
        "https://github.com/keras-team/keras/issues/4066",
        "cnn",
        "images (batch, 3, 16, 16) scaled to [0, 1], 10 classes",
        "CrossEntropyLoss() (Keras categorical_crossentropy on softmax)",
        "lr-too-high",
        "the cifar10 CNN example only predicts one class; loss stuck at 2.304 and accuracy at 0.1 with Adam lr 0.01",
        "learning rate too high: Adam with its default lr 0.001 trains (confirmed by the commenters, not by a maintainer)",
        ("loss-at-baseline", "output-collapse", "dead-units"),
        section=None,
        note="Keras report rebuilt in PyTorch; the sick script uses the commenter's Adam(lr=0.01) variant rather than the example's SGD(lr=0.01, momentum=0.9, nesterov) which locked up only sometimes. The collapse may leave ReLU units dead, so dead-units is a fair partial answer.",
    ),
    Case(
        "cnn_fashion_frozen_backbone",
        "https://github.com/ihciah/deep-fashion-retrieval/issues/1",
        "cnn",
        "images (batch, 3, 24, 24), 4 classes",
        "CrossEntropyLoss()",
        "frozen-parameters",
        "with the repository's config the accuracy improved only slowly; after changing the freeze flag it improves quickly",
        "FREEZE_PARAM = True set requires_grad = False on the whole ResNet backbone, so only the two Linear layers on top trained",
        ("loss-at-baseline", "loss-plateau", "insufficient-capacity"),
        section=None,
        note="The backbone is frozen on purpose by a config flag (the maintainer's 'train FC first' plan), and the optimizer is built from filter(requires_grad), so the frozen tensors are not even in the optimizer. The rebuild cannot load ImageNet weights: its frozen backbone is random, which turns the reported slow improvement into loss at ln 4 and chance accuracy.",
    ),
    Case(
        "cnn_keras_sigmoid_bce_three_classes",
        "https://newbedev.com/cnn-with-keras-accuracy-not-improving",
        "cnn",
        "images (batch, 3, 32, 32), 3 classes given as labels 0., 1., 2.",
        "Keras binary_crossentropy on Dense(1) + sigmoid (written out; nn.BCELoss rejects targets > 1)",
        "wrong-loss-for-targets",
        "accuracy of the CNN classifier does not improve",
        "three classes trained with a single sigmoid output and binary cross-entropy; the fix is Dense(3) + softmax + categorical cross-entropy with categorical labels",
        ("targets-out-of-range", "loss-plateau"),
        section=None,
        note="The URL is a mirror of the Stack Overflow question 'CNN with keras, accuracy not improving' with its accepted answer (the original SO id could not be recovered). Keras report rebuilt in PyTorch; Keras' unchecked binary_crossentropy is written out by hand, so the sick loss goes negative (-5.4) while accuracy stalls at 0.66 with class 2 never predicted. The fix changes four marked lines (head, loss, target format, prediction).",
    ),
    # --- per-pixel models
    Case(
        "seg_bce_imbalance_all_background",
        "https://discuss.pytorch.org/t/bcewithlogitsloss-weight/174762",
        "unet",
        "images (batch, 1, 32, 32), binary masks (batch, 1, 32, 32) with 0.6 % foreground",
        "BCEWithLogitsLoss()",
        "class-imbalance",
        "binary segmentation with almost-all-0 masks: small loss, but the model predicts no pixel of value 1",
        "the rare foreground is swamped by background pixels; weight it with BCEWithLogitsLoss(pos_weight=neg/pos)",
        ("output-collapse", "loss-plateau"),
        section=None,
        note="Foreground 0.6 % instead of the asker's 0.005 % so that 6 CPU epochs show the fix; "
        "the sick loss does fall below the constant baseline (0.012 vs 0.036) while no pixel "
        "crosses 0.5, as the asker saw ('small loss value'). The fixed run over-segments "
        "(Dice 0.3-0.5, recall ~1.0), as pos_weight = neg/pos typically does.",
    ),
    Case(
        "seg_unetr_sigmoid_before_ce",
        "https://github.com/computational-cell-analytics/patho-sam/pull/55",
        "unet",
        "images (batch, 3, 32, 32), class-index masks (batch, 32, 32), 6 classes (0 = background, 73 %)",
        "CrossEntropyLoss()",
        "double-activation",
        "merged fix titled 'FIXED: Removed final sigmoid activation in UNETR training' (6-class PanNuke semantic segmentation); no symptom written down",
        "get_unetr's default final sigmoid squashed the logits before CrossEntropyLoss's own softmax; fix: final_activation=None",
        ("loss-at-baseline", "loss-plateau", "output-collapse", "saturated-units"),
        section=None,
        note="The activation applied before the loss is a sigmoid and the loss applies a softmax "
        "(not the same function twice), but it is the 'activation before a loss that normalises "
        "itself' pattern. The PR text gives only the fix, not the symptom; the rebuilt sick "
        "script saturates and sits at loss 1.316 (above the 1.024 class-prior baseline), "
        "predicting background everywhere. Conv U-Net instead of SAM ViT + UNETR.",
    ),
    Case(
        "seg_unet_mask_255_targets",
        "https://github.com/milesial/Pytorch-UNet/issues/84",
        "unet",
        "images (batch, 3, 32, 32), binary masks (batch, 1, 32, 32) stored as 0/255",
        "BCEWithLogitsLoss()",
        "targets-out-of-range",
        "U-Net loss negative and falling (-9e5 ... -3.4e7) with PNG masks, validation Dice stuck at 1.97",
        "the PNG masks hold 0/255 instead of 0/1, targets BCEWithLogitsLoss (a sigmoid) cannot reach; scale masks to 0/1",
        ("wrong-loss-for-targets", "output-collapse", "output-logit-divergence"),
        section=None,
        note="Adam(lr=0.1) and BCEWithLogitsLoss as in the repository of November 2019. The sick "
        "loss is not NaN: it falls without bound (logits of target-255 pixels pushed to +inf) "
        "and every pixel is predicted foreground.",
    ),
    # --- recurrent nets
    Case(
        "rnn_last_output_is_pad",
        "https://github.com/thtrieu/qclass_dl/issues/1",
        "lstm",
        "word-id sequences (batch, 40), 5-12 real words post-padded with id 0, 6 classes",
        "CrossEntropyLoss()",
        None,
        "Replacing the last-real-word gather by output = outputs[-1] gave 'terrible result' (sick: loss flat at ln 6, test accuracy 0.18, chance 0.17)",
        "The classifier read the LSTM output at the final time step, which is a <PAD/> step for every sentence shorter than the padded length; the state there has forgotten the sentence (maintainer: 'yes your guess is correct'); fix: take the output at index length-1 of each sentence",
        ("loss-at-baseline", "not-using-inputs", "output-collapse", "vanishing-gradients"),
        section=None,
        note="expected None: the cause is reading a sequence model's output at a padded time step (28-35 pad words after the sentence), which none of the codes names; the nearest are the symptoms loss-at-baseline / not-using-inputs (the output barely depends on the words) and, loosely, vanishing-gradients through the pad steps (across time, not layers). Rebuilt in PyTorch from the TensorFlow 0.x original.",
    ),
    Case(
        "rnn_vame_steplr_gamma0",
        "https://github.com/LINCellularNeuroscience/VAME/issues/26",
        "gru",
        "pose time-series windows (batch, 10, 12) observed + (batch, 5, 12) future; GRU encoder / GRU decoders (recurrent VAE)",
        "summed MSELoss reconstruction + summed MSELoss future prediction + annealed KL + k-means (Gram singular value) loss",
        "lr-schedule-collapse",
        "With the 'scheduler' option turned off the learning rate decreases to 0 (after 100 epochs) and training stops improving",
        "The no-scheduler branch built StepLR(optimizer, step_size=100, gamma=0), which multiplies the lr by 0 at the first step boundary; it should be gamma=1 (maintainer agreed; fixed in commit 8ea956f)",
        ("loss-plateau", "lr-too-low"),
        section=None,
        note="StepLR step_size shrunk from 100 to 3 epochs (and Adam lr raised 5e-4 -> 5e-3) so that the collapse happens inside a 12-epoch run; the sick run reaches test MSE 0.20 (well below the 1.0 constant baseline) in epochs 1-3 and is then frozen, so the symptom is a plateau at a partly-trained loss, not a loss at baseline. The repository's clip_grad_norm_ after optimizer.step() (a no-op) is kept as it was.",
    ),
    Case(
        "rnn_darnn_unscaled_price",
        "https://github.com/JulesBelveze/time-series-autoencoder/issues/18",
        "lstm",
        "price series windows: features (batch, 10, 4) standardised, lagged target history (batch, 10, 1) and next-step target (batch, 1) in raw price units (~300)",
        "MSELoss() + 1e-4 * L1 norm of the weights",
        "unscaled-targets",
        "Trained on NFLX stock prices, the predictions are scaled wrongly (sick: predictions 1-19 against prices ~296, test RMSE 290 vs 20 for a constant)",
        "The target column (also the decoder's lagged y_hist input) was never standardised while the features were; fixed in PR #19 by a StandardScaler on the target, inverted at evaluation",
        ("loss-at-init-high", "loss-at-baseline", "unscaled-inputs", "output-collapse"),
        section=None,
        note="Dual-stage attention encoder/decoder LSTM (DA-RNN style). The raw prices also enter the decoder as inputs (y_hist), so unscaled-inputs is a fair partial answer. lr raised 1e-5 -> 1e-3 and hidden 128 -> 32 for a 6-epoch run; with the repository's lr 1e-5 the sick run would be even further from the targets.",
    ),
    # --- transformers
    Case(
        "tfm_vitpose_layer_decay_every_step",
        "https://github.com/jaehyunnn/ViTPose_pytorch/issues/20",
        "transformer",
        "images (batch, 3, 16, 16) -> 2 keypoint heatmaps (batch, 2, 8, 8); small ViT backbone + deconv head",
        "JointsMSELoss (per-joint nn.MSELoss on Gaussian heatmaps)",
        "lr-schedule-collapse",
        "The learning rate warms up to the preset value and quickly becomes 0, but training goes on (loss stops improving)",
        "LayerDecayOptimizer.step multiplied every group's lr by the layer-decay rate 0.75 on every step instead of once at init, so once warm-up ended the lr decayed exponentially to 0 (fixed in commit 0a2848e)",
        ("loss-plateau", "lr-too-low"),
        section=None,
        note="The lr is driven to 0 by an optimizer wrapper (LayerDecayOptimizer.step), not by an lr_scheduler; a LambdaLR warm-up (stepped only for the first 8 iterations) and a per-epoch MultiStepLR are also present. Warm-up shortened from 500 to 8 iterations so that it is a small fraction of training, as in the report.",
    ),
    Case(
        "tfm_tabformer_field_attention_over_batch",
        "https://github.com/IBM/TabFormer/pull/14",
        "transformer",
        "categorical token ids (batch, 3 rows, 4 fields), shared vocabulary of 25; 2 classes",
        "CrossEntropyLoss",
        "batch-mixing",
        "Field-level nn.TransformerEncoder (batch_first=False) fed (batch*seq_len, ncols, hidden): 'incorrect computation during multiheaded attention'",
        "The batch*seq_len axis was in the sequence position, so rows of different samples attended to each other and the fields of one row never did; fix: permute(1, 0, 2) before the encoder and back after it",
        ("loss-at-baseline",),
        section=None,
        note="The PR reports a wrong computation, not a training curve; the synthetic label (field 0 == field 1 in the last row) needs fields to interact, so the sick model stays at chance while the fixed one reaches 1.00. Its failure comes from attention over the wrong axis: across the batch instead of across fields. A linear head on the last row replaces TabFormer's BERT on top.",
    ),
    Case(
        "tfm_mha_bucketed_mask_fully_masked_row",
        "https://github.com/pytorch/pytorch/issues/41508",
        "transformer",
        "token ids (batch, 12), padded with 0 (lengths 3-12); a tag of 5 classes per time step",
        "CrossEntropyLoss(ignore_index=-100) over the valid time steps",
        "nan-source",
        "nn.MultiheadAttention with a bucketed attn_mask plus key_padding_mask: gradients become NaN although the masked time steps are not in the loss",
        "A padded query whose whole window is padding has every score at -inf; softmax gives 0/0 = NaN and backward carries it into the shared in_proj weights (maintainer: 'the root cause is that an entire row may be masked out'); fixed here by filling the masks with -1e9 instead of -inf",
        NAN,
        section=None,
        note="nn.MultiheadAttention is called directly with the default need_weights=True: in current PyTorch only that path still NaNs (the need_weights=False / SDPA path zeroes fully masked rows). The issue has no merged fix; the fixed script uses the finite-fill workaround (pytorch/pytorch#26098) rather than a change from the issue itself. The training task is synthetic: the report's repro is a 3-step dummy loss.",
    ),
    # --- language models and sequence-to-sequence
    Case(
        "lm_seqrnn_time_major",
        "https://github.com/espnet/espnet/issues/1456",
        "lstm",
        "token ids (batch, len) padded with 0, vocabulary 12, next-token targets (batch, len)",
        "F.cross_entropy(reduction='none') masked by x != 0, summed / count",
        "batch-mixing",
        "Seq_RNN LM stops at perplexity 37 where the token-by-token LM of the same size reaches 7",
        "nn.LSTM built without batch_first=True but fed (batch, len): the recurrence runs across the batch, not along each sentence",
        ("loss-plateau", "loss-at-baseline", "not-using-inputs"),
        section=None,
        note="Synthetic sentences whose next word is set by the word two back; sick plateaus at "
        "ln 10 (perplexity 10.2), fixed reaches 0.68. output.contiguous().view in _before_loss in "
        "both scripts (as in espnet2). Cause found by the asker, issue labelled Bug by "
        "maintainers; ESPnet's later rewrite espnet2/lm/seq_rnn_lm.py builds the LSTM with "
        "batch_first=True.",
    ),
    Case(
        "lm_mha_empty_sentence_nan",
        "https://github.com/pytorch/pytorch/issues/40932",
        "transformer",
        "token ids (len, batch) padded with 0 plus key_padding_mask (batch, len); about 3% of sentences empty; per-token tags, 2 classes",
        "CrossEntropyLoss(ignore_index=-100)",
        "nan-source",
        "NaN in model parameters and 'nan loss encountered' from a transformer encoder using nn.MultiheadAttention with key_padding_mask",
        "one example in a batch is all <pad>: its key_padding_mask row is all True, the -inf-filled softmax row gives 0/0 = NaN; drop the empty examples",
        NAN,
        section=None,
        note="The step-1 loss is finite (all-pad rows are ignored by the loss); NaN enters the weights "
        "through backward at step 1 and the loss is NaN from step 2. Relies on need_weights=True "
        "(the default, as in the report): torch 2.x's need_weights=False / TransformerEncoderLayer "
        "path returns finite values for fully masked rows. Issue still open; the cause is the "
        "asker's own finding, echoed in pytorch/pytorch#41508.",
    ),
    Case(
        "lm_chatbot_softmax_ce",
        "https://github.com/pytorch/tutorials/issues/663",
        "gru",
        "seq2seq: token ids (len, batch) padded with 0 and lengths; reply ids (len, batch), vocabulary 63, decoded one step at a time with teacher forcing",
        "CrossEntropyLoss(ignore_index=PAD_token) per decoder step, summed then divided by the number of steps",
        "double-activation",
        "after swapping the tutorial's maskNLLLoss for CrossEntropyLoss(ignore_index=PAD_token) the chatbot no longer converges",
        "the tutorial's LuongAttnDecoderRNN returns F.softmax probabilities (made for maskNLLLoss's -log(gather)); CrossEntropyLoss softmaxes them again",
        ("loss-plateau", "loss-at-baseline", "output-collapse", "class-imbalance"),
        section="LuongAttnDecoderRNN",
        note="The issue's title blames ignore_index; the thread's final answer was not readable here, "
        "so the cause is taken from the tutorial's decoder code (it ends in F.softmax, which "
        "maskNLLLoss expects) and confirmed by the fixed script. Fix: the decoder returns raw "
        "logits. Encoder and decoder have separate Adam optimizers; the softmax is in the decoder. "
        "Sick predicts EOS everywhere (accuracy = EOS share 0.154).",
    ),
    # --- GANs and VAEs
    Case(
        "gen_vae_bce_normalized",
        "https://github.com/Lightning-Universe/lightning-bolts/issues/177",
        "vae",
        "grey images (batch, 1, 16, 16) of soft blobs, standardised with MNIST mean/std (pixels in about [-0.42, 2.8])",
        "F.binary_cross_entropy_with_logits(reduction='none') summed over pixels + sampled KL (ELBO)",
        "targets-out-of-range",
        "the VAE's BCE reconstruction term gets target pixels outside [0, 1] (normalised images) and does not behave sensibly",
        "binary cross-entropy needs targets in [0, 1]; standardised pixels reach -0.42 and 2.8, so the BCE term is unbounded below (maintainer: BCE cannot be used on normalised images)",
        ("wrong-loss-for-targets",) + NAN,
        section=None,
        note="Fix is the one-line removal of the standardisation (pixels in [0, 1], the range the maintainer said BCE needs); the module itself later moved to MSE. The with-logits form is used because torch 2.13's F.binary_cross_entropy raises on out-of-range targets. The sick ELBO goes negative at once and falls without bound (KL exploding with it), turning NaN at epoch 4; validate_args=False on the two Normal objects keeps the script running after that.",
    ),
    Case(
        "gen_srgan_d_optimizer_typo",
        "https://github.com/Lornatang/SRGAN-PyTorch/issues/85",
        "gan",
        "grey images: low-resolution (batch, 1, 8, 8) inputs, (batch, 1, 16, 16) ground truth; discriminator labels real 1 / super-resolved 0",
        "generator: L1Loss + 0.001 * BCEWithLogitsLoss(d_model(sr), 1); discriminator: BCEWithLogitsLoss on real and detached fake",
        "frozen-parameters",
        "the generator optimizer is passed as the discriminator optimizer; d_optimizer is never used",
        "train(..., g_optimizer, g_optimizer, ...) makes the discriminator step call g_optimizer.step(): d_model's weights never change (stays at chance) and the generator is stepped twice; fix passes d_optimizer (commit e8ef682)",
        ("optimizer-model-mismatch", "loss-at-baseline", "loss-plateau"),
        section="d_model",
        note="The cause lives in the discriminator's update: d_model's parameters get gradients every step but no optimizer owns them. The generator (g_model) learns in both scripts (its pixel loss falls), so a finding on g_model is wrong. The train(...) call is inlined as `optimizer_g, optimizer_d = g_optimizer, g_optimizer`, the line the commit changed. No pretrained SRResNet, no VGG content loss, no AMP.",
    ),
    Case(
        "gen_vae_kl_sum_collapse",
        "https://github.com/zdebruine/MMVAE/pull/19",
        "vae",
        "single-cell expression rows (batch, 500 genes), log1p counts of 6 cell types",
        "F.l1_loss (mean over all elements) + KL summed over batch and latent, KL weight annealed to 1",
        None,
        "KL loss drops to 0 within a few epochs (posterior collapse); reconstruction stops improving",
        "the KL term is a sum over batch and latent units while the reconstruction term is a per-element mean, so the KL term dominates and the encoder collapses to the prior; fix sums the reconstruction error over genes, averages both terms over the batch",
        ("output-collapse", "not-using-inputs", "loss-at-baseline", "loss-plateau"),
        section=None,
        note="No code names a mis-scaled loss term (reduction sum vs mean between the ELBO's two terms); the visible result is output collapse: the decoder gives every cell the same output (spread ratio 0.000) and the reconstruction MSE is above the constant-prediction baseline. The merged PR's literal code has typos (reduction=None, F.MSE); the fixed script writes the intended F.mse_loss(..., reduction='none').sum(dim=1).mean(). MLP layers on feature rows, as in the repository's HumanVAE; the family is the VAE objective.",
    ),
    # --- embedding models
    Case(
        "emb_merlin_double_sigmoid",
        "https://github.com/NVIDIA-Merlin/models/pull/1175",
        "embedding",
        "user and item ids (batch,) each into nn.Embedding tables, binary clicks",
        "BCEWithLogitsLoss",
        "double-activation",
        "the BinaryOutput head (Linear + Sigmoid) trained with its default BCEWithLogitsLoss: the loss stops far above 0 (floor ~0.5)",
        "BCEWithLogitsLoss applies a sigmoid to outputs already passed through nn.Sigmoid; the merged fix makes the default loss BCELoss",
        ("wrong-loss-for-targets", "loss-plateau", "saturated-units"),
        section=None,
        note="The PR states the cause from reading the code, not a user's training curve; synthetic 6-group click data; the sick model still ranks (test accuracy 0.79) but its loss is stuck at 0.61 vs 0.0001 fixed.",
    ),
    Case(
        "emb_sbert_softmaxloss",
        "https://github.com/huggingface/sentence-transformers/issues/2872",
        "embedding",
        "sentence pairs of token ids (batch, 8) each, bag-of-embeddings encoder, 3 NLI-like labels",
        "CrossEntropyLoss (SoftmaxLoss: Linear on [u, v, |u-v|])",
        "frozen-parameters",
        "the classifier inside SoftmaxLoss is never trained; the loss plateaus (0.60-0.64 vs 0.0001 fixed)",
        "the trainer built the optimizer over the model's parameters only, so the loss module's classifier stayed at its random init; fixed in PR #2881 by optimising the loss modules' parameters",
        ("loss-plateau", "optimizer-model-mismatch"),
        section=None,
        note="The optimizer covers SentenceTransformer (model) but not SoftmaxLoss.classifier, which is used in every forward pass and gets gradients but is never stepped. The encoder still adapts to the random classifier, so the sick script reaches 0.87 test accuracy; the symptom is the loss stuck at 0.6.",
    ),
    Case(
        "emb_triplet_batchhard_collapse",
        "https://github.com/omoindrot/tensorflow-triplet-loss/issues/38",
        "embedding",
        "images (batch 40 = 10 identities x 4, 1, 16, 16), 20 identities, 128-d embeddings",
        "batch-hard triplet loss (margin 0.5), custom",
        "lr-too-high",
        "pairwise distances drop to 0 and the loss sits at the margin and cannot go down; all embeddings together",
        "training collapses; the maintainer's answer: decrease the learning rate (the asker used 0.001)",
        ("output-collapse", "loss-at-baseline", "loss-plateau", "dead-units"),
        section=None,
        note="Cause given by the maintainer's answer (same advice in issues #6 and #37), not confirmed by the asker. Rebuilt in PyTorch from a TensorFlow report; Adam lr 1e-2 (sick) vs 3e-4 (fixed). The collapse does not blow up: loss flat at exactly the margin, embedding spread ~0.001; most ReLU channels of the later conv layers end dead.",
    ),
    # --- a graph net, an audio CNN, distillation, a heatmap detector
    Case(
        "oth_audio_cnn_softmax",
        "https://github.com/musikalkemist/pytorchforaudio/issues/9",
        "cnn",
        "power mel spectrograms (batch, 1, 32, 22), unscaled (band power ~2e4), 10 classes",
        "CrossEntropyLoss()",
        "double-activation",
        "urban sound CNN: the loss stays exactly the same every epoch after the first",
        "nn.Softmax at the end of CNNNetwork.forward before CrossEntropyLoss; fix (PR #10, approved by the maintainer) returns the logits",
        ("loss-at-baseline", "loss-plateau", "output-collapse", "unscaled-inputs"),
        section=None,
        note="2D CNN over audio mel spectrograms (the course's audio classifier), not a 1D waveform CNN. "
        "Unscaled power mel spectrograms (no dB), as in the repository, saturate the softmax so the loss "
        "freezes to the last digit; the fix removes only the softmax (inputs stay unscaled), so "
        "unscaled-inputs is a contributing condition, not the accepted cause. Fix confirmed by PR #10 "
        "(https://github.com/musikalkemist/pytorchforaudio/pull/10), not by a reply in the issue itself.",
    ),
    Case(
        "oth_slaps_knn_zero_degree",
        "https://github.com/BorealisAI/SLAPS-GNN/issues/3",
        "gnn",
        "node features (900, 120) bag of words, 3% all-zero rows; learned sparse kNN graph; 6 classes",
        "F.cross_entropy on the training mask",
        "nan-source",
        "SLAPS on Citeseer with sparse=1: nan loss; the edge values from knn_fast() contain nan",
        "nodes whose degree norm is 0 (all-zero feature rows): torch.pow(norm, -0.5) is inf and 0 * inf = NaN; fix adds 1e-9 to norm (maintainer, asker confirmed)",
        NAN,
        section=None,
        note="Plain-PyTorch rebuild of SLAPS's MLP_Diag graph generator + knn_fast + GCN_C (dgl replaced by "
        "index_add_); the DAE branch is left out. The NaN is made in the forward pass (pow of a zero degree "
        "times a zero similarity), before any gradient, so the loss is NaN from the first step.",
    ),
    Case(
        "oth_kd_teacher_outputs_shuffled",
        "https://github.com/haitongli/knowledge-distillation-pytorch/issues/9",
        "cnn",
        "images (batch, 3, 16, 16), 10 classes; teacher logits as soft targets (knowledge distillation)",
        "KLDivLoss()(log_softmax(s/T), softmax(t/T)) * alpha*T*T + cross_entropy * (1 - alpha), alpha 0.999, T 2",
        "no-signal",
        "teacher and student see different batches: the teacher outputs do not belong to the student's batch",
        "teacher outputs precomputed over one shuffled DataLoader pass and paired by batch index with a re-shuffled pass; fix (merged PR #17) runs the teacher on the current batch",
        ("loss-plateau", "loss-at-baseline", "cannot-overfit"),
        section="model",
        note="Knowledge distillation: two models are trained (a stand-in teacher with cross-entropy, then the "
        "student `model` with loss_fn_kd); the cause lives in the student's train_kd loop. The soft targets are "
        "another batch's teacher outputs, so they cannot be predicted from the inputs. alpha 0.999, T 2 is one of "
        "the repository's configs; with the issue's alpha 0.95, T 6 the 5% cross-entropy term still taught the "
        "student this easy synthetic task, so that setting would not show a failure. Fix confirmed by merged PR "
        "https://github.com/haitongli/knowledge-distillation-pytorch/pull/17.",
    ),
    Case(
        "oth_centernet_mse_heatmap",
        "https://github.com/xingyizhou/CenterNet/issues/383",
        "detector",
        "images (batch, 1, 32, 32) with 1-3 boxes; centre heatmap (batch, 1, 16, 16) Gaussian targets + wh/offset regression at centres",
        "MSELoss() on the sigmoid heatmap + RegL1Loss for wh (0.1) and offset",
        "class-imbalance",
        "the output heatmap is always all zero when the heatmap is trained with MSE",
        "plain MSE over a heatmap that is almost all background: the few centre pixels are swamped, the net predicts background everywhere; CenterNet's penalty-reduced focal loss (FocalLoss / _neg_loss, normalised by the number of objects) fixes it",
        ("output-collapse", "loss-at-baseline", "loss-plateau"),
        section=None,
        note="Multi-head (heatmap + box size + offset) CenterNet; the fix is CenterNet's own switch "
        "`self.crit = torch.nn.MSELoss() if opt.mse_loss else FocalLoss()`. The report is the maintainer's "
        "answer in the issue (his experiments), not a user's bug with a fixing commit. Only the heatmap head "
        "fails: the wh/offset regression heads still learn in the sick script. The imbalance is per-pixel "
        "(background vs centre pixels of the dense target), not among class labels.",
    ),
)
