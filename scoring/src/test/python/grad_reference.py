"""Autograd references for sparkprune's backward pass and gradient-aware pruning scores.

Usage: grad_reference.py OUT_DIR SHARED_DIR

For each model below, Hugging Face transformers' own modeling code runs in float64 (eager
attention) and torch.autograd gives, per calibration sequence, the loss (mean causal-LM
cross-entropy over the shifted tokens, labels = input_ids) and dLoss/dW of every weight matrix of
the decoder blocks, written as OUT_DIR/<name>.safetensors under the archive's tensor names
(MoE experts that transformers fuses are split back). Models: the architecture fixtures of
SHARED_DIR/fixtures/models, stories260K, and small random models of the families without a
fixture (mistral, qwen2 with q/k/v biases, gpt2, opt, gpt_neox), saved with save_pretrained into
OUT_DIR/models/<name>/ for the Java side to open.

For stories260K it also writes OUT_DIR/stories260K-scores.safetensors: over 8 sequences of 128
tokens, G = sqrt(sum_s (100 g_s)^2) per weight (GBLM-Pruner's l2 gradient, accumulated in float64
here) and Wanda's scaler_row (sum over tokens of x^2 / sequences, from forward hooks of the dense
model), and the masks of GBLM (|W| sqrt(scaler_row) + |W| G) and Pruner-Zero (|W|^2 mms(G)) at 50%
per row and 2:4, computed in float32 from float32-rounded inputs as the authors' scripts do.
"""

import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM

torch.manual_seed(0)
OUT = sys.argv[1]
SHARED = sys.argv[2]
FIXTURES = ["llama", "qwen3", "gemma2", "gemma3", "phi3", "mixtral", "qwen2_moe", "qwen3_moe"]


def checkpoint(path):
    tensors = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors") and name != "golden.safetensors":
            with safe_open(os.path.join(path, name), "np") as f:
                for key in f.keys():
                    tensors[key] = f.get_tensor(key)
    return tensors


def load(path):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64, attn_implementation="eager", experts_implementation="eager")
    model.train(False)
    return model


def expert_names(stored, block, param):
    """Archive names of a fused expert parameter's slices: [(name, expert, row slice)]."""
    prefix = f"model.layers.{block}."
    for module, projections in (("block_sparse_moe", ("w1", "w3", "w2")), ("mlp", ("gate_proj", "up_proj", "down_proj"))):
        probe = f"{prefix}{module}.experts.0.{projections[0]}.weight"
        if probe in stored:
            return module, projections
    raise KeyError(f"no expert tensors for block {block}")


def weight_gradients(model, stored):
    """dLoss/dW of every 2-D weight in the decoder blocks, keyed by archive tensor name."""
    out = {}
    for name, param in model.named_parameters():
        if param.grad is None or ".layers." not in name and ".h." not in name:
            continue
        grad = param.grad.detach().numpy()
        if name in stored and param.dim() == 2:
            # GPT-2's Conv1D keeps [in, out]; sparkprune reports every gradient as [out, in].
            conv1d = type(model.get_submodule(name.rsplit(".", 1)[0])).__name__ == "Conv1D"
            out[name] = grad.T.copy() if conv1d else grad.copy()
        elif name.endswith("mlp.experts.gate_up_proj") or name.endswith("mlp.experts.down_proj"):
            block = int(name.split(".layers.")[1].split(".")[0])
            module, projections = expert_names(stored, block, name)
            values = param.detach().numpy()
            for e in range(param.shape[0]):
                base = f"model.layers.{block}.{module}.experts.{e}."
                if name.endswith("gate_up_proj"):
                    half = param.shape[1] // 2
                    parts = ((projections[0], slice(0, half)), (projections[1], slice(half, 2 * half)))
                else:
                    parts = ((projections[2], slice(0, param.shape[1])),)
                for projection, rows in parts:
                    key = base + projection + ".weight"
                    # The fused layout is an assumption about transformers' loader: check it on the values.
                    assert np.array_equal(values[e][rows], stored[key].astype(np.float64)), key
                    out[key] = grad[e][rows].copy()
        elif name.endswith("mlp.gate.weight") and name.replace("mlp.gate", "block_sparse_moe.gate") in stored:
            out[name.replace("mlp.gate", "block_sparse_moe.gate")] = grad.copy()
    return out


