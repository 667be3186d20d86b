"""Encoder-decoder Transformer of jadore801120/attention-is-all-you-need-pytorch (commit e21800a):
word + sinusoid position embeddings, multi-head ``ScaledDotProductAttention`` that fills masked
scores with ``-inf`` before the softmax, post-norm encoder / decoder layers, a padding mask
``get_attn_padding_mask(seq_q, seq_k)`` and a subsequent (causal) mask in the decoder, trained
with a summed ``cross_entropy(..., ignore_index=PAD)`` and Adam(betas=(0.9, 0.98), eps=1e-9).

Rebuilt from https://github.com/jadore801120/attention-is-all-you-need-pytorch/issues/5:
"Training and validation loss is nan ... (Training) loss: nan, accuracy: 3.7 % ... [Epoch 4]
loss: nan, accuracy: 9.09 %"; the reporter traced it to ScaledDotProductAttention setting the
masked scores to -Inf. The maintainer's fix (commit 94aae68, "fix wrong q/k pair") was in the
decoder: the encoder-decoder attention mask was built as ``get_attn_padding_mask(src_seq,
tgt_seq)`` (the *target* padding laid over the source keys, in the shape of the wrong pair)
instead of ``get_attn_padding_mask(tgt_seq, src_seq)``; with the scrambled mask some query rows
had every key masked, their softmax over all ``-inf`` gave NaN, and the NaN spread to the loss
and the weights.

Departures: a synthetic "translation" (each source word becomes two target words, so targets
are longer than sources, as German vs English sentences often are) with 2-6 source words over a
20-word vocabulary instead of Multi30k; d_model 32, 4 heads, 2 layers; batches padded to their
longest sentence as the repository's DataLoader does. PyTorch 0.1.12's ``masked_fill_`` took a
mask with the right number of elements but the wrong shape and read it in memory order; torch 2
refuses that, so ``ScaledDotProductAttention`` reads the mask with ``view_as(attn)``, which
reproduces the old behaviour (a no-op once the mask has the right shape).
1000 training pairs, 6 epochs.
Measured: sick: training and validation loss nan from the first epoch on, token accuracy 0.000
(argmax of NaN logits); fixed: loss per token 3.49 -> 0.89 (uniform guess ln 40 = 3.7), validation
token accuracy 0.37 after the first epoch, 0.83 after the sixth.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

PAD, BOS, EOS = 0, 1, 2
SRC_VOCAB, TGT_VOCAB = 23, 43
EPOCHS, BATCH = 6, 32
TGT_MAP = rng.permutation(np.arange(3, TGT_VOCAB)).reshape(-1, 2)  # source word -> two target words


def make_pairs(n):
    pairs = []
    for _ in range(n):
        length = int(rng.integers(2, 7))
        src = rng.integers(3, SRC_VOCAB, size=length)
        tgt = [BOS] + [int(w) for s in src for w in TGT_MAP[s - 3]] + [EOS]
        pairs.append(([int(s) for s in src], tgt))
    return pairs


def pad_batch(seqs):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    pos = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        pos[i, : len(s)] = torch.arange(1, len(s) + 1)
    return ids, pos


train_pairs, valid_pairs = make_pairs(1000), make_pairs(200)


def position_encoding_init(n_position, d_pos_vec):
    position_enc = np.array(
        [
            [pos / np.power(10000, 2 * (j // 2) / d_pos_vec) for j in range(d_pos_vec)]
            if pos != 0
            else np.zeros(d_pos_vec)
            for pos in range(n_position)
        ]
    )
    position_enc[1:, 0::2] = np.sin(position_enc[1:, 0::2])
    position_enc[1:, 1::2] = np.cos(position_enc[1:, 1::2])
    return torch.from_numpy(position_enc).float()


def get_attn_padding_mask(seq_q, seq_k):
    """Indicate the padding-related part to mask."""
    mb_size, len_k = seq_k.size()
    mb_size, len_q = seq_q.size()
    pad_attn_mask = seq_k.eq(PAD).unsqueeze(1)  # bx1xsk
    pad_attn_mask = pad_attn_mask.expand(mb_size, len_q, len_k)  # bxsqxsk
    return pad_attn_mask


def get_attn_subsequent_mask(seq):
    attn_shape = (seq.size(0), seq.size(1), seq.size(1))
    return torch.from_numpy(np.triu(np.ones(attn_shape), k=1).astype("uint8")).bool()


class ScaledDotProductAttention(nn.Module):
    def __init__(self, d_model, attn_dropout=0.1):
        super().__init__()
        self.temper = np.power(d_model, 0.5)
        self.dropout = nn.Dropout(attn_dropout)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, q, k, v, attn_mask=None):
        attn = torch.bmm(q, k.transpose(1, 2)) / self.temper
        if attn_mask is not None:
            attn.data.masked_fill_(attn_mask.view_as(attn), -float("inf"))
        attn = self.softmax(attn)
        attn = self.dropout(attn)
        return torch.bmm(attn, v), attn


class MultiHeadAttention(nn.Module):
    def __init__(self, n_head, d_model, d_k, d_v, dropout=0.1):
        super().__init__()
        self.n_head, self.d_k, self.d_v = n_head, d_k, d_v
        self.w_qs = nn.Parameter(torch.empty(n_head, d_model, d_k))
        self.w_ks = nn.Parameter(torch.empty(n_head, d_model, d_k))
        self.w_vs = nn.Parameter(torch.empty(n_head, d_model, d_v))
        self.attention = ScaledDotProductAttention(d_model)
        self.layer_norm = nn.LayerNorm(d_model)
        self.proj = nn.Linear(n_head * d_v, d_model)
        self.dropout = nn.Dropout(dropout)
        for w in (self.w_qs, self.w_ks, self.w_vs):
            nn.init.xavier_normal_(w)

    def forward(self, q, k, v, attn_mask=None):
        residual = q
        mb_size, len_q, d_model = q.size()
        len_k, len_v = k.size(1), v.size(1)
        q_s = q.repeat(self.n_head, 1, 1).view(self.n_head, -1, d_model)
        k_s = k.repeat(self.n_head, 1, 1).view(self.n_head, -1, d_model)
        v_s = v.repeat(self.n_head, 1, 1).view(self.n_head, -1, d_model)
        q_s = torch.bmm(q_s, self.w_qs).view(-1, len_q, self.d_k)
        k_s = torch.bmm(k_s, self.w_ks).view(-1, len_k, self.d_k)
        v_s = torch.bmm(v_s, self.w_vs).view(-1, len_v, self.d_v)
        outputs, attns = self.attention(
            q_s, k_s, v_s, attn_mask=attn_mask.repeat(self.n_head, 1, 1)
        )
        outputs = torch.cat(torch.split(outputs, mb_size, dim=0), dim=-1)
        outputs = self.dropout(self.proj(outputs))
        return self.layer_norm(outputs + residual), attns


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_hid, d_inner_hid, dropout=0.1):
        super().__init__()
        self.w_1 = nn.Conv1d(d_hid, d_inner_hid, 1)
        self.w_2 = nn.Conv1d(d_inner_hid, d_hid, 1)
        self.layer_norm = nn.LayerNorm(d_hid)
        self.dropout = nn.Dropout(dropout)
        self.relu = nn.ReLU()

    def forward(self, x):
        output = self.relu(self.w_1(x.transpose(1, 2)))
        output = self.dropout(self.w_2(output).transpose(2, 1))
        return self.layer_norm(output + x)


class EncoderLayer(nn.Module):
    def __init__(self, d_model, d_inner_hid, n_head, d_k, d_v, dropout=0.1):
        super().__init__()
        self.slf_attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout=dropout)
        self.pos_ffn = PositionwiseFeedForward(d_model, d_inner_hid, dropout=dropout)

    def forward(self, enc_input, slf_attn_mask=None):
        enc_output, enc_slf_attn = self.slf_attn(
            enc_input, enc_input, enc_input, attn_mask=slf_attn_mask
        )
        return self.pos_ffn(enc_output), enc_slf_attn


class DecoderLayer(nn.Module):
    def __init__(self, d_model, d_inner_hid, n_head, d_k, d_v, dropout=0.1):
        super().__init__()
        self.slf_attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout=dropout)
        self.enc_attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout=dropout)
        self.pos_ffn = PositionwiseFeedForward(d_model, d_inner_hid, dropout=dropout)

    def forward(self, dec_input, enc_output, slf_attn_mask=None, dec_enc_attn_mask=None):
        dec_output, _ = self.slf_attn(dec_input, dec_input, dec_input, attn_mask=slf_attn_mask)
        dec_output, _ = self.enc_attn(
            dec_output, enc_output, enc_output, attn_mask=dec_enc_attn_mask
        )
        return self.pos_ffn(dec_output)


class Encoder(nn.Module):
    def __init__(
        self, n_src_vocab, n_max_seq, n_layers, n_head, d_k, d_v, d_model, d_inner_hid, dropout=0.1
    ):
        super().__init__()
        self.position_enc = nn.Embedding(n_max_seq + 1, d_model, padding_idx=PAD)
        self.position_enc.weight.data = position_encoding_init(n_max_seq + 1, d_model)
        self.src_word_emb = nn.Embedding(n_src_vocab, d_model, padding_idx=PAD)
        self.layer_stack = nn.ModuleList(
            [
                EncoderLayer(d_model, d_inner_hid, n_head, d_k, d_v, dropout=dropout)
                for _ in range(n_layers)
            ]
        )

    def forward(self, src_seq, src_pos):
        enc_output = self.src_word_emb(src_seq) + self.position_enc(src_pos)
        enc_outputs = []
        enc_slf_attn_mask = get_attn_padding_mask(src_seq, src_seq)
        for enc_layer in self.layer_stack:
            enc_output, _ = enc_layer(enc_output, slf_attn_mask=enc_slf_attn_mask)
            enc_outputs += [enc_output]
        return enc_outputs


class Decoder(nn.Module):
    def __init__(
        self, n_tgt_vocab, n_max_seq, n_layers, n_head, d_k, d_v, d_model, d_inner_hid, dropout=0.1
    ):
        super().__init__()
        self.position_enc = nn.Embedding(n_max_seq + 1, d_model, padding_idx=PAD)
        self.position_enc.weight.data = position_encoding_init(n_max_seq + 1, d_model)
        self.tgt_word_emb = nn.Embedding(n_tgt_vocab, d_model, padding_idx=PAD)
        self.layer_stack = nn.ModuleList(
            [
                DecoderLayer(d_model, d_inner_hid, n_head, d_k, d_v, dropout=dropout)
                for _ in range(n_layers)
            ]
        )

    def forward(self, tgt_seq, tgt_pos, src_seq, enc_outputs):
        dec_output = self.tgt_word_emb(tgt_seq) + self.position_enc(tgt_pos)
        dec_slf_attn_pad_mask = get_attn_padding_mask(tgt_seq, tgt_seq)
        dec_slf_attn_sub_mask = get_attn_subsequent_mask(tgt_seq)
        dec_slf_attn_mask = torch.gt(dec_slf_attn_pad_mask.int() + dec_slf_attn_sub_mask.int(), 0)
        dec_enc_attn_pad_mask = get_attn_padding_mask(src_seq, tgt_seq)
        for dec_layer, enc_output in zip(self.layer_stack, enc_outputs):
            dec_output = dec_layer(
                dec_output,
                enc_output,
                slf_attn_mask=dec_slf_attn_mask,
                dec_enc_attn_mask=dec_enc_attn_pad_mask,
            )
        return dec_output


class Transformer(nn.Module):
    def __init__(
        self,
        n_src_vocab,
        n_tgt_vocab,
        n_max_seq,
        n_layers=2,
        n_head=4,
        d_model=32,
        d_inner_hid=64,
        d_k=8,
        d_v=8,
        dropout=0.1,
    ):
        super().__init__()
        self.encoder = Encoder(
            n_src_vocab, n_max_seq, n_layers, n_head, d_k, d_v, d_model, d_inner_hid, dropout
        )
        self.decoder = Decoder(
            n_tgt_vocab, n_max_seq, n_layers, n_head, d_k, d_v, d_model, d_inner_hid, dropout
        )
        self.tgt_word_proj = nn.Linear(d_model, n_tgt_vocab, bias=False)
        nn.init.xavier_normal_(self.tgt_word_proj.weight)

    def forward(self, src, tgt):
        src_seq, src_pos = src
        tgt_seq, tgt_pos = tgt
        tgt_seq, tgt_pos = tgt_seq[:, :-1], tgt_pos[:, :-1]
        enc_outputs = self.encoder(src_seq, src_pos)
        dec_output = self.decoder(tgt_seq, tgt_pos, src_seq, enc_outputs)
        seq_logit = self.tgt_word_proj(dec_output)
        return seq_logit.view(-1, seq_logit.size(2))


def get_performance(pred, gold):
    loss = F.cross_entropy(pred, gold, ignore_index=PAD, reduction="sum")
    pred = pred.max(1)[1]
    n_correct = pred.eq(gold)[gold.ne(PAD)].sum().item()
    return loss, n_correct


model = Transformer(SRC_VOCAB, TGT_VOCAB, n_max_seq=14)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-09)


def run_epoch(pairs, training):
    model.train(training)
    total_loss, n_correct, n_words = 0.0, 0, 0
    order = rng.permutation(len(pairs)) if training else np.arange(len(pairs))
    for start in range(0, len(pairs), BATCH):
        batch = [pairs[i] for i in order[start : start + BATCH]]
        src, tgt = pad_batch([p[0] for p in batch]), pad_batch([p[1] for p in batch])
        gold = tgt[0][:, 1:].contiguous().view(-1)
        with torch.set_grad_enabled(training):
            pred = model(src, tgt)
            loss, n_corr = get_performance(pred, gold)
            if training:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        n_words += gold.ne(PAD).sum().item()
        total_loss += loss.item()
        n_correct += n_corr
    return total_loss / n_words, n_correct / n_words


for epoch in range(EPOCHS):
    train_loss, train_acc = run_epoch(train_pairs, True)
    valid_loss, valid_acc = run_epoch(valid_pairs, False)
    print(f"[ Epoch {epoch} ] (Training) loss: {train_loss:8.4f}, accuracy: {train_acc:.3f} "
          f"(Validation) loss: {valid_loss:8.4f}, accuracy: {valid_acc:.3f}")  # fmt: skip
