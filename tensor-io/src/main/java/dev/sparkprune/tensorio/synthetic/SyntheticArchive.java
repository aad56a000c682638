package dev.sparkprune.tensorio.synthetic;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Blueprint;
import dev.sparkprune.tensorio.arch.ExpectedTensor;
import dev.sparkprune.tensorio.arch.TensorRole;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import dev.sparkprune.tensorio.io.FileIO;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Writes a random model archive of any supported architecture: for demos, tests of layouts that
 * cannot be downloaded here, and scale benchmarks. Each tensor's values depend only on the seed
 * and the tensor's name, so the same archive comes out whatever the sharding.
 */
public final class SyntheticArchive {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final int ROWS_PER_CHUNK = 256;

  private final ObjectNode config;
  private final DType dtype;
  private final long seed;
  private final int shardCount;
  private final float initStd;

  private SyntheticArchive(Builder builder) {
    this.config = builder.config.deepCopy();
    this.dtype = builder.dtype;
    this.seed = builder.seed;
    this.shardCount = builder.shardCount;
    this.initStd = builder.initStd;
  }

  /**
   * A Qwen3-MoE config (q/k norms, every block sparse, top-k routing with normalized weights, no
   * shared expert): a MoE archive of a chosen size, for the expert-parallel memory test and benchmark.
   */
  public static ObjectNode qwen3MoeConfig(
      int hidden, int layers, int heads, int kvHeads, int headDim, int experts, int topK, int moeIntermediate, int vocab) {
    ObjectNode config = llamaConfig(hidden, layers, heads, kvHeads, moeIntermediate, vocab);
    config.putArray("architectures").removeAll().add("Qwen3MoeForCausalLM");
    config.put("model_type", "qwen3_moe");
    config.put("head_dim", headDim);
    config.put("rms_norm_eps", 1e-6);
    config.put("moe_intermediate_size", moeIntermediate);
    config.put("num_experts", experts);
    config.put("num_experts_per_tok", topK);
    config.put("norm_topk_prob", true);
    config.put("decoder_sparse_step", 1);
    config.putArray("mlp_only_layers");
    config.put("attention_bias", false);
    return config;
  }

  /** A Llama-style config: RMSNorm, GQA, SwiGLU, untied head. */
  public static ObjectNode llamaConfig(int hidden, int layers, int heads, int kvHeads, int intermediate, int vocab) {
    ObjectNode config = JSON.createObjectNode();
    config.putArray("architectures").add("LlamaForCausalLM");
    config.put("model_type", "llama");
    config.put("hidden_size", hidden);
    config.put("num_hidden_layers", layers);
    config.put("num_attention_heads", heads);
    config.put("num_key_value_heads", kvHeads);
    config.put("intermediate_size", intermediate);
    config.put("vocab_size", vocab);
    config.put("max_position_embeddings", 2048);
    config.put("rms_norm_eps", 1e-5);
    config.put("rope_theta", 10000.0);
    config.put("hidden_act", "silu");
    config.put("tie_word_embeddings", false);
    config.put("bos_token_id", 1);
    config.put("eos_token_id", 2);
    config.put("torch_dtype", "float32");
    return config;
  }

  /** A GPT-2 config: learned positions, Conv1D weights, tied head. */
  public static ObjectNode gpt2Config(int hidden, int layers, int heads, int vocab, int positions) {
    ObjectNode config = JSON.createObjectNode();
    config.putArray("architectures").add("GPT2LMHeadModel");
    config.put("model_type", "gpt2");
    config.put("n_embd", hidden);
    config.put("n_layer", layers);
    config.put("n_head", heads);
    config.put("vocab_size", vocab);
    config.put("n_positions", positions);
    config.put("layer_norm_epsilon", 1e-5);
    config.put("activation_function", "gelu_new");
    return config;
  }

  /** An OPT config; {@code embedWidth != hidden} adds project_in/project_out as OPT-350m has. */
  public static ObjectNode optConfig(int hidden, int layers, int heads, int ffn, int vocab, int positions, int embedWidth, boolean normBefore) {
    ObjectNode config = JSON.createObjectNode();
    config.putArray("architectures").add("OPTForCausalLM");
    config.put("model_type", "opt");
    config.put("hidden_size", hidden);
    config.put("num_hidden_layers", layers);
    config.put("num_attention_heads", heads);
    config.put("ffn_dim", ffn);
    config.put("vocab_size", vocab);
    config.put("max_position_embeddings", positions);
    config.put("word_embed_proj_dim", embedWidth);
    config.put("do_layer_norm_before", normBefore);
    config.put("activation_function", "relu");
    return config;
  }

