package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.DeepseekConfig;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * DeepSeek-V3 (Kimi-K2, Moonlight) as transformers' DeepseekV3ForCausalLM computes it:
 * multi-head latent attention, where each head's query is [q_nope | q_rope] from q_proj (or
 * q_b_proj(norm(q_a_proj x))), its key is [k_nope | k_rope] with k_nope and the value from
 * kv_b_proj(norm(latent)) and one rope key shared by all heads, rope (interleaved, yarn) only on
 * the rope parts, scores scaled by qk_head_dim^-0.5 times yarn's mscale^2; SwiGLU MLPs before
 * first_k_dense_replace, then a sigmoid group-limited {@link MoeBlock} with shared experts. The
 * multi-token-prediction layers stay unrun.
 */
final class DeepseekV3Model extends BaseDecoderModel {
  private final DeepseekConfig mla;
  private final MixtureOfExperts moe;
  private final double eps;
  private final Rope rope;
  private final AttentionShape attentionShape;

  DeepseekV3Model(ArchiveWeights weights, LinearAlgebra linalg) {
    super(weights, linalg, config(weights).requireInt("vocab_size"), Models.maxPositions(config(weights), weights.layout().modelType()));
    ModelConfig config = config(weights);
    this.mla = DeepseekConfig.resolve(config);
    this.moe = MixtureOfExperts.of(config).orElseThrow();
    this.eps = config.doubleValue("rms_norm_eps", 1e-6);
    this.rope = new Rope(config, mla.qkRopeDim(), mla.qkRopeDim(), maxPositions(), mla.ropeInterleave());
    this.attentionShape = new AttentionShape((float) mla.softmaxScale(), 0, 0);
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    return embedTokens(tokens, "model.embed_tokens.weight", mla.hidden());
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, "model.layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    int sequences = input.sequences();
    Optional<MoeBlock> sparse = moe(w.block());
    if (sparse.isPresent()) {
      MoeInput moeInput = attend(w, input, hook);
      return moeInput.finish(sparse.get().run(w, moeInput.x(), tokens, sequences, hook));
    }
    int hidden = mla.hidden();
    String block = blockPrefix(w.block());
    Map<String, Linear> linears = linearsByName(w.block());
    float[] h = attentionResidual(w, input, hook, linears);
    float[] x = Layers.rmsNorm(h, tokens, hidden, w.tensor(block + "post_attention_layernorm.weight"), eps);
    Linear gate = linears.get("mlp.gate_proj");
    Linear up = linears.get("mlp.up_proj");
    Linear down = linears.get("mlp.down_proj");
    hook.accept(List.of(gate, up), x, tokens, sequences);
    float[] inner = Fused.swiGlu(linalg, w, gate, up, x, tokens);
    hook.accept(List.of(down), inner, tokens, sequences);
    Layers.addInPlace(h, Fused.apply(linalg, w, down, inner, tokens));
    return new HiddenStates(sequences, input.length(), hidden, h);
  }

  @Override
  public Optional<MoeBlock> moe(int block) {
    return moe.isSparse(block) ? Optional.of(moeBlock(moe, block, blockPrefix(block), mla.hidden())) : Optional.empty();
  }

  @Override
  public BlockWeights loadBlockWithoutExperts(int block) throws IOException {
    return moe.isSparse(block) ? loadWithoutExperts(moe, block, blockPrefix(block)) : loadBlock(block);
  }

  @Override
  public BlockWeights loadExpert(int block, int expert) throws IOException {
    checkSparse(block);
    return loadExpert(moe, block, blockPrefix(block), expert);
  }

  @Override
  public MoeInput attend(BlockWeights w, HiddenStates input, InputHook hook) {
    checkSparse(w.block());
    float[] h = attentionResidual(w, input, hook, linearsByName(w.block()));
    return moeInput(w, new HiddenStates(input.sequences(), input.length(), mla.hidden(), h));
  }

  @Override
  public MoeInput moeInput(BlockWeights w, HiddenStates residual) {
    checkSparse(w.block());
    float[] x = Layers.rmsNorm(
        residual.values(), residual.tokens(), mla.hidden(), w.tensor(blockPrefix(w.block()) + "post_attention_layernorm.weight"), eps);
    return new MoeInput(residual, x);
  }

  private void checkSparse(int block) {
    if (!moe.isSparse(block)) {
      throw new IllegalArgumentException("Block " + block + " of " + layout.modelType() + " has no mixture of experts");
    }
  }

