package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.HalfFloats;
import dev.sparkprune.tensorio.arch.GemmaConfig;
import dev.sparkprune.tensorio.arch.Linear;
import java.io.IOException;
import java.util.List;

/**
 * Gemma-2 and Gemma-3 (text) as Hugging Face's modeling code computes them: embeddings times
 * sqrt(hidden) rounded to the embedding's dtype, (1 + w) RMSNorms around attention and MLP,
 * scores scaled by query_pre_attn_scalar^-0.5 and optionally tanh soft-capped, sliding-window
 * layers, gelu_pytorch_tanh gated MLP, soft-capped final logits. Gemma-3 adds per-head q/k
 * norms before RoPE and rotates its sliding layers with rope_local_base_freq, unscaled.
 */
final class GemmaModel extends BaseDecoderModel {
  final GemmaConfig gemma;
  final String bodyPrefix;
  private final float embedScale;
  final Rope globalRope;
  final Rope localRope;

  private GemmaModel(ArchiveWeights weights, LinearAlgebra linalg, GemmaConfig gemma) {
    super(weights, linalg, gemma.vocab(), gemma.maxPositions());
    this.gemma = gemma;
    String firstLinear = layout.blocks().get(0).linears().get(0).tensorName();
    this.bodyPrefix = firstLinear.substring(0, firstLinear.indexOf("layers.0."));
    this.embedScale = roundTo(weights.archive().tensor(bodyPrefix + "embed_tokens.weight").dtype(), Math.sqrt(gemma.hidden()));
    int headDim = gemma.headDim();
    this.globalRope = new Rope(gemma.decoder(), gemma.ropeTheta(), true, headDim, headDim, gemma.maxPositions());
    this.localRope = gemma.gemma3() ? new Rope(gemma.decoder(), gemma.localRopeTheta(), false, headDim, headDim, gemma.maxPositions()) : globalRope;
  }

  static GemmaModel open(ArchiveWeights weights, LinearAlgebra linalg) {
    return new GemmaModel(weights, linalg, GemmaConfig.resolve(config(weights)));
  }

  /** Hugging Face builds the normalizer as a tensor of the hidden states' (the embedding's) dtype. */
  static float roundTo(DType dtype, double value) {
    switch (dtype) {
      case BF16:
        return HalfFloats.bf16ToFloat(HalfFloats.floatToBf16((float) value));
      case F16:
        return HalfFloats.f16ToFloat(HalfFloats.floatToF16((float) value));
      default:
        return (float) value;
    }
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    float[] values = lookup(tokens, weights.cached(bodyPrefix + "embed_tokens.weight"), gemma.hidden());
    for (int i = 0; i < values.length; i++) {
      values[i] *= embedScale;
    }
    return new HiddenStates(tokens.length, tokens[0].length, gemma.hidden(), values);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, bodyPrefix + "layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    int sequences = input.sequences();
    int hidden = gemma.hidden();
    String block = bodyPrefix + "layers." + w.block() + ".";
    List<Linear> linears = layout.blocks().get(w.block()).linears();
    Linear qProj = linears.get(0);
    Linear kProj = linears.get(1);
    Linear vProj = linears.get(2);
    Linear oProj = linears.get(3);
    float[] h = input.values().clone();

    float[] x = norm(w, block + "input_layernorm", h, tokens, hidden);
    hook.accept(List.of(qProj, kProj, vProj), x, tokens, sequences);
    float[] q = Fused.apply(linalg, w, qProj, x, tokens);
    float[] k = Fused.apply(linalg, w, kProj, x, tokens);
    float[] v = Fused.apply(linalg, w, vProj, x, tokens);
    if (gemma.gemma3()) {
      q = norm(w, block + "self_attn.q_norm", q, tokens * gemma.heads(), gemma.headDim());
      k = norm(w, block + "self_attn.k_norm", k, tokens * gemma.kvHeads(), gemma.headDim());
    }
    boolean sliding = gemma.sliding(w.block());
    Rope rope = sliding ? localRope : globalRope;
    rope.apply(q, sequences, input.length(), gemma.heads());
    rope.apply(k, sequences, input.length(), gemma.kvHeads());
    AttentionShape shape = new AttentionShape(
        (float) Math.pow(gemma.queryPreAttnScalar(), -0.5), gemma.attentionSoftcap(), sliding ? gemma.slidingWindow() : 0);
    float[] attention = Layers.attention(linalg, q, k, v, sequences, input.length(), gemma.heads(), gemma.kvHeads(), gemma.headDim(), shape);
    hook.accept(List.of(oProj), attention, tokens, sequences);
    Layers.addInPlace(h, norm(w, block + "post_attention_layernorm", Fused.apply(linalg, w, oProj, attention, tokens), tokens, hidden));

    x = norm(w, block + "pre_feedforward_layernorm", h, tokens, hidden);
    hook.accept(List.of(linears.get(4), linears.get(5)), x, tokens, sequences);
    float[] gate = Fused.apply(linalg, w, linears.get(4), x, tokens);
    float[] up = Fused.apply(linalg, w, linears.get(5), x, tokens);
    for (int i = 0; i < gate.length; i++) {
      gate[i] = Layers.geluTanh(gate[i]) * up[i];
    }
    hook.accept(List.of(linears.get(6)), gate, tokens, sequences);
    Layers.addInPlace(h, norm(w, block + "post_feedforward_layernorm", Fused.apply(linalg, w, linears.get(6), gate, tokens), tokens, hidden));
    return new HiddenStates(sequences, input.length(), hidden, h);
  }

  /** Gemma's RMSNorm over rows of {@code width}: x / rms(x) * (1 + w). */
  private float[] norm(BlockWeights w, String name, float[] x, int rows, int width) {
    return Layers.rmsNorm(x, rows, width, Layers.onePlus(w.tensor(name + ".weight")), gemma.eps());
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    HiddenStates one = hiddenStates.slice(sequence, 1);
    float[] finalNorm = Layers.onePlus(weights.cached(bodyPrefix + "norm.weight"));
    float[] x = Layers.rmsNorm(one.values(), one.tokens(), gemma.hidden(), finalNorm, gemma.eps());
    float[] head = weights.cached(weights.contains("lm_head.weight") ? "lm_head.weight" : bodyPrefix + "embed_tokens.weight");
    float[] logits = Layers.linear(linalg, x, one.tokens(), gemma.hidden(), head, vocabSize(), null);
    if (gemma.finalSoftcap() > 0) {
      Layers.softcap(logits, 0, logits.length, gemma.finalSoftcap());
    }
    return logits;
  }
}