  /** A GPT-NeoX (Pythia) config with partial rotary. */
  public static ObjectNode gptNeoxConfig(
      int hidden, int layers, int heads, int intermediate, int vocab, double rotaryPct, boolean parallelResidual) {
    ObjectNode config = JSON.createObjectNode();
    config.putArray("architectures").add("GPTNeoXForCausalLM");
    config.put("model_type", "gpt_neox");
    config.put("hidden_size", hidden);
    config.put("num_hidden_layers", layers);
    config.put("num_attention_heads", heads);
    config.put("intermediate_size", intermediate);
    config.put("vocab_size", vocab);
    config.put("max_position_embeddings", 256);
    config.put("rotary_pct", rotaryPct);
    config.put("rotary_emb_base", 10000);
    config.put("use_parallel_residual", parallelResidual);
    config.put("hidden_act", "gelu");
    config.put("tie_word_embeddings", false);
    return config;
  }

  public static Builder builder(ObjectNode config) {
    return new Builder(config);
  }

  /** Writes config.json and the weights under {@code directory}, which must not hold an archive yet. */
  public void write(FileIO io, String directory) throws IOException {
    String configText = JSON.writeValueAsString(config);
    ModelConfig parsed = ModelConfig.parse(io.resolve(directory, ModelArchive.CONFIG), configText);
    Blueprint blueprint = Architectures.canonicalBlueprint(parsed);
    List<ExpectedTensor> expected = new ArrayList<>();
    for (ExpectedTensor tensor : blueprint.tensors()) {
      if (tensor.required()) {
        expected.add(tensor);
      }
    }
    writeText(io, io.resolve(directory, ModelArchive.CONFIG), configText);
    List<List<ExpectedTensor>> shards = splitBySize(expected, shardCount);
    if (shards.size() == 1) {
      writeShard(io, io.resolve(directory, ModelArchive.SINGLE_SHARD), shards.get(0));
      return;
    }
    ObjectNode index = JSON.createObjectNode();
    long totalBytes = expected.stream().mapToLong(this::byteLength).sum();
    index.putObject("metadata").put("total_size", totalBytes);
    ObjectNode weightMap = index.putObject("weight_map");
    for (int s = 0; s < shards.size(); s++) {
      String name = String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
      writeShard(io, io.resolve(directory, name), shards.get(s));
      for (ExpectedTensor tensor : shards.get(s)) {
        weightMap.put(tensor.name(), name);
      }
    }
    writeText(io, io.resolve(directory, ModelArchive.INDEX), JSON.writeValueAsString(index));
  }

  private long byteLength(ExpectedTensor tensor) {
    return new TensorSpec(tensor.name(), dtype, tensor.shape()).byteLength();
  }

  private List<List<ExpectedTensor>> splitBySize(List<ExpectedTensor> tensors, int count) {
    long total = tensors.stream().mapToLong(this::byteLength).sum();
    long perShard = Math.max(1, (total + count - 1) / count);
    List<List<ExpectedTensor>> shards = new ArrayList<>();
    List<ExpectedTensor> current = new ArrayList<>();
    long currentBytes = 0;
    for (ExpectedTensor tensor : tensors) {
      if (!current.isEmpty() && currentBytes + byteLength(tensor) > perShard && shards.size() < count - 1) {
        shards.add(current);
        current = new ArrayList<>();
        currentBytes = 0;
      }
      current.add(tensor);
      currentBytes += byteLength(tensor);
    }
    shards.add(current);
    return shards;
  }