def per_sequence(model, stored, tokens):
    """Loss and weight gradients of each sequence alone (batch of one), in float64."""
    result = {"tokens": np.asarray(tokens, dtype=np.int32), "loss": np.zeros(len(tokens))}
    for s, sequence in enumerate(tokens):
        model.zero_grad(set_to_none=True)
        ids = torch.tensor([sequence])
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        result["loss"][s] = loss.item()
        for name, grad in weight_gradients(model, stored).items():
            result[f"grad.{s}.{name}"] = grad
    return result


def fixture_tokens(path):
    with safe_open(os.path.join(path, "golden.safetensors"), "np") as f:
        golden = f.get_tensor("tokens").tolist()
    # The golden sequence and its reverse: two samples, so accumulation over samples is checked.
    return [golden, golden[::-1]]


def write(name, tensors):
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.path.join(OUT, name + ".safetensors"))


def check_golden(model, path, name):
    with safe_open(os.path.join(path, "golden.safetensors"), "np") as f:
        tokens = torch.tensor([f.get_tensor("tokens").tolist()])
        expected = f.get_tensor("logits")
    with torch.no_grad():
        logits = model(input_ids=tokens).logits[0].numpy()
    error = np.abs(logits - expected).max()
    assert error < 1e-4, f"{name}: transformers' float64 logits differ from the golden by {error}"


def random_models():
    base = dict(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, initializer_range=0.2, max_position_embeddings=256)
    configs = {
        "mistral": dict(model_type="mistral", intermediate_size=96, num_key_value_heads=2, sliding_window=None, head_dim=16),
        "qwen2": dict(model_type="qwen2", intermediate_size=96, num_key_value_heads=2),
        "gpt2": dict(model_type="gpt2", n_embd=64, n_layer=2, n_head=4, n_positions=256, activation_function="gelu_new"),
        "opt": dict(model_type="opt", ffn_dim=128, do_layer_norm_before=True, word_embed_proj_dim=64, init_std=0.2),
        "gpt_neox": dict(model_type="gpt_neox", intermediate_size=128, rotary_pct=0.25, use_parallel_residual=True),
    }
    for name, extra in configs.items():
        settings = dict(base)
        settings.update(extra)
        model_type = settings.pop("model_type")
        config = AutoConfig.for_model(model_type, **settings)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        if name == "gpt_neox":
            # Random LayerNorm weights and biases, so their gradients are no special case.
            with torch.no_grad():
                for param_name, param in model.named_parameters():
                    if "layernorm" in param_name or "layer_norm" in param_name:
                        param.add_(0.1 * torch.randn_like(param))
        path = os.path.join(OUT, "models", name)
        model.save_pretrained(path, safe_serialization=True)
        legacy_rope_keys(os.path.join(path, "config.json"))
        yield name, path


def legacy_rope_keys(path):
    """Adds the top-level rope keys of transformers 4 configs (rope_theta, rotary_pct) that
    transformers 5 moves into rope_parameters, so both readers see the same model."""
    with open(path) as f:
        config = json.load(f)
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:
        config.setdefault("rope_theta", rope["rope_theta"])
        config.setdefault("rotary_emb_base", rope["rope_theta"])
    if "partial_rotary_factor" in rope:
        config.setdefault("rotary_pct", rope["partial_rotary_factor"])
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def stories_tokens(shared, sequences, length):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(shared, "data/stories260K/tokenizer.json"))
    with open(os.path.join(shared, "data/tinystories/tinystories_val_sample.txt"), encoding="utf-8") as f:
        text = f.read()
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    return [[1] + ids[s * (length - 1):(s + 1) * (length - 1)] for s in range(sequences)]


