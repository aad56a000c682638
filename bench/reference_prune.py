"""Single-process reference for `sparkprune bench reference`: sequential Wanda or SparseGPT on a
Llama-architecture safetensors archive, the way locuslab/wanda's prune_wanda and prune_sparsegpt
do it (Sun et al. 2023; Frantar & Alistarh 2023), on the CPU in float32.

Per block: forward hooks on every linear collect Wanda's input norms (WrappedGPT.add_batch) or
SparseGPT's Hessian (SparseGPT.add_batch) while the calibration samples go through the dense
block one at a time; every linear is pruned; the samples go through the pruned block again to
give the next block's inputs. Calibration is the pre-tokenized JSONL the Java side wrote
({"input_ids": [...]} per line), so both runs see the same tokens.

Prints one JSON line: load, per-block and save seconds, the total wall time and the CPU time
of all the process's threads (robust to other load on the machine).
Needs torch, safetensors, numpy (bin/setup-bench-reference makes the venv).
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


class Block(torch.nn.Module):
    """One LlamaDecoderLayer as Hugging Face computes it: RMSNorm, rotate-half RoPE, GQA, SwiGLU."""

    def __init__(self, config, tensors, prefix):
        super().__init__()
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads", self.heads)
        self.head_dim = config.get("head_dim", self.hidden // self.heads)
        self.eps = config.get("rms_norm_eps", 1e-6)
        self.input_layernorm = tensors[prefix + "input_layernorm.weight"]
        self.post_attention_layernorm = tensors[prefix + "post_attention_layernorm.weight"]
        self.linears = {}
        for name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            weight = tensors[prefix + name + ".weight"]
            linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
            linear.weight.data = weight
            self.add_module(name.replace(".", "_"), linear)
            self.linears[name] = linear

    def rms_norm(self, x, weight):
        variance = x.pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(variance + self.eps))

    def forward(self, h, cos, sin):
        length = h.shape[1]
        x = self.rms_norm(h, self.input_layernorm)
        q = self.linears["self_attn.q_proj"](x).view(1, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.linears["self_attn.k_proj"](x).view(1, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.linears["self_attn.v_proj"](x).view(1, length, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        groups = self.heads // self.kv_heads
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        attention = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        attention = attention.transpose(1, 2).reshape(1, length, self.heads * self.head_dim)
        h = h + self.linears["self_attn.o_proj"](attention)
        x = self.rms_norm(h, self.post_attention_layernorm)
        gate = F.silu(self.linears["mlp.gate_proj"](x)) * self.linears["mlp.up_proj"](x)
        return h + self.linears["mlp.down_proj"](gate)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(config, head_dim, length):
    theta = config.get("rope_theta", 10000.0)
    inverse_frequency = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    frequencies = torch.outer(torch.arange(length).float(), inverse_frequency)
    angles = torch.cat((frequencies, frequencies), dim=-1)
    return angles.cos()[None, None], angles.sin()[None, None]


class WandaStatistics:
    """WrappedGPT: scaler_row = running sum over tokens of x_j^2, divided by the samples seen."""

    def __init__(self, linear):
        self.scaler_row = torch.zeros(linear.weight.shape[1])
        self.nsamples = 0

    def add_batch(self, inp):
        batch = inp.shape[0]
        inp = inp.reshape(-1, inp.shape[-1]).t().float()
        self.scaler_row *= self.nsamples / (self.nsamples + batch)
        self.nsamples += batch
        self.scaler_row += torch.norm(inp, p=2, dim=1) ** 2 / self.nsamples

    def prune(self, linear, sparsity):
        metric = torch.abs(linear.weight.data) * torch.sqrt(self.scaler_row.reshape((1, -1)))
        mask = torch.zeros_like(metric, dtype=torch.bool)
        indices = torch.sort(metric, dim=-1, stable=True)[1][:, : int(metric.shape[1] * sparsity)]
        mask.scatter_(1, indices, True)
        linear.weight.data[mask] = 0


class SparseGptStatistics:
    """SparseGPT: H = 2 / samples * X^T X, kept as a running mean; fasterprune with blocksize 128."""

    def __init__(self, linear):
        columns = linear.weight.shape[1]
        self.H = torch.zeros((columns, columns))
        self.nsamples = 0

    def add_batch(self, inp):
        batch = inp.shape[0]
        inp = inp.reshape(-1, inp.shape[-1]).t().float()
        self.H *= self.nsamples / (self.nsamples + batch)
        self.nsamples += batch
        inp = math.sqrt(2 / self.nsamples) * inp
        self.H += inp.matmul(inp.t())

    def prune(self, linear, sparsity, blocksize=128, percdamp=0.01):
        W = linear.weight.data.clone().float()
        columns = W.shape[1]
        H = self.H
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        damp = percdamp * torch.mean(torch.diag(H))
        diagonal = torch.arange(columns)
        H[diagonal, diagonal] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        Hinv = torch.linalg.cholesky(H, upper=True)
        for i1 in range(0, columns, blocksize):
            i2 = min(i1 + blocksize, columns)
            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            scores = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            threshold = torch.sort(scores.flatten())[0][int(scores.numel() * sparsity)]
            mask1 = scores <= threshold
            for i in range(i2 - i1):
                w = W1[:, i]
                d = Hinv1[i, i]
                q = w.clone()
                q[mask1[:, i]] = 0
                Q1[:, i] = q
                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1
            W[:, i1:i2] = Q1
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        linear.weight.data = W


def load_tensors(model):
    index = os.path.join(model, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    tensors = {}
    for shard in shards:
        for name, tensor in load_file(os.path.join(model, shard)).items():
            tensors[name] = tensor.float()
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--calib", required=True, help="JSONL with one input_ids list per line")
    parser.add_argument("--method", choices=("wanda", "sparsegpt"), required=True)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--out", required=True, help="where the pruned weights are saved (model.safetensors)")
    parser.add_argument("--compare", help="a pruned archive (sparkprune's model/) whose zeros are compared with ours, untimed")
    args = parser.parse_args()

    start = time.perf_counter()
    cpu_start = time.process_time()
    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    with open(args.calib) as f:
        samples = [json.loads(line)["input_ids"] for line in f if line.strip()]
    ids = torch.tensor(samples, dtype=torch.int64)
    tensors = load_tensors(args.model)
    load_seconds = time.perf_counter() - start

    blocks = []
    with torch.no_grad():
        prefix = "model."
        inps = [tensors[prefix + "embed_tokens.weight"][ids[j]].unsqueeze(0) for j in range(len(samples))]
        outs = [None] * len(samples)
        for b in range(config["num_hidden_layers"]):
            block_start = time.perf_counter()
            layer = Block(config, tensors, prefix + "layers.%d." % b)
            cos, sin = rope_tables(config, layer.head_dim, ids.shape[1])
            kind = WandaStatistics if args.method == "wanda" else SparseGptStatistics
            wrapped = {name: kind(linear) for name, linear in layer.linears.items()}
            handles = [linear.register_forward_hook(lambda _m, inp, _out, s=wrapped[name]: s.add_batch(inp[0].data))
                       for name, linear in layer.linears.items()]
            for j in range(len(samples)):
                outs[j] = layer(inps[j], cos, sin)
            for handle in handles:
                handle.remove()
            for name, linear in layer.linears.items():
                wrapped[name].prune(linear, args.sparsity)
                tensors[prefix + "layers.%d.%s.weight" % (b, name)] = linear.weight.data
            del wrapped
            for j in range(len(samples)):
                outs[j] = layer(inps[j], cos, sin)
            inps, outs = outs, inps
            blocks.append(time.perf_counter() - block_start)

    save_start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, os.path.join(args.out, "model.safetensors"))
    end = time.perf_counter()
    report = {
        "method": args.method, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "samples": len(samples), "seqlen": ids.shape[1], "seconds_load": load_seconds,
        "blocks": blocks, "seconds_save": end - save_start, "seconds_total": end - start,
        "cpu_seconds": time.process_time() - cpu_start,
    }
    if args.compare:
        report.update(mask_agreement(tensors, load_tensors(args.compare), config["num_hidden_layers"]))
    print(json.dumps(report))


def mask_agreement(ours, theirs, blocks):
    """Share of pruned-linear weights where both archives agree on zero / non-zero."""
    agree, total, lowest = 0, 0, 1.0
    for name, tensor in ours.items():
        if ".layers." not in name or not name.endswith("_proj.weight"):
            continue
        same = ((tensor == 0) == (theirs[name] == 0)).sum().item()
        agree += same
        total += tensor.numel()
        lowest = min(lowest, same / tensor.numel())
    return {"mask_agreement": agree / total, "mask_agreement_min": lowest}


if __name__ == "__main__":
    main()
