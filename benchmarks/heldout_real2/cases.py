"""The second held-out set of real, non-MLP "my network does not learn" reports (issue 20).

Written, like the first (``benchmarks/heldout_real/``), before ``nndoctor`` was run on any of
it, and after the first set had been used to fix false alarms: it scores the rules on reports
they were not tuned on. Each case is two standalone scripts in this folder,
``<name>_sick.py`` and ``<name>_fixed.py``; the fields of :class:`Case` are those of the first
set. ``python benchmarks/bench_heldout_real.py --set heldout_real2`` scores it.
"""

from __future__ import annotations

from heldout_real.cases import NAN, Case

CASES: tuple[Case, ...] = (
    # --- CNN image classifiers
    Case(
        "pycls_inplace_color_norm",
        "https://github.com/facebookresearch/pycls/pull/21",
        "cnn",
        "images (batch, 3, 16, 16), 0..255 pixels normalised, flipped and pad-cropped in the "
        "Dataset's __getitem__, DataLoader num_workers=0, 6 classes",
        "CrossEntropyLoss",
        "constant-inputs",
        "with DATA_LOADER.NUM_WORKERS=0 the CIFAR-10 ResNet fails to train after ~3 epochs "
        "(with worker processes it trains well)",
        "Cifar10.__getitem__ performed its augmentation in place: color_norm wrote into a view of "
        "the stored array, so every read normalised the stored image again; copy it first",
        ("unscaled-inputs", "not-using-inputs", "loss-at-baseline"),
        note="the stored images are divided by the SD once per epoch, so from the second epoch on "
        "the network sees images within ~0.02 of a constant (plus the zero padding of the crop): "
        "constant-inputs names what the data becomes, not the in-place write that makes it so; "
        "collapses at epoch 2 here, ~3 in the report",
    ),
    Case(
        "d2l_kaggle_cifar_lr",
        "https://github.com/d2l-ai/d2l-en/issues/1775",
        "cnn",
        "images (batch, 3, 16, 16) with random crop + flip augmentation, 6 classes, batch 32",
        "CrossEntropyLoss(reduction='none') summed over the batch",
        "lr-too-high",
        "the PyTorch Kaggle CIFAR-10 section shows accuracy at chance and no training loss curve "
        "'due to random NAN error'",
        "the hyperparameters: SGD lr 0.1 (on a loss summed over the batch of 32) diverges; "
        "PR #1784 set lr 2e-4 (lr_period 4, lr_decay 0.9) and training works",
        ("spike-divergence", "oscillating-loss", "loss-at-baseline", *NAN),
        note="fix in https://github.com/d2l-ai/d2l-en/pull/1784; ResNet of four Residual blocks "
        "instead of ResNet-18; this rebuild blows up (loss 8.7 in the first epoch) and sits at "
        "chance but does not reach NaN",
    ),
    Case(
        "dann_softmax_before_ce",
        "https://github.com/NaJaeMin92/pytorch-DANN/issues/7",
        "cnn",
        "grey digits (batch, 1, 16, 16) repeated to (batch, 3, 16, 16), 10 classes",
        "CrossEntropyLoss on softmax outputs",
        "double-activation",
        "'The softmax layer makes models hard to train' (source-only and DANN training of the "
        "digit CNN)",
        "Classifier.forward returns F.softmax(x) and nn.CrossEntropyLoss applies log_softmax "
        "itself; remove the softmax (the maintainer did, commit a70cf59)",
        ("loss-at-baseline", "loss-plateau", "vanishing-gradients"),
        note="source-only branch only (the Discriminator had the same softmax); 16x16 synthetic "
        "digits, 6 epochs; the loss sits at ln 10 = 2.30",
    ),
    Case(
        "nni_trainer_no_step",
        "https://github.com/microsoft/nni/pull/3339",
        "cnn",
        "digits (batch, 1, 28, 28), 10 classes, batch 32",
        "CrossEntropyLoss on log_softmax outputs",
        "frozen-parameters",
        "models trained by Retiarii's PyTorchImageClassificationTrainer keep the same accuracy "
        "on the Web UI",
        "_train only computed the loss and called loss.backward(): no optimizer.step() (and no "
        "zero_grad), so the model was never updated",
        ("stale-gradients", "loss-at-baseline", "loss-plateau"),
        note="the gradients also pile up, never zeroed, but no step ever uses them; the weights "
        "stay at their initial values",
    ),
    Case(
        "opso_reload_optimizer_params",
        "https://github.com/kitzeslab/opensoundscape/issues/351",
        "cnn",
        "spectrogram images (batch, 3, 24, 24), 2 classes as one-hot labels; save, reload, "
        "continue training",
        "cross entropy against one-hot labels",
        "optimizer-model-mismatch",
        "continuing training of a CNN loaded from a saved model 'may not be working'",
        "load() overwrote optimizer_params with the saved one, whose 'params' were the old "
        "network's parameter list, so the new optimizer stepped stale tensors; PR #358 adds "
        "self.network.*.parameters() in _init_optimizer instead",
        ("frozen-parameters", "stale-gradients", "loss-at-baseline"),
        note="fix in https://github.com/kitzeslab/opensoundscape/pull/358; a two-block ResNet "
        "from scratch instead of an ImageNet ResNet-18, the checkpoint in an io.BytesIO buffer; "
        "the loaded network predicts one class for all four epochs after reloading",
    ),
    # --- segmentation and convolutional autoencoders / VAEs
    Case(
        "unet3plus_double_sigmoid",
        "https://github.com/avBuffer/UNet3plus_pth/issues/23",
        "unet",
        "RGB images (batch, 3, 24, 24), binary masks (batch, 1, 24, 24), ~16% foreground",
        "BCEWithLogitsLoss",
        "double-activation",
        "with UNet 3+ and the BCE loss of train.py the loss does not decrease (and the predicted "
        "mask, sigmoid(output) > 0.5, is all foreground)",
        "UNet3Plus.forward returns F.sigmoid(d1) while train.py uses nn.BCEWithLogitsLoss, so the "
        "sigmoid is applied twice; return the logits",
        ("loss-plateau", "wrong-loss-for-targets", "targets-out-of-range"),
        note="the doubled sigmoid bounds the probability to (0.5, 0.73); lr 1e-3 instead of the "
        "repository default 0.1; the issue is the asker's own diagnosis, no maintainer reply",
    ),
    Case(
        "convvae_unnormalized_nan",
        "https://github.com/pycroscopy/atomai/issues/85",
        "vae",
        "grayscale images (batch, 24, 24), raw 16-bit detector counts 0..65535",
        "-ELBO: 0.5 * summed squared error + KL(N(mu, exp(logsd)) || N(0, 1))",
        "unscaled-inputs",
        "atomai's VAE with the convolutional encoder and decoder gives NaN training loss on "
        "grayscale images",
        "the images were not normalized: normalizing them to [0, 1] fixed the NaN (the unbounded "
        "conv encoder puts z_logsd in the hundreds and exp() overflows)",
        ("nan-source", *NAN),
        note="the report does not give the raw pixel range; 16-bit counts assumed (8-bit "
        "0..255 frames do not overflow at this small size); lr 1e-3 instead of atomai's 1e-4",
    ),
    Case(
        "unet_multiclass_mask_rescaled",
        "https://github.com/milesial/Pytorch-UNet/issues/228",
        "unet",
        "RGB images (batch, 3, 32, 32), class-index masks (batch, 32, 32) with 5 classes, "
        "passed through the binary-mask preprocess (/255 when max > 1)",
        "CrossEntropyLoss",
        "constant-targets",
        "multi-class masks (0..18): the trained U-Net predicts class 0 everywhere; the cross "
        "entropy goes to ~0 (also #133: loss always 0)",
        "BasicDataset.preprocess divides any array whose max > 1 by 255, masks included, so the "
        "cast to long makes every target pixel class 0; do not rescale masks (is_mask)",
        ("class-imbalance", "output-collapse"),
    ),
    Case(
        "semseg_unet_sum_ce_lr",
        "https://github.com/meetps/pytorch-semseg/issues/159",
        "unet",
        "RGB images (1, 3, 32, 32) one at a time, class-index labels (1, 32, 32), 5 classes",
        "cross_entropy2d with size_average=False (CE summed over pixels), SGD momentum 0.99",
        "lr-too-high",
        "U-Net on Pascal VOC with learning rate 0.001: the loss is huge and jumps around "
        "(1e5..1e8), training does not converge",
        "the learning rate is too large (the shipped config pairs the summed CE with lr 1e-10); "
        "use a much smaller learning rate",
        ("oscillating-loss", "loss-plateau", "output-collapse", "exploding-gradients"),
        note="the answer is a third party's one-liner, not confirmed by the asker; the rebuild's "
        "fixed script uses lr 1e-6 (1e-3 over the 1024 summed pixels); the loss stays ~1e3 "
        "(the rebuild's per-image sum) rather than reaching 1e8",
    ),
    Case(
        "vanillavae_kld_weight_one",
        "https://github.com/AntixK/PyTorch-VAE/issues/56",
        "vae",
        "RGB images (batch, 3, 16, 16) in [0, 1], 8 latent dims",
        "F.mse_loss (mean over pixels) + kld_weight * KLD (summed over latent dims)",
        None,
        "with kld_weight set to 1 the VanillaVAE cannot learn to reconstruct the images",
        "the reconstruction term is a per-pixel mean and the KL a per-sample sum, so the KL has "
        "to be down-weighted (batch/dataset size, 0.00025); at 1 it dominates and the posterior "
        "collapses: every reconstruction is the mean image",
        ("output-collapse", "not-using-inputs", "loss-at-baseline", "loss-plateau"),
        note="no code names the cause: a mis-weighted KL term (posterior collapse); the symptom "
        "codes are partial answers. The thread is an explanation of the repository's "
        "kld_weight rather than a confirmed fix",
    ),
    # --- recurrent nets
    Case(
        "lstm_lm_nll_raw_logits",
        "https://github.com/pytorch/examples/issues/734",
        "lstm",
        "token ids (time 16, batch 32) from a 40-word corpus, next-token targets, hidden state "
        "carried across BPTT chunks",
        "NLLLoss on the raw decoder output",
        "wrong-loss-for-targets",
        "the word language model example gives a negative loss and perplexity 0; the loss "
        "'seems to be going to explode'",
        "the criterion had become NLLLoss while the RNN still returned raw decoder scores; "
        "NLLLoss of logits is -logit[target], unbounded below; PR #732 returns log_softmax",
        ("output-logit-divergence", "diverged", "non-finite-values", "loss-at-init-high"),
        note="fix in https://github.com/pytorch/examples/pull/732 (the criterion change was PR "
        "#721); SGD lr 20 and clipping 0.25 as in the example, via torch.optim.SGD instead of the "
        "manual p.data.add_; the loss falls to about -1.8e3 and stays finite in 4 epochs here",
    ),
    Case(
        "vrnn_bernoulli_log_nan",
        "https://github.com/emited/VariationalRecurrentNeuralNetwork/issues/2",
        "gru",
        "images read row by row, (rows 10, batch 32, pixels 10), values exactly 0 and 1",
        "KL(encoder || prior) + Bernoulli NLL written with torch.log(theta), torch.log(1 - theta)",
        "nan-source",
        "KLD and NLL losses train for two epochs, then both become nan and stay nan",
        "log of 0: a saturated sigmoid gives theta == 1.0 and (1 - x) * log(1 - theta) = "
        "0 * -inf = nan; add eps inside the logs (commit cdc8af2 'fixed log')",
        NAN,
        note="a variational RNN (GRU core with encoder, prior and decoder nets); the fixed "
        "script uses the issue answer's log(1 - theta + eps) (the commit's 1 - theta - EPS would "
        "be log of a negative number when theta == 1.0); a margin line common to every image "
        "makes a confident pixel appear within ~140 steps",
    ),
    Case(
        "rnn_forecast_unscaled_series",
        "https://github.com/unit8co/darts/issues/779",
        "rnn",
        "windows (batch 32, time 24, 1) of a univariate series in the hundreds, target = the "
        "window shifted by one step",
        "MSELoss",
        "unscaled-targets",
        "darts RNNModel fitted on the raw series gives a flat forecast far from the data",
        "the series was not scaled: scale it (darts Scaler) before fitting and inverse-transform "
        "the predictions",
        ("unscaled-inputs", "saturated-units", "output-collapse", "loss-plateau", "lr-too-low"),
        note="the series is both the input and the target of the forecaster, so inputs and targets "
        "are unscaled together (the tanh state saturates, the read-out cannot reach the level with "
        "Adam 1e-3); the stored thread shows no numbers (values in the hundreds are this rebuild's "
        "assumption) and the asker did not report back",
    ),
    Case(
        "lstm_adding_seq_first",
        "https://github.com/StefOe/indrnn-pytorch/issues/3",
        "lstm",
        "adding problem: (batch 50, time 20, 2) values + markers fed to a seq-first nn.LSTM, "
        "regression target",
        "MSE (F.mse_loss)",
        "batch-mixing",
        "the LSTM baseline of the adding-problem test cannot bring the MSE down (the IndRNN can)",
        "batches were built (batch, time, 2) but nn.LSTM defaults to (time, batch, features); the "
        "fix (commit 510f7bd) builds (time, batch, 2) batches and reads x[-1]",
        ("loss-at-baseline", "not-using-inputs", "loss-plateau", "output-collapse"),
        note="the asker (zbzhu) found the cause in the thread and the maintainer fixed the test; "
        "20 time steps and Adam 2e-3 instead of 100 and 2e-4 so that the fixed LSTM learns in "
        "seconds",
    ),
    Case(
        "bilstm_attention_uninit_param",
        "https://github.com/649453932/Chinese-Text-Classification-Pytorch/issues/8",
        "lstm",
        "token ids (batch 128, 24) with padding into nn.Embedding, 10 classes",
        "cross-entropy (F.cross_entropy)",
        "non-finite-values",
        "TextRNN_Att's loss becomes nan (the author saw it in one run of five)",
        "the attention vector was created with nn.Parameter(torch.Tensor(n)), uninitialised "
        "memory that init_network skips; the fix (commit 6cb2681) uses torch.zeros(n)",
        ("nan-source", "diverged"),
        note="uninitialised memory differs between runs, so both scripts turn on "
        "torch.use_deterministic_algorithms(True), which fills it with nan: the parameter w is nan "
        "before the first step in the sick script on every run; a tool that names nan in the "
        "weights at step 0 (layer w) has the cause",
    ),
    # --- transformers and language models
    Case(
        "lm_vocab_mask_ignore_nan",
        "https://jkschin.com/blog/2023/cross-entropy-loss-ignore-index/",
        "lm",
        "token ids (batch, 15) right-padded; next-token labels, -1 on padding; a per-position "
        "vocabulary mask (0 / -inf) added to the logits",
        "F.cross_entropy(logits + vocab_mask, labels, ignore_index=-1)",
        "nan-source",
        "a GPT-based model whose logits carry a -inf vocabulary mask has a normal loss on the "
        "first step and NaN from the second step on",
        "the ignored positions were masked -inf on every token: log_softmax of such a row is NaN, "
        "and ignore_index drops the row from the loss but not from the backward pass (0 * NaN), "
        "so the first step writes NaN into every weight; mask ignored rows with 0",
        NAN,
        note="the NaN is born in the backward pass (a fully masked softmax row whose loss term "
        "is ignored); the first loss value is finite",
    ),
    Case(
        "bert_qa_schedule_total_steps",
        "https://github.com/determined-ai/determined/pull/711",
        "transformer",
        "token ids (batch, 16): [CLS] question [SEP] context, right-padded, with an attention "
        "mask; answer start and end positions",
        "(CrossEntropyLoss(start logits) + CrossEntropyLoss(end logits)) / 2",
        "lr-schedule-collapse",
        "BERT SQuAD fine-tuning stops learning early: validation F1 flatlines at 60-something",
        "num_training_steps of the linear warmup/decay schedule was 400 against about 15000 "
        "optimizer steps, so the learning rate is 0 from step 400 on; set it to batches x epochs",
        ("lr-too-low", "loss-plateau"),
    ),
    Case(
        "bert_classifier_double_softmax",
        "https://github.com/illiterate/BertClassifier/issues/2",
        "transformer",
        "token ids (batch, 16): [CLS] text [SEP] right-padded, attention mask, token types; "
        "10 classes, one of them 62% of the data",
        "CrossEntropyLoss on the model's softmax outputs",
        "double-activation",
        "the BERT classifier's training loss falls very slowly, and with imbalanced data it "
        "predicts the most frequent class",
        "the model returns softmax(logits) and nn.CrossEntropyLoss applies log_softmax itself: "
        "a second softmax; return the logits",
        ("class-imbalance", "output-collapse", "loss-plateau"),
    ),
    Case(
        "bert_multilabel_lr_collapse",
        "https://github.com/huggingface/transformers/issues/735",
        "transformer",
        "token ids (batch, 16) right-padded with an attention mask; 6 binary labels",
        "BCEWithLogitsLoss",
        "lr-too-high",
        "a BERT multi-label classifier fine-tuned with Adam at lr 1e-3 gives the same output for "
        "every input in evaluation",
        "the learning rate is far too high for fine-tuning the transformer (0.01 / 1e-3 against "
        "the 2e-5 to 5e-5 BERT takes); lowering it to 5e-5 makes the outputs differ again",
        ("output-collapse", "loss-at-baseline"),
        note="the resolution comes from later commenters with the same symptom (lr 0.01 -> 5e-5, "
        "confirmed by another user), not from the asker; the rebuild trains a small encoder from "
        "scratch, so its rates are scaled (3e-2 sick, 1e-3 fixed)",
    ),
    Case(
        "textclas_ddp_unshuffled",
        "https://github.com/fastai/fastai/issues/2501",
        "lstm",
        "token ids (batch, 32) right-padded, 2 classes; training set stored sorted by label "
        "(all negative, then all positive), drawn through a DistributedSampler",
        "CrossEntropyLoss",
        "unshuffled-data",
        "the IMDb text classifier trained in distributed mode stays at accuracy 0.5 (valid loss "
        "2.5) instead of the 0.92 it reaches on one GPU",
        "the distributed sampler that replaced the classifier's shuffling sampler had "
        "shuffle=False, and the IMDb training set is stored by label, so each epoch ends on one "
        "class; let the sampler shuffle",
        ("oscillating-loss", "output-collapse", "loss-at-baseline"),
    ),
    # --- GANs, embedding models, graph networks, custom losses
    Case(
        "siamese_pairwise_distance_broadcast",
        "https://github.com/harveyslash/Facial-Similarity-with-Siamese-Networks-in-Pytorch/issues/27",
        "embedding",
        "image pairs (batch, 1, 16, 16) x2 through a shared CNN to 5-d embeddings, "
        "label (batch, 1) with 1 = different identity",
        "hand-written contrastive loss on F.pairwise_distance (margin 2)",
        "loss-shape-broadcast",
        "'A fatal bug!': the contrastive loss curve is unstable and the test performance is bad",
        "F.pairwise_distance returns shape (N,) while the label is (N, 1), so the loss terms "
        "broadcast to (N, N) and pair every label with every distance; keepdim=True (PR #29)",
        ("loss-at-baseline", "not-using-inputs"),
        note="pair verification accuracy at chance (0.50-0.52) here; the tutorial was written for "
        "PyTorch < 0.4, whose pairwise_distance kept the dimension",
    ),
    Case(
        "gpgraph_group_sigmoid_overflow",
        "https://github.com/InhwanBae/GPGraph/issues/2",
        "gnn",
        "one scene per forward: observed steps and absolute positions (1, 2, 8 steps, 6 "
        "pedestrians), a learned pairwise distance turned into soft group weights; 16 scenes "
        "summed per step",
        "MSE on the next 4 displacements, NaN losses replaced by 0 (l[torch.isnan(l)] = 0)",
        "nan-source",
        "the loss is always 0 from the first epoch",
        "sig = 1 / (1 + exp((dist - th) / tau)) overflows exp to inf for far-apart pedestrians; "
        "the backward of 1/(1+inf) gives 0 * inf = NaN, the weights become NaN and train.py zeroes "
        "the NaN losses; the fix (commit 474b305) uses sigmoid()",
        NAN,
        note="the forward value is fine (0); only the gradient is NaN, from the first step. The "
        "NaN-to-0 replacement in the training loop hides it as a loss of exactly 0",
    ),
    Case(
        "studiogan_dcgan_log1m_sigmoid",
        "https://github.com/POSTECH-CVLab/PyTorch-StudioGAN/issues/112",
        "gan",
        "RGB images (batch, 3, 16, 16) in [-1, 1]; noise (batch, 16) into the generator; the "
        "discriminator sums its last feature map over space before one linear unit",
        "hand-written vanilla GAN loss: -mean(logsigmoid(real) + log(1 - sigmoid(fake) + 1e-6)) "
        "for D, -mean(logsigmoid(fake)) for G",
        "saturated-units",
        "DCGAN: Gen_loss -0.0 and Dis_loss 13.82 from the start, fixed at these values",
        "13.82 = -log(1e-6): the discriminator's logits start large and positive, sigmoid(fake) "
        "rounds to 1, the fake term is a constant with zero gradient and the generator loss is "
        "saturated; the loss was rolled back and rewritten with softplus (commit 3f875a9)",
        ("output-logit-divergence", "vanishing-gradients", "loss-plateau"),
        section="Discriminator",
        note="the saturated sigmoid is the one inside the loss, on the discriminator's output "
        "logit (about +37 for fakes here); the cause is the numerically unstable loss formula, "
        "which no code names exactly. With seed 0 the initial logits are positive; other inits "
        "start negative and train",
    ),
    Case(
        "deepfill_d_step_missing",
        "https://github.com/zhaoyuzhi/deepfillv2/issues/6",
        "gan",
        "RGB images (batch, 3, 16, 16) in [-1, 1] with a rectangular hole mask (batch, 1, 16, 16); "
        "two-stage conv generator, spectral-normalised PatchGAN discriminator on (image, mask)",
        "mask L1 (both stages) + 0.01 x WGAN generator loss; WGAN discriminator loss",
        "frozen-parameters",
        "the discriminator parameters are never updated (found by reading trainer.py)",
        "the discriminator step calls optimizer_d.zero_grad() and loss_D.backward() but never "
        "optimizer_d.step(); the author added it (commit 0786ae0)",
        ("loss-plateau", "loss-at-baseline"),
        section="PatchDiscriminator",
        note="the generator still learns from its L1 terms, as the asker remarked; the failure is "
        "the discriminator's, whose Wasserstein estimate stays at about 0. The discriminator's "
        "parameters do receive gradients (zeroed each step), they are just never applied",
    ),
    Case(
        "stsgcn_gaussian_adjacency",
        "https://github.com/LibCity/Bigscity-LibCity/pull/311",
        "gnn",
        "traffic speeds (batch, 8 steps, 16 sensors, 1) standardised, a fixed localized "
        "spatial-temporal adjacency (48, 48) multiplied into the features by every GCN operation",
        "SmoothL1Loss on de-normalised speeds (3 steps ahead)",
        "exploding-gradients",
        "the loss of STSGCN is irregularly large (> 1e10)",
        "the model was fed the Gaussian-kernel adjacency (entries up to 1, row sums well above 1) "
        "instead of the inverse distance of the STSGCN paper, so every adj @ x scales the "
        "activations up, layer after layer; the merged PR uses 1 / distance",
        ("loss-at-init-high", "unscaled-inputs", "loss-plateau"),
        note="the growth is in the forward activations (and so in the gradients of the early "
        "layers) through 9 stacked graph convolutions; the root cause is an unnormalised graph "
        "operator, which no code names exactly. The loss starts near 1e4 here (16 sensors, 3 "
        "layers) rather than 1e10",
    ),
)
