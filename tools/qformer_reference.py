#!/usr/bin/env python3
"""PyTorch reference for vistune's Q-Former connectors (a measuring stick, never a runtime dependency).

Follows transformers' modeling_blip_2.py (Blip2QFormerModel, Blip2ForConditionalGeneration) and
modeling_instructblip.py (InstructBlipQFormerEmbeddings / InstructBlipQFormerModel, `qformer_input_ids`) in
plain torch, with a plain-torch LlamaForCausalLM as the language model (InstructBLIP's Vicuna is one). It writes
two tiny fixtures under fixtures/tiny-qformer/: config.json (HF Blip2Config / InstructBlipConfig layout),
model.safetensors (HF names: query_tokens, qformer.*, language_projection.*, language_model.*) and
expected.safetensors (the image features fed in, the query outputs, the projected slots, input ids and logits).

Run with Debian's torch:  /usr/bin/python3 tools/qformer_reference.py
"""

import json
import math
import os
import struct
import sys

import torch
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tiny-qformer")


# ----------------------------------------------------------------------------------------------- safetensors
def save_safetensors(path, tensors):
    """Minimal safetensors writer: a JSON header (8-byte little-endian length) then raw little-endian bytes."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------------------------- Q-Former
class QFormerMultiHeadAttention(nn.Module):
    def __init__(self, c, is_cross_attention):
        super().__init__()
        self.heads = c["num_attention_heads"]
        self.head_size = c["hidden_size"] // self.heads
        kv_width = c["encoder_hidden_size"] if is_cross_attention else c["hidden_size"]
        self.query = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.key = nn.Linear(kv_width, c["hidden_size"])
        self.value = nn.Linear(kv_width, c["hidden_size"])

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_size).permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        is_cross = encoder_hidden_states is not None
        kv = encoder_hidden_states if is_cross else hidden_states
        mask = encoder_attention_mask if is_cross else attention_mask
        q, k, v = self.split(self.query(hidden_states)), self.split(self.key(kv)), self.split(self.value(kv))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class DenseLayerNorm(nn.Module):
    """Blip2QFormerSelfOutput / Blip2QFormerOutput: LayerNorm(dense(x) + input)."""

    def __init__(self, c, in_width):
        super().__init__()
        self.dense = nn.Linear(in_width, c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x, input_tensor):
        return self.LayerNorm(self.dense(x) + input_tensor)


class QFormerAttention(nn.Module):
    def __init__(self, c, is_cross_attention=False):
        super().__init__()
        self.attention = QFormerMultiHeadAttention(c, is_cross_attention)
        self.output = DenseLayerNorm(c, c["hidden_size"])

    def forward(self, x, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        return self.output(self.attention(x, attention_mask, encoder_hidden_states, encoder_attention_mask), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # hidden_act "gelu" (exact erf form)


class QFormerLayer(nn.Module):
    def __init__(self, c, layer_idx, with_text):
        super().__init__()
        self.attention = QFormerAttention(c)
        self.has_cross_attention = layer_idx % c["cross_attention_frequency"] == 0
        if self.has_cross_attention:
            self.crossattention = QFormerAttention(c, is_cross_attention=True)
        if with_text:
            self.intermediate = Intermediate(c)
            self.output = DenseLayerNorm(c, c["intermediate_size"])
        self.intermediate_query = Intermediate(c)
        self.output_query = DenseLayerNorm(c, c["intermediate_size"])

    def forward(self, x, attention_mask, encoder_hidden_states, encoder_attention_mask, query_length):
        attention_output = self.attention(x, attention_mask)
        query_attention_output = attention_output[:, :query_length, :]
        if self.has_cross_attention:
            query_attention_output = self.crossattention(
                query_attention_output, attention_mask, encoder_hidden_states, encoder_attention_mask
            )
        layer_output = self.output_query(self.intermediate_query(query_attention_output), query_attention_output)
        if attention_output.shape[1] > query_length:
            text = attention_output[:, query_length:, :]
            layer_output = torch.cat([layer_output, self.output(self.intermediate(text), text)], dim=1)
        return layer_output


class QFormerEncoder(nn.Module):
    def __init__(self, c, with_text):
        super().__init__()
        self.layer = nn.ModuleList([QFormerLayer(c, i, with_text) for i in range(c["num_hidden_layers"])])


class QFormerEmbeddings(nn.Module):
    """InstructBlipQFormerEmbeddings."""

    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c["pad_token_id"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, input_ids, query_embeds):
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
        embeddings = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.layernorm(torch.cat((query_embeds, embeddings), dim=1))


def extended_mask(mask):
    """[B, S] of 1/0 → additive [B, 1, 1, S] (HF: (1 - mask) * finfo.min)."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


class QFormerModel(nn.Module):
    def __init__(self, c, with_text):
        super().__init__()
        if with_text:
            self.embeddings = QFormerEmbeddings(c)
        else:
            self.layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.encoder = QFormerEncoder(c, with_text)
        self.with_text = with_text

    def forward(self, query_embeds, encoder_hidden_states, input_ids=None, attention_mask=None):
        query_length = query_embeds.shape[1]
        if self.with_text:
            x = self.embeddings(input_ids, query_embeds)
        else:
            x = self.layernorm(query_embeds)
        b, t, _ = x.shape
        if attention_mask is None:
            attention_mask = torch.ones(b, t)
        self_mask = extended_mask(attention_mask)
        encoder_mask = extended_mask(torch.ones(encoder_hidden_states.shape[:2]))
        for layer in self.encoder.layer:
            x = layer(x, self_mask, encoder_hidden_states, encoder_mask, query_length)
        return x


