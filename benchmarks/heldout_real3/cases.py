"""The third held-out set of real, non-MLP "my network does not learn" reports (issue 20).

Written by helper sessions that neither ran ``nndoctor`` nor read its rules, and committed
before the rule changes it is scored against (see ``README.md``). Each case is two standalone
scripts in this folder, ``<name>_sick.py`` and ``<name>_fixed.py``; the fields of :class:`Case`
are those of the first set. ``python benchmarks/bench_heldout_real.py --set heldout_real3``
scores it.
"""

from __future__ import annotations

from heldout_real.cases import NAN, Case

CASES: tuple[Case, ...] = (
    # --- CNN image classifiers
    Case(
        "cnn_alexnet_noshuffle",
        "https://stackoverflow.com/questions/54354465",
        "cnn",
        "images (batch 32, 3, 24, 24), 10 classes, stored class after class (ImageFolder order)",
        "CrossEntropyLoss()",
        "unshuffled-data",
        "AlexNet fine-tuned on 100 classes: validation accuracy 2-3% for ~10 epochs with "
        "DataLoader(shuffle=False); 70% in the first epoch after switching to shuffle=True",
        "the DataLoader did not shuffle a class-sorted dataset, so every batch held one class and "
        "each stretch of updates pulled the net towards that class; fix shuffle=True",
        ("loss-at-baseline", "output-collapse", "oscillating-loss"),
        section=None,
        note="Question text read from a mirror carrying the same Stack Overflow id "
        "(coderoad.ru/54354465, 'Effect of using data shuffling in Pytorch dataloader'). "
        "AlexNet-shaped net trained from random init (no pretrained weights offline), 10 classes "
        "instead of 100. Sick: train loss 2.38-2.44, val acc 0.10 (1-2 classes predicted); "
        "fixed: val acc 0.98 after 6 epochs.",
    ),
    Case(
        "cnn_monai_split_one_class",
        "https://github.com/Project-MONAI/tutorials/issues/122",
        "cnn",
        "single-channel scans (batch 16, 1, 24, 24), 2 classes (AD / FTD); the training split "
        "holds class 0 only, the validation split class 1 only",
        "CrossEntropyLoss()",
        "constant-targets",
        "training loss falls every epoch but validation accuracy is always exactly zero",
        "the file list in folder order was split as images[:N] / images[-M:], so the net was "
        "trained on one class (AD) and validated on the other (FTD); fix random.shuffle(images) "
        "before the split",
        ("not-using-inputs",),
        section=None,
        note="Confirmed by the asker ('Thanks! Now it's working.'). 2D densely connected CNN "
        "instead of MONAI's 3D DenseNet121; Adam lr 1e-3 instead of 1e-5. The training loss "
        "itself looks healthy (0.41 -> 0.009) because every training label is 0; the failure "
        "shows only as val accuracy 0.000 every epoch. Fixed: val acc 1.00 after 5 epochs.",
    ),
    Case(
        "cnn_lenet_norm_wrong_axis",
        "https://github.com/BIGBALLON/cifar-10-cnn/issues/17",
        "cnn",
        "images (batch 128, 3, 32, 32), 10 classes; 29 of the 32 pixel columns left at raw "
        "0-255 values",
        "CrossEntropyLoss()",
        "unscaled-inputs",
        "LeNet on CIFAR-10 stays at 10% accuracy with the asker's per-channel standardisation, "
        "52% when the images are simply divided by 255",
        "the standardisation loop indexed x_train[:,:,i] (image column i) instead of the channel "
        "axis x_train[:,:,:,i] as in the repository's color_preprocessing, so most pixels kept "
        "their 0-255 scale; fix index the channel axis",
        ("dead-units", "loss-at-init-high", "loss-at-baseline", "output-collapse"),
        section=None,
        note="Keras report rebuilt in PyTorch (softmax folded into CrossEntropyLoss). The issue "
        "has no maintainer reply; the cause rests on the asker's own /255 experiment and on the "
        "repository's correct x_train[:,:,:,i] code. Sick: loss 14.2 in epoch 1, then flat at "
        "2.302 (ln 10), acc 0.10, one class predicted (ReLUs die); fixed: test acc 1.00.",
    ),
    Case(
        "cnn_resnet_bs1_train_mode",
        "https://github.com/huyvnphan/PyTorch_CIFAR10/issues/4",
        "cnn",
        "images (batch 64, 3, 16, 16) in training, (1, 3, 16, 16) in the accuracy check, "
        "10 classes",
        "CrossEntropyLoss()",
        "eval-mode-training",
        "pretrained CIFAR ResNet gives ~22% training-set accuracy when checked with "
        "DataLoader(batch_size=1)",
        "the model was never switched to eval(): in train mode every BatchNorm normalised a lone "
        "image by its own statistics instead of the running statistics; fix model.eval() before "
        "the check",
        ("batch-mixing",),
        section=None,
        note="Confirmed by the asker ('This fixed my issue!'). The pretrained weights are "
        "produced by an ordinary training loop in the script and the check runs after every "
        "epoch; the training loss is healthy in both scripts (1.40 -> 0.022); only the "
        "batch_size=1 check differs: sick 0.107-0.110 (chance 0.10), fixed 0.26 -> 1.00. "
        "This is the 'evaluated in train() mode' half of the code.",
    ),
    Case(
        "cnn_transfer_steplr_per_batch",
        "https://github.com/pytorch/tutorials/pull/640",
        "cnn",
        "images (batch 4, 3, 16, 16), 2 classes (ants / bees)",
        "CrossEntropyLoss()",
        "lr-schedule-collapse",
        "(the PR states the cause only) the transfer-learning tutorial's StepLR(step_size=7, "
        "gamma=0.1), meant to decay per epoch, was stepped after every batch",
        "scheduler.step() sat inside the batch loop after optimizer.step(), so the lr fell 10x "
        "every 7 batches and was ~0 within the first epoch; fix step the scheduler once per "
        "epoch after the train phase",
        ("lr-too-low", "loss-plateau", "frozen-parameters"),
        section=None,
        note="Merged by soumith ('thanks!'). Small ResNet from random init instead of the "
        "ImageNet-pretrained ResNet-18. Sick: lr 1e-13 after epoch 1; the net learns a little "
        "in the first ~20 batches, then train loss stays 0.66-0.67 (ln 2 = 0.69) and val acc "
        "0.63-0.66; fixed: val acc 0.97 after epoch 1, 0.98 after epoch 6.",
    ),
    # --- segmentation nets and a VAE
    Case(
        "seg_mask_normalized_bce",
        "https://github.com/bigmb/Unet-Segmentation-Pytorch-Nest-of-Unets/issues/18",
        "unet",
        "images (batch, 3, 32, 32), one binary mask channel (batch, 1, 32, 32)",
        "0.5 * F.binary_cross_entropy_with_logits + 0.5 * soft dice on F.sigmoid (the repo's calc_loss)",
        "targets-out-of-range",
        "the loss turns negative after a few epochs; BCEWithLogits itself is negative",
        "the mask went through the image's Normalize(0.5, 0.5) and sits in {-1, 1}; BCE targets must be in [0, 1]",
        ("wrong-loss-for-targets", "oscillating-loss"),
        section=None,
        note="Synthetic shapes instead of the asker's data, 3-level U_Net. The sick loss is negative and "
        "jumps between about -2 and -16 (BCE unbounded below for target -1, soft-dice denominator near 0); "
        "test Dice of the thresholded mask about 0.24, near what marking every pixel gives.",
    ),
    Case(
        "seg_totensor_mask",
        "https://github.com/pytorch/vision/issues/2497",
        "unet",
        "images (batch, 3, 32, 32), label masks (batch, 32, 32) with class indices 0..3",
        "CrossEntropyLoss()",
        "constant-targets",
        "performance incredibly bad, the models could not even overfit a simple dataset",
        "ToTensor() on the label mask rescales class indices by 1/255; after .long() every target is class 0",
        ("output-collapse",),
        section=None,
        note="The report does not show how the rescaled float mask reached the loss; the rebuild casts it "
        "with .long(), the common path, which makes every target 0. ToTensor is written out (no "
        "torchvision) and a small U-Net replaces HRNet / DeepLabV3+. The sick loss does fall (it fits "
        "all-zero targets); the net then predicts background everywhere (mIoU 0.216 vs 0.712 fixed).",
    ),
    Case(
        "seg_softmax_before_ce",
        "https://github.com/milesial/Pytorch-UNet/issues/186",
        "unet",
        "images (batch, 3, 32, 32), label masks (batch, 32, 32) with class indices 0..7",
        "CrossEntropyLoss()",
        "double-activation",
        "after adding a softmax layer to the U-Net output the training loss stays fixed (0.5975)",
        "CrossEntropyLoss already applies (log-)softmax; the network must return raw logits",
        ("loss-plateau",),
        section=None,
        note="8 classes instead of 21, RMSprop as in the repo's train.py of the time. The sick loss stalls "
        "at 1.32, near its floor ln(1 + 7/e) = 1.28; RMSprop still moves the argmax, so test mIoU reaches "
        "0.64 (fixed 0.93) with 4-6 of 8 classes predicted.",
    ),
    Case(
        "seg_dice_threshold_detached",
        "https://github.com/qubvel-org/segmentation_models.pytorch/pull/611",
        "unet",
        "images (batch, 3, 32, 32), one binary mask channel (batch, 1, 32, 32)",
        "DiceLoss(activation='sigmoid', threshold=0.5) of smp.utils (1 - f_score)",
        "detached-graph",
        "thresholding in the Dice loss raised 'element 0 of tensors does not require grad'; the PR wraps "
        "it as torch.tensor(..., requires_grad=True)",
        "the thresholded prediction is a new leaf cut from the network: no gradient reaches the model; the "
        "library keeps threshold=None (soft Dice)",
        ("frozen-parameters", "loss-plateau"),
        section=None,
        note="The PR was closed unmerged (the maintainer called the utils module stale), so the cause is "
        "not confirmed in the thread; it is verified in the rebuild (every model .grad stays None). The "
        "sick script also prints torch's UserWarning about torch.tensor(tensor). The dice_loss stays at "
        "0.731; test IoU 0.11-0.15 moves only with BatchNorm running statistics.",
    ),
    Case(
        "ae_vae_mean_recon_collapse",
        "https://stats.stackexchange.com/questions/485488",
        "vae",
        "images (batch, 1, 16, 16) in [0, 1], latent dim 2",
        "mean binary cross-entropy over pixels + mean KL (Keras VAE example)",
        None,
        "without the * 28 * 28 on the reconstruction loss, all reconstructions look the same regardless of input",
        "the log-likelihood sums over pixels; averaged, the reconstruction term is 1/784 of its weight, the "
        "KL term wins and the posterior collapses",
        ("output-collapse", "not-using-inputs", "loss-at-baseline", "loss-plateau"),
        section=None,
        note="No code names the cause (the relative weight of the reconstruction and KL terms, i.e. "
        "posterior collapse); output-collapse / not-using-inputs describe what it produces. Rebuilt in "
        "PyTorch from the Keras example (conv encoder/decoder as keras.io/examples/generative/vae) on "
        "synthetic 16x16 stroke digits, so the factor is 16 * 16. Sick: KL 0.000, reconstruction MSE = "
        "the mean image's MSE, output spread 0.000. The fixed run itself sits collapsed for two epochs "
        "before the latent opens (KL about 5 per image, MSE 0.0134 vs 0.0564).",
    ),
    # --- recurrent nets
    Case(
        "rnn_ar_lstm_view_not_transpose",
        "https://github.com/jessicayung/blog-code-snippets/issues/6",
        "lstm",
        "AR(20) series windows as (seq 20, batch 400, 1), full batch, next-value regression",
        "MSELoss(reduction='sum')",
        "batch-mixing",
        "X_train and X_test incorrectly reshaped in lstm-baseline.py: the LSTM does not track the series",
        "X_train (num_train, 20) is reshaped with .view(20, -1, 1) instead of .t().view(...), so each sample's sequence is built from other samples' values; transpose first",
        ("loss-plateau", "loss-at-baseline", "not-using-inputs"),
        section=None,
        note="Reporter's diagnosis (issue open, no maintainer reply) but the reshape error is verifiable from the code. 500 datapoints/250 epochs instead of 100/500 so the scrambled model cannot memorise the tiny training set; sick stays at ~89% of the constant baseline (7.5 vs 8.44), fixed reaches 3% (0.25). The test windows are tiny values because the noiseless AR series decays.",
    ),
    Case(
        "rnn_lstm_regressor_target_broadcast",
        "https://github.com/aiboxlab/nlp/issues/97",
        "lstm",
        "sequences (batch, 16, 8) of token vectors, one scalar score per sequence",
        "MSELoss",
        "loss-shape-broadcast",
        "UserWarning: Using a target size (torch.Size([3])) that is different to the input size (torch.Size([3, 1])) from LSTMRegressor",
        "the Linear head outputs (batch, 1) while the target is (batch,), so MSELoss broadcasts to (batch, batch); squeeze the output (maintainer fix)",
        ("output-collapse", "loss-at-baseline"),
        section=None,
        note="Estimator class kept (nn.Sequential LSTM + last-step extractor + Linear, AdamW, batch 256); epochs 40 and lr 1e-2 instead of 10 and 1e-3; fixed-length synthetic sequences. Sick loss = target variance (1.002), R2 0.001.",
    ),
    Case(
        "rnn_lstm_unscaled_targets",
        "https://github.com/keras-team/keras/issues/4563",
        "lstm",
        "multivariate time series (batch, 20, 4), one target per sequence around 6000 (std ~1500)",
        "L1Loss (mean absolute error)",
        "unscaled-targets",
        "losses are always either very high or NaN with several optimizers; the Y values to predict are very high",
        "targets in the thousands against an output that starts near 0; rescale the targets (commenter's answer: rescale the values before training)",
        ("loss-at-init-high", "output-collapse"),
        section=None,
        note="Keras report rebuilt in PyTorch (LSTM(64) -> Dropout(0.3) -> Linear(1)); Adam (Keras default lr 1e-3, one of the optimizers the asker tried) instead of the posted SGD lr 0.0008, on which even the fixed model learns too slowly for a few CPU seconds. Answer is a commenter's suggestion, not confirmed by the asker. The NaN half of the report is not reproduced.",
    ),
    Case(
        "rnn_char_rnn_no_clip_nan",
        "https://github.com/pytorch/pytorch/issues/2623",
        "rnn",
        "one-hot character sequences (len 6-40, batch 32, 57), 18 classes",
        "NLLLoss on LogSoftmax",
        "exploding-gradients",
        "modified char-RNN classification tutorial: loss became NaN (exploding gradients) on a large dataset",
        "gradients through the tutorial's linear recurrence (i2h without nonlinearity) blow up under plain SGD; clip them with clip_grad_norm_ before the update (the forum answer the asker applied)",
        NAN + ("grad-norm-spike", "spike-divergence"),
        section=None,
        note="The asker's own later code also swapped LogSoftmax for nn.Softmax (their second question, negative loss); left out, the tutorial's LogSoftmax is kept. Batched (32 same-length lines) with lr 0.05 instead of one name per step at lr 0.005 so the NaN arrives at ~400 steps instead of ~35000; manual p.data.add_ update kept. Fixed learns noisily (acc ~0.5, chance 0.056).",
    ),
    # --- recurrent nets (2)
    Case(
        "rnn2_lstm_softmax_single_unit",
        "https://stackoverflow.com/questions/47241622",
        "lstm",
        "binary sequences (batch, 31, 1), binary label per sequence",
        "BCELoss on softmax over a single output unit",
        "targets-out-of-range",
        "LSTM(128) -> Dense(1, activation='softmax') with binary_crossentropy: accuracy never above ~55% whatever the activation/loss tried, while an MLP reached 97%",
        "softmax over a single output unit always outputs the constant 1, so the 0 labels can never be reached (and no gradient flows); use sigmoid (accepted answer)",
        (
            "wrong-loss-for-targets",
            "output-collapse",
            "frozen-parameters",
            "loss-at-init-high",
            "not-using-inputs",
            "cannot-overfit",
        ),
        section=None,
        note="Keras report rebuilt in PyTorch (nn.LSTM + Linear(128,1) + torch.softmax(dim=1) + BCELoss). stateful=True left out; labels 0/1 instead of the asker's 1/-1; synthetic 'more than half the bits set' task. Sick output is exactly 1.0 for every input, the gradient through the one-unit softmax is exactly zero so no weight ever changes; loss 50.4 (BCELoss clamps log 0 to -100) in every epoch, accuracy 0.506 = share of label 1. Fixed (sigmoid): accuracy 0.978.",
    ),
    Case(
        "rnn2_lstm_bce_multiclass_labels",
        "https://github.com/keras-team/keras/issues/2172",
        "lstm",
        "word-vector sequences (batch, 20, 16), 3 classes given as integer labels 0/1/2",
        "BCEWithLogitsLoss (sigmoid + binary cross-entropy) on a single output unit",
        "wrong-loss-for-targets",
        "LSTM text classifier with 3 target labels, Dense(1)+sigmoid+binary_crossentropy: 'loss: -8.0915 - acc: 1.0000'",
        "one sigmoid output with binary cross-entropy fed the integer labels 0/1/2; the targets must be one-hot (n_samples, 3) with 3 outputs (softmax + categorical cross-entropy), which the asker confirmed solved it",
        ("targets-out-of-range", "output-logit-divergence"),
        section=None,
        note="Keras report rebuilt in PyTorch: nn.BCELoss refuses targets > 1, so the sigmoid+BCE pair is BCEWithLogitsLoss (which accepts the label 2); with target 2 that loss is unbounded below, so the loss falls to -11.9 (the report's -8.09) while the logits of class-2 sentences run to +inf. Sick test accuracy 0.37-0.52 (chance 0.33, ceiling 0.67 as classes 1 and 2 share one output side), class 2 never predicted; fixed (Linear(h,3) + CrossEntropyLoss) 0.983. LSTM(64) instead of LSTM(400). The fix changes 4 lines (output width, loss, target format, prediction).",
    ),
    # --- transformers
    Case(
        "tfm_seq2seq_swapped_pad_mask",
        "https://github.com/jadore801120/attention-is-all-you-need-pytorch/issues/5",
        "transformer",
        "token sequences: source (batch, 2-6 words, vocab 23) -> target (batch, 5-13 words, vocab 43), PAD=0",
        "F.cross_entropy(ignore_index=PAD, reduction='sum')",
        "nan-source",
        "training and validation loss nan from the first epoch, accuracy ~9% (chance)",
        "encoder-decoder attention padding mask built from the wrong (target, source) pair; the scrambled mask left some query rows with every key at -inf, so the softmax gave NaN (fix commit 94aae68 swapped the arguments)",
        NAN,
        section=None,
        note="Synthetic 'translation' (each source word -> two target words) instead of Multi30k; torch 0.1.12 masked_fill_ read a same-numel mask of the wrong shape in memory order, reproduced with attn_mask.view_as(attn) (a no-op in the fixed script).",
    ),
    Case(
        "tfm_bert_ner_warmup_negative_lr",
        "https://github.com/huggingface/transformers/issues/297",
        "transformer",
        "token ids (batch, 16) with padding mask, 5 BIO tags per token",
        "CrossEntropyLoss on active (non-padding) tokens",
        "lr-schedule-collapse",
        "a NER tagger at high accuracy suddenly shifts all its predictions to a single class within one epoch",
        "warmup_linear(x) = 1 - x with t_total counted from examples instead of the (more numerous) features: past t_total the lr goes through 0 to negative and the optimizer climbs the loss (issues #324/#132, fixed in PR #327)",
        ("spike-divergence", "output-collapse", "diverged"),
        section=None,
        note="The schedule does not merely drive the lr to ~0: it passes 0 and goes negative (down to -2x the base lr), so the loss climbs to 66 and every token is tagged B-PER. lr-schedule-collapse is the closest code (a scheduler bug); a tool reporting the rising loss / single-class output finds the symptom. Small encoder trained from scratch with torch Adam lr 1e-3 instead of fine-tuning bert-base with BertAdam.",
    ),
    # --- transformers (2)
    Case(
        "tfm2_bert_unfrozen_lr_1e3",
        "https://github.com/prateekjoshi565/Fine-Tuning-BERT/issues/15",
        "transformer",
        "token ids (batch, 25) with attention_mask padding, 2 classes (25% spam)",
        "NLLLoss(weight=balanced class weights) on LogSoftmax outputs",
        "lr-too-high",
        "after un-freezing BERT, all sentences classified 0 (or in some runs all 1)",
        "the notebook's AdamW lr=1e-3, meant for the head on a frozen BERT, is far too high once the encoder is fine-tuned",
        ("output-collapse", "loss-at-baseline"),
        section=None,
        note="Tiny 2-layer d_model 32 encoder from scratch instead of pretrained bert-base, synthetic spam data; "
        "since a tiny from-scratch encoder tolerates larger steps, the rates are scaled: sick 3e-2, fixed 1e-3 "
        "(about the report's ratio of 1e-3 to the usual 2e-5-5e-5). clip_grad_norm_(1.0) is kept from the notebook. "
        "The issue thread itself has no answer; the cause is the well-known one for this notebook's lr.",
    ),
    Case(
        "tfm2_bertner_unfrozen_lr_high",
        "https://github.com/yumath/bertNER/issues/4",
        "transformer",
        "token ids (batch, 30) with padding mask, 7 BIO tags per token (about 80% 'O'), padded tags -100",
        "CrossEntropyLoss(ignore_index=-100) over tokens",
        "lr-too-high",
        "after making the BERT layers trainable too, the NER results are all 0 (every token tagged O)",
        "the 1e-3 learning rate used for the BiLSTM wrecks the BERT encoder; a rate of 1e-4 or lower fixes it",
        ("output-collapse", "loss-at-baseline", "loss-plateau", "class-imbalance"),
        section=None,
        note="TensorFlow BERT+BiLSTM+CRF rebuilt in torch as a tiny 2-layer encoder + BiLSTM + Linear with "
        "cross-entropy (no CRF), trained from scratch on synthetic BIO data; rates scaled by 30x keeping the "
        "report's 10x ratio: sick 3e-2, fixed 3e-3. Cause found by a commenter, acknowledged by the maintainer.",
    ),
    Case(
        "tfm2_gpt2_lm_loss_unshifted",
        "https://github.com/huggingface/transformers/pull/404",
        "lm",
        "token ids (batch, 16), vocabulary 32, lm_labels = input_ids",
        "CrossEntropyLoss(ignore_index=-1) over all positions",
        None,
        "minimizing the LM loss destroyed the language model within a few steps (loss falls, predictions useless)",
        "the LM loss compared logits at position i with token i instead of token i+1; the fix shifts logits[..., :-1] against labels[..., 1:]",
        ("wrong-loss-for-targets",),
        section=None,
        note="No code fits: under the causal mask position i sees token i, so unshifted labels teach the model to copy "
        "its input; the training loss drops to 0.01 and looks healthy, while held-out next-token accuracy is 0.000 and "
        "greedy generation repeats the last prompt token. wrong-loss-for-targets is the nearest partial answer (the "
        "loss pairs outputs with the wrong targets). Tiny 2-layer pre-LN GPT trained from scratch instead of fine-tuning "
        "pretrained GPT-2; synthetic counting sequences.",
    ),
    # --- a GAN, a graph net, a multi-task net
    Case(
        "oth_gan_leaked_d_grads",
        "https://github.com/Lightning-AI/pytorch-lightning/issues/591",
        "gan",
        "images (batch, 1, 8, 8) in [-1, 1] (one bar, 16 positions); generator fed latent (batch, 32)",
        "F.binary_cross_entropy on a Sigmoid discriminator output (generator and discriminator)",
        "stale-gradients",
        "GAN training impossible: discriminator cannot push fakes down (D(fake) stuck ~0.68), generator makes no bars",
        "each optimizer's zero_grad ran only after its own step, so the generator loss's gradient left in the discriminator's .grad is added to the discriminator update",
        ("loss-plateau", "oscillating-loss"),
        section="discriminator",
        note="Lightning's trainer of that time did backward/step/zero_grad per optimizer; rebuilt as a plain loop doing the same. The fix is Lightning pull/603 (zero all grads before backward); here discriminator.zero_grad() before the discriminator backward. MLP G and D as in Lightning's GAN template. The sick generator is not totally frozen: quality 0.06 vs 0.63 fixed after 32 epochs.",
    ),
    Case(
        "oth_graphsage_zero_degree",
        "https://github.com/MrLeeeee/GCN-GAT-and-Graphsage/issues/3",
        "gnn",
        "graph: 800 nodes x 16 features, dense adjacency (no self loops, 4% isolated nodes), 4 node classes",
        "F.nll_loss on log_softmax",
        "nan-source",
        "the loss becomes NaN",
        "GraphSAGE mean aggregation h1 / degree divides by a zero degree for isolated nodes (0/0); fix: add 1e-5 to the degree",
        NAN,
        section=None,
        note="The issue got no maintainer reply, but the cause is self-evident (0/0 = NaN, then 0*NaN spreads it through adj @ h to every node) and the suggested fix makes the script learn. Loss is NaN from the first step. Synthetic graph instead of the repository's data.",
    ),
    Case(
        "oth_mtl_aux_head_loss_dropped",
        "https://github.com/open-mmlab/mmaction2/issues/682",
        "multi-task",
        "clips (batch, 4 frames, 1, 12, 12), 6 classes; two heads (main cls_head and the neck's auxiliary head)",
        "dict of CrossEntropy losses summed (loss_cls, loss_aux weighted 0.5)",
        "unused-parameters",
        "neck's auxiliary head loss is not used: the auxiliary head is never trained",
        "Recognizer2D.forward_train discarded the loss returned by the neck (x, _ = self.neck(...)); fix keeps it and adds it to the loss dict",
        ("frozen-parameters",),
        section=None,
        note="The aux head runs forward and computes its loss, but the loss is dropped, so its parameters never get a gradient (aux accuracy stays at chance 0.177 while cls_head reaches 0.97). The main task learns in both scripts; the symptom is the auxiliary head only. Toy backbone and pooling neck instead of ResNet-50 + TPN.",
    ),
    # --- recommenders on embeddings
    Case(
        "oth2_ncf_gmf_mse_broadcast",
        "https://github.com/yihong-chen/neural-collaborative-filtering/issues/5",
        "recommendation",
        "user ids and item ids (batch,) into user/item nn.Embedding(dim 8); explicit ratings in [0, 1] plus sampled negatives with target 0",
        "nn.MSELoss() on a Sigmoid output of shape (batch, 1) against ratings of shape (batch,)",
        "loss-shape-broadcast",
        "training results too bad: HR and NDCG 0.0000 (PyTorch 1.0.1); on PyTorch 0.4.0 'input and target shapes do not match: input [1024 x 1], target [1024]'",
        "the (batch, 1) prediction and (batch,) ratings broadcast to (batch, batch) in MSELoss, pulling every prediction to the batch mean; fix: self.crit(ratings_pred.view(-1), ratings) (commit acd7f92)",
        ("output-collapse", "loss-plateau", "loss-at-baseline", "not-using-inputs"),
        section=None,
        note="The reporter's then-master also used Adam weight_decay 0.01, which the maintainer set to 0 in the same round of fixes (README: large L2 'might lead to the bug of HR=0.0 NDCG=0.0'); in the rebuild l2 is 0 in both scripts so only the shape fix differs. Synthetic ratings (600 users x 400 items), Adam lr 1e-2, 12 epochs. Sick: loss flat 0.142, HR@10 0.08-0.13 (chance 0.10), score spread 0.0003; torch prints its broadcasting UserWarning. Fixed: HR@10 0.69.",
    ),
    Case(
        "oth2_gde_bpr_pos_neg_term",
        "https://github.com/tanatosuu/GDE/pull/2",
        "recommendation",
        "sampled (user, positive item, negative item) index triples (batch 256,) into user/item nn.Embedding(dim 64) propagated through fixed spectral filters L_u (300x300), L_i (400x400)",
        "BPR: (-torch.log(sigmoid(score_pos - score_neg)).sum() + L2 term) / batch_size",
        None,
        "with the BPR loss type the loss becomes NaN",
        "the BPR term scored the negative item against the positive item (final_pos*final_nega) instead of the user (final_user*final_nega); merged fix swaps final_pos for final_user",
        ("nan-source", "non-finite-values", "diverged"),
        section=None,
        note="No code names the cause (a wrong term in a hand-written loss). Its effect: the item-item product -pos.neg feeds the item table's gradient back into itself, the score difference jumps below -88 after one SGD step (lr 0.03, the repo's), sigmoid underflows to 0 and -torch.log(out) gives inf at step 2 and NaN gradients/weights from step 3; nan-source (log of 0) names that mechanism on the line after the bug. At lr 0.003 the sick script does not go NaN but still does not learn (recall@20 0.07 vs chance 0.05), so the bug is not only a step-size problem. Synthetic 6-group implicit feedback, eigh instead of lobpcg, loss_type='bpr' passed explicitly (repo default 'adaptive'), 40 epochs. Fixed: recall@20 0.24.",
    ),
)
