package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.DecoderShape;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.List;

/**
 * Phi-3 as Hugging Face's Phi3Model: RMSNorm, fused qkv_proj whose output columns are
 * [q | k | v], partial rotary on the first partial_rotary_factor of each head (default or
 * longrope rope_scaling), grouped-query attention with an optional sliding window over every
 * layer, fused gate_up_proj [gate | up] with up * silu(gate), tied or separate head.
 */
final class Phi3Model extends BaseDecoderModel {
  final DecoderShape shape;
  final double eps;
  final Rope rope;
  final AttentionShape attentionShape;

  Phi3Model(ArchiveWeights weights, LinearAlgebra linalg) {
    super(weights, linalg, config(weights).requireInt("vocab_size"), config(weights).optionalInt("max_position_embeddings").orElse(4096));
    ModelConfig config = config(weights);
    this.shape = DecoderShape.of(config);
    this.eps = config.doubleValue("rms_norm_eps", 1e-5);
    int rotaryDim = (int) (shape.headDim() * config.doubleValue("partial_rotary_factor", 1.0));
    this.rope = new Rope(config, shape.headDim(), rotaryDim, maxPositions());
    // Hugging Face masks with a sliding window on every layer when sliding_window is set.
    this.attentionShape = new AttentionShape(AttentionShape.causal(shape.headDim()).scale(), 0, config.optionalInt("sliding_window").orElse(0));
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    float[] values = lookup(tokens, weights.cached("model.embed_tokens.weight"), shape.hidden());
    return new HiddenStates(tokens.length, tokens[0].length, shape.hidden(), values);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, "model.layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    int sequences = input.sequences();
    int hidden = shape.hidden();
    int heads = shape.heads();
    int kvHeads = shape.kvHeads();
    int headDim = shape.headDim();
    String block = "model.layers." + w.block() + ".";
    List<Linear> linears = layout.blocks().get(w.block()).linears();
    float[] h = input.values().clone();

    float[] x = Layers.rmsNorm(h, tokens, hidden, w.tensor(block + "input_layernorm.weight"), eps);
    hook.accept(List.of(linears.get(0)), x, tokens, sequences);
    float[][] qkv = Fused.splitWidths(Fused.apply(linalg, w, linears.get(0), x, tokens), tokens, heads * headDim, kvHeads * headDim, kvHeads * headDim);
    rope.apply(qkv[0], sequences, input.length(), heads);
    rope.apply(qkv[1], sequences, input.length(), kvHeads);
    float[] attention = Layers.attention(linalg, qkv[0], qkv[1], qkv[2], sequences, input.length(), heads, kvHeads, headDim, attentionShape);
    hook.accept(List.of(linears.get(1)), attention, tokens, sequences);
    Layers.addInPlace(h, Fused.apply(linalg, w, linears.get(1), attention, tokens));

    x = Layers.rmsNorm(h, tokens, hidden, w.tensor(block + "post_attention_layernorm.weight"), eps);
    hook.accept(List.of(linears.get(2)), x, tokens, sequences);
    float[][] gateUp = Fused.splitWidths(Fused.apply(linalg, w, linears.get(2), x, tokens), tokens, shape.intermediate(), shape.intermediate());
    float[] gate = gateUp[0];
    for (int i = 0; i < gate.length; i++) {
      gate[i] = gateUp[1][i] * Layers.silu(gate[i]);
    }
    hook.accept(List.of(linears.get(3)), gate, tokens, sequences);
    Layers.addInPlace(h, Fused.apply(linalg, w, linears.get(3), gate, tokens));
    return new HiddenStates(sequences, input.length(), hidden, h);
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    HiddenStates one = hiddenStates.slice(sequence, 1);
    float[] x = Layers.rmsNorm(one.values(), one.tokens(), shape.hidden(), weights.cached("model.norm.weight"), eps);
    float[] head = weights.cached(weights.contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight");
    return Layers.linear(linalg, x, one.tokens(), shape.hidden(), head, vocabSize(), null);
  }
}
