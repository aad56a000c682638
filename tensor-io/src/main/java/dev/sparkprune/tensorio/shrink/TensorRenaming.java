package dev.sparkprune.tensorio.shrink;

import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Maps a source tensor to its {@link TensorSlice} under a plan, or to nothing when it goes:
 * blocks renumbered; q rows, k/v rows (and their biases), o columns and attention sinks of the
 * kept KV groups; gate/up rows and down columns of the kept MLP channels; router rows, router and
 * correction bias entries, renumbered tensors of the kept experts, or their rows of fused expert
 * tensors. Norms over one head (q_norm, k_norm of head_dim values), shared experts and tensors
 * outside the blocks are copied whole; multi-token-prediction layers go (see {@link
 * ModelShape#mtpBlocks}).
 */
final class TensorRenaming {
  private static final Pattern BLOCK = Pattern.compile("^(.*?\\blayers)\\.(\\d+)\\.(.+)$");
  private static final Pattern EXPERT = Pattern.compile("^(.+\\.experts)\\.(\\d+)\\.(.+)$");

  private final ShrinkPlan plan;
  private final ModelShape shape;

  TensorRenaming(ShrinkPlan plan) {
    this.plan = plan;
    this.shape = plan.source();
  }

  Optional<TensorSlice> slice(TensorInfo tensor) {
    Matcher block = BLOCK.matcher(tensor.name());
    if (!block.matches()) {
      return Optional.of(new TensorSlice(tensor, tensor.name(), new int[0], new int[0]));
    }
    int source = Integer.parseInt(block.group(2));
    if (source >= shape.blocks()) {
      // A multi-token-prediction layer: dropped with num_nextn_predict_layers set to 0.
      return Optional.empty();
    }
    int target = plan.newIndex(source);
    if (target < 0) {
      return Optional.empty();
    }
    KeptBlock kept = plan.blocks().get(target);
    String prefix = block.group(1) + "." + target + ".";
    String local = block.group(3);
    int[] none = new int[0];
    if (shape.moe().isPresent() && shape.isSparse(source)) {
      MixtureOfExperts moe = shape.moe().get();
      boolean routerBias = moe.routerBias().map(local::equals).orElse(false) || moe.correctionBias().map(local::equals).orElse(false);
      boolean fusedExperts = moe.fused() && (local.equals(moe.fusedGateUp()) || local.equals(moe.fusedGateUp() + "_bias")
          || local.equals(moe.fusedDown()) || local.equals(moe.fusedDown() + "_bias"));
      if (local.equals(moe.router() + ".weight") || routerBias || fusedExperts) {
        // Experts are the first dimension of the router's rows, its biases and fused expert tensors.
        int[] rows = kept.experts().length == moe.experts() ? none : kept.experts();
        return Optional.of(new TensorSlice(tensor, prefix + local, rows, none));
      }
      Matcher expert = EXPERT.matcher(local);
      if (expert.matches()) {
        int index = kept.expertIndex(Integer.parseInt(expert.group(2)));
        return index < 0
            ? Optional.empty()
            : Optional.of(new TensorSlice(tensor, prefix + expert.group(1) + "." + index + "." + expert.group(3), none, none));
      }
    }
    return Optional.of(sliceWithinBlock(tensor, prefix + local, local, kept));
  }

  private TensorSlice sliceWithinBlock(TensorInfo tensor, String target, String local, KeptBlock kept) {
    int[] none = new int[0];
    int[] qRows = headRows(kept.kvGroups(), shape.headsPerGroup());
    int[] kvRows = headRows(kept.kvGroups(), 1);
    boolean allGroups = kept.kvGroups().length == shape.kvHeads();
    boolean allChannels = kept.mlpChannels().length == shape.intermediate();
    switch (local) {
      case "self_attn.q_proj.weight":
      case "self_attn.q_proj.bias":
        return new TensorSlice(tensor, target, allGroups ? none : qRows, none);
      case "self_attn.k_proj.weight":
      case "self_attn.k_proj.bias":
      case "self_attn.v_proj.weight":
      case "self_attn.v_proj.bias":
        return new TensorSlice(tensor, target, allGroups ? none : kvRows, none);
      case "self_attn.o_proj.weight":
        return new TensorSlice(tensor, target, none, allGroups ? none : qRows);
      case "self_attn.sinks":
        return new TensorSlice(tensor, target, allGroups ? none : headRows(kept.kvGroups(), shape.headsPerGroup(), 1), none);
      case "self_attn.q_norm.weight":
      case "self_attn.k_norm.weight":
        ValidationException.check(
            tensor.numel() == shape.headDim(), "Cannot shrink %s: a norm over %d values, expected one head (%d)", tensor.name(), tensor.numel(), shape.headDim());
        return new TensorSlice(tensor, target, none, none);
      case "mlp.gate_proj.weight":
      case "mlp.gate_proj.bias":
      case "mlp.up_proj.weight":
      case "mlp.up_proj.bias":
        return new TensorSlice(tensor, target, allChannels ? none : kept.mlpChannels(), none);
      case "mlp.down_proj.weight":
        return new TensorSlice(tensor, target, none, allChannels ? none : kept.mlpChannels());
      default:
        return new TensorSlice(tensor, target, none, none);
    }
  }

  /** The rows of q (headsPerGroup heads per group) or of k/v (one head per group) of the kept groups. */
  private int[] headRows(int[] groups, int headsPerGroup) {
    return headRows(groups, headsPerGroup, shape.headDim());
  }

  /** The rows of the kept groups' heads, {@code rowsPerHead} each (head_dim, or 1 for one value per head). */
  private static int[] headRows(int[] groups, int headsPerGroup, int rowsPerHead) {
    int width = headsPerGroup * rowsPerHead;
    int[] rows = new int[groups.length * width];
    for (int g = 0; g < groups.length; g++) {
      for (int i = 0; i < width; i++) {
        rows[g * width + i] = groups[g] * width + i;
      }
    }
    return rows;
  }
}