def stories_scores(model, stored, tokens):
    """GBLM's G and Wanda's scaler_row over the sequences, and the authors' masks from them."""
    sums = {}
    for sequence in tokens:
        model.zero_grad(set_to_none=True)
        ids = torch.tensor([sequence])
        model(input_ids=ids, labels=ids).loss.backward()
        for name, grad in weight_gradients(model, stored).items():
            sums[name] = sums.get(name, 0) + (100.0 * grad) ** 2
    inputs = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in name:
            def hook(_, args, __, key=name + ".weight"):
                x = args[0].reshape(-1, args[0].shape[-1])
                inputs[key] = inputs.get(key, 0) + (x ** 2).sum(dim=0).numpy()
            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        for sequence in tokens:
            model(input_ids=torch.tensor([sequence]))
    for h in hooks:
        h.remove()
    out = {"tokens": np.asarray(tokens, dtype=np.int32)}
    for name in sorted(sums):
        w = stored[name].astype(np.float32)
        g = np.sqrt(sums[name]).astype(np.float32)
        scaler = (inputs[name] / len(tokens)).astype(np.float32)
        out["g_l2." + name] = g
        out["scaler_row." + name] = scaler
        wt, gt, st = torch.from_numpy(w), torch.from_numpy(g), torch.from_numpy(scaler)
        # GBLM-Pruner lib/prune.py prune_gblm, in float32: |W| sqrt(scaler_row) + |W| |G|.
        gblm = torch.abs(wt) * torch.sqrt(st.reshape(1, -1)) + torch.abs(wt) * torch.abs(gt)
        # Pruner-Zero data/best_tree.json: mul(abs(mul(W, W)), mms(G)) with W = |weight|.
        a = torch.abs(wt)
        prunerzero = torch.abs(a * a) * ((gt - gt.min()) / (gt.max() - gt.min()))
        for method, score in (("gblm", gblm), ("prunerzero", prunerzero)):
            out[f"{method}_u50_mask.{name}"] = row_mask(score, 0.5)
            out[f"{method}_2of4_mask.{name}"] = n_of_m_mask(score, 2, 4)
    return out


def row_mask(score, ratio):
    """1 = pruned: the floor(cols * ratio) lowest of each row by a stable ascending sort."""
    mask = torch.zeros_like(score, dtype=torch.bool)
    indices = torch.sort(score, dim=-1, stable=True)[1][:, : int(score.shape[1] * ratio)]
    mask.scatter_(1, indices, True)
    return mask.numpy().astype(np.uint8)


def n_of_m_mask(score, n, m):
    """1 = pruned: the n lowest of every m consecutive columns (lower column first on ties)."""
    mask = torch.zeros_like(score, dtype=torch.bool)
    for start in range(0, score.shape[1], m):
        order = torch.sort(score[:, start:start + m], dim=1, stable=True)[1][:, :n]
        mask.scatter_(1, start + order, True)
    return mask.numpy().astype(np.uint8)


def main():
    os.makedirs(os.path.join(OUT, "models"), exist_ok=True)
    written = []
    for name in FIXTURES:
        path = os.path.join(SHARED, "fixtures/models", name)
        model = load(path)
        check_golden(model, path, name)
        write(name, per_sequence(model, checkpoint(path), fixture_tokens(path)))
        written.append(name)
    for name, path in random_models():
        model = load(path)
        generator = np.random.default_rng(len(name))
        tokens = generator.integers(0, 512, size=(2, 48)).tolist()
        write(name, per_sequence(model, checkpoint(path), tokens))
        written.append(name)
    stories = os.path.join(SHARED, "data/stories260K")
    model = load(stories)
    stored = checkpoint(stories)
    write("stories260K", per_sequence(model, stored, stories_tokens(SHARED, 2, 128)))
    write("stories260K-scores", stories_scores(model, stored, stories_tokens(SHARED, 8, 128)))
    written.append("stories260K")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"torch": torch.__version__, "models": written}, f)
    print("torch reference:", len(written), "models written to", OUT)


if __name__ == "__main__":
    main()
