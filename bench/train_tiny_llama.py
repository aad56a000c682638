#!/usr/bin/env python3
"""Trains a small Llama (Hugging Face layout) on the TinyStories sample of ../shared, for the
shrink-repair figures of README's "Shrinking" section: a second model with real (trained)
structure besides stories260K. Not part of the build; recreate the model with

  python3 -m venv /work/venvs/tiny && /work/venvs/tiny/bin/pip install torch safetensors tokenizers
  nice -n 10 /work/venvs/tiny/bin/python bench/train_tiny_llama.py ../shared /work/models/tiny-llama-4m --minutes 45

README's second-model figures used a smaller one that trains (and evaluates) faster on 2 shared
cores, tiny-llama-1m (1,173,120 parameters):

  nice -n 10 /work/venvs/tiny/bin/python bench/train_tiny_llama.py ../shared /work/models/tiny-llama-1m --minutes 23 \
      --hidden 128 --layers 6 --heads 4 --kv-heads 2 --intermediate 352 --batch 8 --dropout 0.0 --warmup 30 --eval-every 50

The best checkpoint so far is written at every validation improvement (through a rename), so a
run killed before its budget ends still leaves a model. The schedule follows the wall-clock
budget, so runs on different machines (or loads) end at different checkpoints.

The model is a plain LlamaForCausalLM as transformers computes it (RMSNorm, rotate-half RoPE,
grouped-query attention, SwiGLU, tied embeddings) with stories260K's tokenizer (vocab 512), so
sparkprune and llama.cpp read it with no change. The eval protocol of README's shrink table
reads the first 200 windows of 256 tokens of the sample text: those tokens (and the next
12,800, the validation split used for early stopping) are never trained on.
"""
import argparse
import json
import math
import os
import shutil
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer

EVAL_TOKENS = 200 * 256
VALID_TOKENS = 12_800


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h, kv, hd, ff = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["intermediate_size"]
        self.h, self.kv, self.hd = h, kv, hd
        self.input_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.q_proj = nn.Linear(d, h * hd, bias=False)
        self.k_proj = nn.Linear(d, kv * hd, bias=False)
        self.v_proj = nn.Linear(d, kv * hd, bias=False)
        self.o_proj = nn.Linear(h * hd, d, bias=False)
        self.gate_proj = nn.Linear(d, ff, bias=False)
        self.up_proj = nn.Linear(d, ff, bias=False)
        self.down_proj = nn.Linear(ff, d, bias=False)

    def forward(self, x, cos, sin, dropout):
        b, t, _ = x.shape
        y = self.input_layernorm(x)
        q = self.q_proj(y).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.h // self.kv, dim=1)
        v = v.repeat_interleave(self.h // self.kv, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + F.dropout(self.o_proj(a.transpose(1, 2).reshape(b, t, -1)), dropout, self.training)
        y = self.post_attention_layernorm(x)
        return x + F.dropout(self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y)), dropout, self.training)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        hd = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.outer(torch.arange(c["max_position_embeddings"]).float(), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=c["initializer_range"])

    def forward(self, tokens, dropout=0.0):
        t = tokens.shape[1]
        x = self.embed_tokens(tokens)
        cos, sin = self.cos[:t], self.sin[:t]
        for layer in self.layers:
            x = layer(x, cos, sin, dropout)
        return self.norm(x) @ self.embed_tokens.weight.T


def windows_loss(model, ids, seqlen, batch=16):
    """Mean next-token NLL over consecutive windows, as sparkprune's perplexity protocol."""
    model.eval()
    n = len(ids) // seqlen
    total = 0.0
    with torch.no_grad():
        for first in range(0, n, batch):
            x = torch.stack([ids[(first + i) * seqlen:(first + i + 1) * seqlen] for i in range(min(batch, n - first))])
            logits = model(x)
            total += F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none").view(x.shape[0], -1).mean(1).sum().item()
    model.train()
    return total / n


def hf_state(model):
    state = {"model.embed_tokens.weight": model.embed_tokens.weight, "model.norm.weight": model.norm.weight}
    for i, layer in enumerate(model.layers):
        p = f"model.layers.{i}."
        state[p + "input_layernorm.weight"] = layer.input_layernorm.weight
        state[p + "post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            state[p + "self_attn." + name + ".weight"] = getattr(layer, name).weight
        for name in ("gate_proj", "up_proj", "down_proj"):
            state[p + "mlp." + name + ".weight"] = getattr(layer, name).weight
    return {k: v.detach().contiguous().clone() for k, v in state.items()}


def save_model(out, model_dir, config, state):
    """Writes the checkpoint in Hugging Face layout; the weights go through a temporary file and a
    rename, so a kill mid-write leaves the previous checkpoint whole."""
    os.makedirs(out, exist_ok=True)
    partial = os.path.join(out, "model.safetensors.partial")
    save_file(state, partial, metadata={"format": "pt"})
    os.replace(partial, os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        if os.path.exists(os.path.join(model_dir, name)):
            shutil.copy(os.path.join(model_dir, name), os.path.join(out, name))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("shared")
    parser.add_argument("out")
    parser.add_argument("--minutes", type=float, default=45)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=688)
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    model_dir = os.path.join(args.shared, "data", "stories260K")
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(args.shared, "data", "tinystories", "tinystories_val_sample.txt")) as f:
        ids = torch.tensor(tokenizer.encode(f.read()).ids, dtype=torch.long)
    valid = ids[EVAL_TOKENS:EVAL_TOKENS + VALID_TOKENS]
    train = ids[EVAL_TOKENS + VALID_TOKENS:]
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": args.hidden,
        "intermediate_size": args.intermediate, "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads, "head_dim": args.hidden // args.heads, "vocab_size": tokenizer.get_vocab_size(),
        "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": True,
        "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02, "torch_dtype": "float32", "use_cache": True,
    }
    model = Llama(config)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    print(f"params {params:,}; train {len(train):,} tokens, valid {len(valid):,}", flush=True)

    budget = args.minutes * 60
    start = time.time()
    generator = torch.Generator().manual_seed(args.seed)
    best = (float("inf"), None, 0)
    step = 0
    warmup = args.warmup
    while time.time() - start < budget:
        # Cosine schedule over the time budget, so a slower machine still ends at a low rate.
        progress = min(1.0, (time.time() - start) / budget)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(train) - args.seqlen, (args.batch,), generator=generator)
        x = torch.stack([train[s:s + args.seqlen] for s in starts])
        logits = model(x, args.dropout)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % args.eval_every == 0 or time.time() - start >= budget:
            v = windows_loss(model, valid, args.seqlen)
            if v < best[0]:
                best = (v, hf_state(model), step)
                # Written at every improvement, not only at the end: a run killed past its
                # budget (or by a shared machine's scheduler) still leaves its best checkpoint.
                save_model(args.out, model_dir, config, best[1])
            print(f"step {step} ({time.time() - start:.0f} s) lr {lr:.2e} train {loss.item():.4f} valid {v:.4f} (ppl {math.exp(v):.3f})", flush=True)

    model.load_state_dict({k.removeprefix("model.").replace("self_attn.", "").replace("mlp.", ""): v for k, v in best[1].items()})
    eval_ids = ids[:EVAL_TOKENS]
    print(f"best valid step {best[2]}: ppl {math.exp(best[0]):.4f}; eval windows (200 x 256) ppl {math.exp(windows_loss(model, eval_ids, args.seqlen)):.4f}", flush=True)


if __name__ == "__main__":
    main()
