package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;

/**
 * Grouped-query attention's head layout: query head h reads KV head h / (heads / kvHeads), as
 * Hugging Face's repeat_kv lays them out, so a KV group is a run of heads / kvHeads query heads.
 */
public record AttentionGroups(int heads, int kvHeads, int headDim) implements Serializable {
  public AttentionGroups {
    ValidationException.check(heads >= 1 && kvHeads >= 1 && headDim >= 1, "Invalid attention: %d heads, %d KV heads, head_dim %d", heads, kvHeads, headDim);
    ValidationException.check(
        heads % kvHeads == 0,
        "Cannot shrink attention heads: num_attention_heads %d is not divisible into num_key_value_heads %d groups",
        heads, kvHeads);
  }

  public int headsPerGroup() {
    return heads / kvHeads;
  }

  /** The KV group of o_proj input column (or q_proj output row) c. */
  public int groupOfColumn(int column) {
    return column / headDim / headsPerGroup();
  }
}