# ----------------------------------------------------------------------------------------------- LLaMA
class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.hkv = c["num_attention_heads"], c["num_key_value_heads"]
        self.d = c["hidden_size"] // self.h
        self.theta = c["rope_theta"]
        self.q_proj = nn.Linear(c["hidden_size"], self.h * self.d, bias=False)
        self.k_proj = nn.Linear(c["hidden_size"], self.hkv * self.d, bias=False)
        self.v_proj = nn.Linear(c["hidden_size"], self.hkv * self.d, bias=False)
        self.o_proj = nn.Linear(self.h * self.d, c["hidden_size"], bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.h, self.d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.hkv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.hkv, self.d).transpose(1, 2)
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.d, 2).float() / self.d))
        freqs = torch.outer(torch.arange(t).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.h // self.hkv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.d)
        scores = scores + torch.triu(torch.full((t, t), torch.finfo(torch.float32).min), diagonal=1)
        out = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c["hidden_size"], c["intermediate_size"], bias=False)
        self.up_proj = nn.Linear(c["hidden_size"], c["intermediate_size"], bias=False)
        self.down_proj = nn.Linear(c["intermediate_size"], c["hidden_size"], bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = LlamaAttention(c)
        self.mlp = LlamaMLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x):
        h = x + self.self_attn(self.input_layernorm(x))
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = LlamaModel(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, inputs_embeds):
        h = inputs_embeds
        for layer in self.model.layers:
            h = layer(h)
        return self.lm_head(self.model.norm(h))


# ----------------------------------------------------------------------------------------------- the model
class Blip2Like(nn.Module):
    """Blip2ForConditionalGeneration / InstructBlipForConditionalGeneration after the vision tower."""

    def __init__(self, config, with_text):
        super().__init__()
        qc = config["qformer_config"]
        self.query_tokens = nn.Parameter(torch.zeros(1, config["num_query_tokens"], qc["hidden_size"]))
        self.qformer = QFormerModel(qc, with_text)
        self.language_projection = nn.Linear(qc["hidden_size"], config["text_config"]["hidden_size"])
        self.language_model = LlamaForCausalLM(config["text_config"])

    def forward(self, image_embeds, input_ids, image_token_index, qformer_input_ids=None, qformer_attention_mask=None):
        b = image_embeds.shape[0]
        query_tokens = self.query_tokens.expand(b, -1, -1)
        mask = None
        if qformer_input_ids is not None:
            mask = torch.cat([torch.ones(query_tokens.shape[:-1]), qformer_attention_mask.float()], dim=1)
        out = self.qformer(query_tokens, image_embeds, qformer_input_ids, mask)
        query_output = out[:, : query_tokens.shape[1], :]
        language_model_inputs = self.language_projection(query_output)
        # HF (≥ 4.47): the placeholders' embeddings are overwritten in order (masked_scatter).
        safe_ids = torch.where(input_ids == image_token_index, torch.zeros_like(input_ids), input_ids)
        inputs_embeds = self.language_model.model.embed_tokens(safe_ids)
        special = (input_ids == image_token_index).unsqueeze(-1).expand_as(inputs_embeds)
        inputs_embeds = inputs_embeds.masked_scatter(special, language_model_inputs.reshape(-1))
        logits = self.language_model(inputs_embeds)
        return query_output, language_model_inputs, logits


def randomise(model, seed):
    """Every weight O(0.3) random, norm weights 1 ± 0.2, so a missing or misplaced term shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "LayerNorm.weight" in name or "layernorm.weight" in name or name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * noise)
            else:
                p.copy_(0.3 * noise)


def build(name, with_text):
    torch.manual_seed(0)
    qformer_config = {
        "hidden_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "cross_attention_frequency": 2,
        "encoder_hidden_size": 24,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "vocab_size": 40,
        "max_position_embeddings": 16,
        "pad_token_id": 0,
        "model_type": "instructblip_qformer" if with_text else "blip_2_qformer",
    }
    text_config = {
        "model_type": "llama",
        "vocab_size": 64,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "max_position_embeddings": 64,
        "tie_word_embeddings": False,
    }
    config = {
        "model_type": "instructblip" if with_text else "blip-2",
        "architectures": ["InstructBlipForConditionalGeneration" if with_text else "Blip2ForConditionalGeneration"],
        "num_query_tokens": 4,
        "image_token_index": 63,
        "qformer_config": qformer_config,
        "text_config": text_config,
        "vision_config": {"hidden_size": 24},
    }
    model = Blip2Like(config, with_text)
    randomise(model, 1 if with_text else 2)
    g = torch.Generator().manual_seed(3)
    image_embeds = torch.randn(2, 5, 24, generator=g)
    Q = config["num_query_tokens"]
    placeholder = config["image_token_index"]
    input_ids = torch.tensor(
        [
            [1, 7, *([placeholder] * Q), 9, 11, 13],
            [1, *([placeholder] * Q), 20, 21, 22, 23],
        ]
    )
    expected = {"image_embeds": image_embeds, "input_ids": input_ids}
    extra = {}
    if with_text:
        extra["qformer_input_ids"] = torch.tensor([[5, 17, 23, 8, 31, 2], [6, 9, 39, 12, 0, 0]])
        extra["qformer_attention_mask"] = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
        expected.update(extra)
    with torch.no_grad():
        query_output, language_model_inputs, logits = model(image_embeds, input_ids, placeholder, **extra)
    expected.update(
        {"query_output": query_output, "language_model_inputs": language_model_inputs, "logits": logits}
    )
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(out, "model.safetensors"), dict(model.state_dict()))
    save_safetensors(os.path.join(out, "expected.safetensors"), expected)
    print(f"{name}: query_output {tuple(query_output.shape)}, logits {tuple(logits.shape)} → {out}", file=sys.stderr)


if __name__ == "__main__":
    build("blip2", with_text=False)
    build("instructblip", with_text=True)