  private static String blockPrefix(int block) {
    return "model.layers." + block + ".";
  }

  private Map<String, Linear> linearsByName(int block) {
    Map<String, Linear> linears = new HashMap<>();
    layout.blocks().get(block).linears().forEach(linear -> linears.put(linear.name(), linear));
    return linears;
  }

  /** The input plus latent attention's output: the residual stream the MLP adds to. */
  private float[] attentionResidual(BlockWeights w, HiddenStates input, InputHook hook, Map<String, Linear> linears) {
    float[] h = input.values().clone();
    float[] x = Layers.rmsNorm(h, input.tokens(), mla.hidden(), w.tensor(blockPrefix(w.block()) + "input_layernorm.weight"), eps);
    float[] attention = attention(w, blockPrefix(w.block()), linears, x, input, hook);
    Linear output = linears.get("self_attn.o_proj");
    hook.accept(List.of(output), attention, input.tokens(), input.sequences());
    Layers.addInPlace(h, Fused.apply(linalg, w, output, attention, input.tokens()));
    return h;
  }

  /** MLA on the normed input x; returns the heads' outputs [tokens x heads * v_head_dim], o_proj's input. */
  private float[] attention(BlockWeights w, String block, Map<String, Linear> linears, float[] x, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    int sequences = input.sequences();
    int heads = mla.heads();
    int nope = mla.qkNopeDim();
    int ropeDim = mla.qkRopeDim();
    int qkDim = mla.qkHeadDim();
    int vDim = mla.vHeadDim();
    int latent = mla.kvLoraRank();
    Linear kvA = linears.get("self_attn.kv_a_proj_with_mqa");
    float[] q;
    if (mla.hasQueryLora()) {
      Linear qA = linears.get("self_attn.q_a_proj");
      Linear qB = linears.get("self_attn.q_b_proj");
      hook.accept(List.of(qA, kvA), x, tokens, sequences);
      float[] queryLatent = Layers.rmsNorm(Fused.apply(linalg, w, qA, x, tokens), tokens, mla.qLoraRank(), w.tensor(block + "self_attn.q_a_layernorm.weight"), eps);
      hook.accept(List.of(qB), queryLatent, tokens, sequences);
      q = Fused.apply(linalg, w, qB, queryLatent, tokens);
    } else {
      Linear qProj = linears.get("self_attn.q_proj");
      hook.accept(List.of(qProj, kvA), x, tokens, sequences);
      q = Fused.apply(linalg, w, qProj, x, tokens);
    }
    // kv_a gives [latent | shared rope key] per token.
    float[][] compressed = Fused.splitWidths(Fused.apply(linalg, w, kvA, x, tokens), tokens, latent, ropeDim);
    float[] kvLatent = Layers.rmsNorm(compressed[0], tokens, latent, w.tensor(block + "self_attn.kv_a_layernorm.weight"), eps);
    Linear kvB = linears.get("self_attn.kv_b_proj");
    hook.accept(List.of(kvB), kvLatent, tokens, sequences);
    float[] kv = Fused.apply(linalg, w, kvB, kvLatent, tokens);

    // Rope on the rope parts only: q's last ropeDim of each head, the one shared key.
    float[] qRope = new float[tokens * heads * ropeDim];
    for (int t = 0; t < tokens; t++) {
      for (int hd = 0; hd < heads; hd++) {
        System.arraycopy(q, (t * heads + hd) * qkDim + nope, qRope, (t * heads + hd) * ropeDim, ropeDim);
      }
    }
    float[] kRope = compressed[1];
    rope.apply(qRope, sequences, input.length(), heads);
    rope.apply(kRope, sequences, input.length(), 1);
    float[] k = new float[tokens * heads * qkDim];
    float[] v = new float[tokens * heads * vDim];
    for (int t = 0; t < tokens; t++) {
      for (int hd = 0; hd < heads; hd++) {
        int head = t * heads + hd;
        System.arraycopy(qRope, head * ropeDim, q, head * qkDim + nope, ropeDim);
        System.arraycopy(kv, head * (nope + vDim), k, head * qkDim, nope);
        System.arraycopy(kRope, t * ropeDim, k, head * qkDim + nope, ropeDim);
        System.arraycopy(kv, head * (nope + vDim) + nope, v, head * vDim, vDim);
      }
    }
    return Layers.attention(linalg, q, k, v, sequences, input.length(), heads, heads, qkDim, vDim, attentionShape);
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    return rmsNormHeadLogits(hiddenStates, sequence, "model.", eps);
  }

}