  private void writeShard(FileIO io, String location, List<ExpectedTensor> tensors) throws IOException {
    List<TensorSpec> specs = new ArrayList<>();
    for (ExpectedTensor tensor : tensors) {
      specs.add(new TensorSpec(tensor.name(), dtype, tensor.shape()));
    }
    try (OutputStream out = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20);
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of("format", "pt"))) {
      for (ExpectedTensor tensor : tensors) {
        writeValues(writer, tensor);
      }
    }
  }

  private void writeValues(SafetensorsWriter writer, ExpectedTensor tensor) throws IOException {
    long[] shape = tensor.shape();
    long rowLength = 1;
    for (int i = 1; i < shape.length; i++) {
      rowLength *= shape[i];
    }
    long rows = shape.length == 0 ? 1 : shape[0];
    SplittableRandom random = new SplittableRandom(seed ^ mix(tensor.name()));
    float[] chunk = new float[(int) (Math.min(rows, ROWS_PER_CHUNK) * rowLength)];
    for (long row = 0; row < rows; row += ROWS_PER_CHUNK) {
      int count = (int) (Math.min(ROWS_PER_CHUNK, rows - row) * rowLength);
      fill(tensor, random, chunk, count);
      writer.writeFloats(chunk, 0, count);
    }
  }

  private void fill(ExpectedTensor tensor, SplittableRandom random, float[] values, int count) {
    boolean isBias = tensor.role() == TensorRole.BIAS || tensor.name().endsWith(".bias");
    if (tensor.role() == TensorRole.NORM) {
      for (int i = 0; i < count; i++) {
        values[i] = isBias ? 0f : 1f + 0.1f * (float) (random.nextDouble() - 0.5);
      }
      return;
    }
    float scale = isBias ? initStd * 0.1f : initStd;
    for (int i = 0; i < count; i++) {
      values[i] = scale * (float) gaussian(random);
    }
  }

  /** A standard normal by Box-Muller; SplittableRandom has no nextGaussian on Java 17. */
  private static double gaussian(SplittableRandom random) {
    double u = 1.0 - random.nextDouble();
    double v = random.nextDouble();
    return Math.sqrt(-2.0 * Math.log(u)) * Math.cos(2.0 * Math.PI * v);
  }

  private static long mix(String name) {
    long hash = 1125899906842597L;
    for (int i = 0; i < name.length(); i++) {
      hash = 31 * hash + name.charAt(i);
    }
    return hash;
  }

  /**
   * Writes a byte-level BPE tokenizer with no merges (one token per byte, id = byte, then
   * {@code <|endoftext|>} as BOS/EOS at id 256), so synthetic archives can run text end to end.
   */
  public static void writeByteLevelTokenizer(FileIO io, String directory) throws IOException {
    ObjectNode tokenizer = JSON.createObjectNode();
    tokenizer.put("version", "1.0");
    tokenizer.putArray("added_tokens").addObject().put("id", 256).put("content", "<|endoftext|>").put("special", true);
    tokenizer.putNull("normalizer");
    tokenizer.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", true);
    tokenizer.putObject("decoder").put("type", "ByteLevel");
    ObjectNode model = tokenizer.putObject("model");
    model.put("type", "BPE");
    ObjectNode vocab = model.putObject("vocab");
    for (int b = 0; b < 256; b++) {
      vocab.put(String.valueOf(dev.sparkprune.tensorio.tokenizer.BpeTokenizer.byteLevelSymbol(b)), b);
    }
    model.putArray("merges");
    writeText(io, io.resolve(directory, "tokenizer.json"), JSON.writeValueAsString(tokenizer));
    ObjectNode config = JSON.createObjectNode();
    config.put("bos_token", "<|endoftext|>").put("eos_token", "<|endoftext|>").put("add_bos_token", true);
    writeText(io, io.resolve(directory, "tokenizer_config.json"), JSON.writeValueAsString(config));
  }

  private static void writeText(FileIO io, String location, String text) throws IOException {
    try (OutputStream out = io.newOutputFile(location).create()) {
      out.write(text.getBytes(StandardCharsets.UTF_8));
    }
  }

  public static final class Builder {
    private final ObjectNode config;
    private DType dtype = DType.F32;
    private long seed = 0;
    private int shardCount = 1;
    private float initStd = 0.02f;

    private Builder(ObjectNode config) {
      this.config = Objects.requireNonNull(config, "config is null");
    }

    public Builder dtype(DType value) {
      if (!value.isFloatEncodable()) {
        throw new IllegalArgumentException("Invalid dtype for synthetic weights: " + value);
      }
      this.dtype = value;
      return this;
    }

    public Builder seed(long value) {
      this.seed = value;
      return this;
    }

    public Builder shards(int count) {
      if (count < 1) {
        throw new IllegalArgumentException("Invalid shard count: " + count);
      }
      this.shardCount = count;
      return this;
    }

    public Builder initStd(float value) {
      this.initStd = value;
      return this;
    }

    public SyntheticArchive build() {
      return new SyntheticArchive(this);
    }
  }
}
