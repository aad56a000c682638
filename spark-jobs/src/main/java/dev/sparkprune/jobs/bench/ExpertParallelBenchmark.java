package dev.sparkprune.jobs.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Issue 24's benchmark: a generated DeepSeek-V3-shaped archive (deepseek_v3, latent attention,
 * sigmoid group-limited router, {@code experts} routed + 1 shared expert per MoE block, the first
 * block dense, BF16 random weights) pruned with Wanda twice in one sitting, each run a JVM of its
 * own on {@code local[2]} under the same heap: the expert-parallel path (a small --expert-task-mb,
 * so every MoE block is cut into expert groups) and the whole-block path (--expert-task-mb at a
 * task's share of the heap, so each block's experts make one group). Then the expert-parallel
 * run once more under a small heap, and the whole-block path under that heap, which the run plan
 * refuses before Spark starts.
 *
 * <p>Per run: job wall time (the JVM's, Spark start-up included), peak RSS of the JVM (VmHWM,
 * sampled from /proc every 200 ms) and the heap's high-water mark after collections (the largest
 * "after" figure of the G1 log: what stayed live, a bound on what the tasks held). In local mode
 * the driver and the executor share the JVM, so both figures cover both. The two pruned outputs
 * are hashed to show they are the same bytes.
 */
public final class ExpertParallelBenchmark {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern GC_AFTER = Pattern.compile("(\\d+)M->(\\d+)M\\((\\d+)M\\)");

  /** The generated model and the runs' settings. */
  public record Settings(int layers, int experts, int hidden, int intermediate, int nsamples, int seqlen, int heapMb, int smallHeapMb,
      int shardMb) {}

  /** One run's figures. */
  record Run(String name, int exit, double seconds, long peakRssBytes, long heapAfterGcMb, long heapMaxMb, String outputHash, String lastLine) {}

  private ExpertParallelBenchmark() {}

  /**
   * The config of a DeepSeek-V3-shaped model: DeepSeek-V3's structure (MLA with q_lora_rank,
   * yarn, sigmoid noaux_tc routing over 8 groups with top-4 groups, top-8 experts, one shared
   * expert, first block dense, no MTP layer) at the given widths.
   */
  public static ObjectNode deepseekV3Config(int hidden, int layers, int experts, int moeIntermediate, int vocab) {
    ObjectNode config = JSON.createObjectNode();
    config.putArray("architectures").add("DeepseekV3ForCausalLM");
    config.put("model_type", "deepseek_v3");
    config.put("vocab_size", vocab);
    config.put("hidden_size", hidden);
    config.put("intermediate_size", 4 * hidden);
    config.put("moe_intermediate_size", moeIntermediate);
    config.put("num_hidden_layers", layers);
    config.put("num_nextn_predict_layers", 0);
    config.put("num_attention_heads", 8);
    config.put("num_key_value_heads", 8);
    config.put("n_shared_experts", 1);
    config.put("n_routed_experts", experts);
    config.put("routed_scaling_factor", 2.5);
    config.put("kv_lora_rank", hidden / 4);
    config.put("q_lora_rank", hidden / 2);
    config.put("qk_rope_head_dim", 32);
    config.put("qk_nope_head_dim", 64);
    config.put("v_head_dim", 64);
    config.put("n_group", 8);
    config.put("topk_group", 4);
    config.put("num_experts_per_tok", 8);
    config.put("first_k_dense_replace", 1);
    config.put("norm_topk_prob", true);
    config.put("scoring_func", "sigmoid");
    config.put("topk_method", "noaux_tc");
    config.put("moe_layer_freq", 1);
    config.put("hidden_act", "silu");
    config.put("max_position_embeddings", 163840);
    config.put("rms_norm_eps", 1e-6);
    config.put("bos_token_id", 256);
    config.put("eos_token_id", 256);
    config.put("tie_word_embeddings", false);
    config.put("rope_theta", 10000.0);
    config.put("rope_interleave", true);
    ObjectNode rope = config.putObject("rope_scaling");
    rope.put("type", "yarn");
    rope.put("factor", 40);
    rope.put("mscale", 1.0);
    rope.put("mscale_all_dim", 1.0);
    rope.put("original_max_position_embeddings", 4096);
    rope.put("beta_fast", 32);
    rope.put("beta_slow", 1);
    config.put("attention_bias", false);
    config.put("torch_dtype", "bfloat16");
    return config;
  }

  /** Writes the generated archive (BF16, seed 1, 4 shards) with a byte-level tokenizer; returns its bytes on disk. */
  public static long generate(Path model, Settings settings) throws IOException {
    SyntheticArchive.builder(deepseekV3Config(settings.hidden(), settings.layers(), settings.experts(), settings.intermediate(), 512))
        .dtype(DType.BF16).shards(4).seed(1).build().write(new LocalFileIO(), model.toString());
    SyntheticArchive.writeByteLevelTokenizer(new LocalFileIO(), model.toString());
    try (var files = Files.list(model)) {
      return files.mapToLong(path -> path.toFile().length()).sum();
    }
  }

  public static void run(Path directory, Settings settings, PrintStream out) throws IOException {
    Path model = directory.resolve("deepseek-v3-shaped");
    Path text = directory.resolve("calibration.txt");
    long start = System.nanoTime();
    long bytes = generate(model, settings);
    PruneBenchmark.writeCalibrationText(text);
    long expertBytes = 3L * settings.hidden() * settings.intermediate() * settings.experts();
    out.printf(Locale.ROOT, "experts: generated deepseek_v3, %d blocks (1 dense), %d routed + 1 shared experts of 3 x %d x %d per block"
            + " (%.0f MB of routed experts per block as float), %.2f GB BF16 in %.0f s (%s)%n",
        settings.layers(), settings.experts(), settings.hidden(), settings.intermediate(), 4.0 * expertBytes / 1e6, bytes / 1e9,
        (System.nanoTime() - start) / 1e9, model);
    // Whole block: a budget over a block's routed experts as float (with Wanda's statistics, 16 x (H + I) bytes each) cuts no block.
    int wholeMb = (int) ((4 * expertBytes + 16L * (settings.hidden() + settings.intermediate()) * settings.experts()) * 11 / 10 >> 20) + 1;
    List<Run> runs = new ArrayList<>();
    runs.add(prune(directory, model, text, settings, "expert-parallel", settings.heapMb(), settings.shardMb(), true));
    runs.add(prune(directory, model, text, settings, "whole block", settings.heapMb(), wholeMb, true));
    runs.add(prune(directory, model, text, settings, "expert-parallel", settings.smallHeapMb(), settings.shardMb(), false));
    runs.add(prune(directory, model, text, settings, "whole block", settings.smallHeapMb(), wholeMb, false));
    out.printf(Locale.ROOT, "experts: Wanda 50%%, %d samples x %d tokens, local[2], one JVM per run; peak RSS = VmHWM of that JVM,"
        + " heap after GC = the largest live heap the G1 log reports after a collection (driver and executor share the JVM)%n",
        settings.nsamples(), settings.seqlen());
    out.println("| path | --expert-task-mb | heap | exit | job wall time | peak RSS | heap after GC (max) | output SHA-256 |");
    out.println("| --- | --- | --- | --- | --- | --- | --- | --- |");
    int[] heaps = {settings.heapMb(), settings.heapMb(), settings.smallHeapMb(), settings.smallHeapMb()};
    int[] budgets = {settings.shardMb(), wholeMb, settings.shardMb(), wholeMb};
    for (int i = 0; i < runs.size(); i++) {
      Run run = runs.get(i);
      out.printf(Locale.ROOT, "| %s | %d | %d MB | %d | %.1f s | %.2f GB | %d MB | %s |%n", run.name(), budgets[i], heaps[i], run.exit(),
          run.seconds(), run.peakRssBytes() / 1e9, run.heapAfterGcMb(), run.outputHash().isEmpty() ? "-" : run.outputHash().substring(0, 12));
      if (run.exit() != 0) {
        out.println("  " + run.name() + " under " + heaps[i] + " MB: " + run.lastLine());
      }
    }
    boolean same = !runs.get(0).outputHash().isEmpty() && runs.get(0).outputHash().equals(runs.get(1).outputHash());
    out.println("experts: the expert-parallel and whole-block outputs are " + (same ? "the same bytes" : "NOT the same bytes"));
  }

  private static Run prune(Path directory, Path model, Path text, Settings settings, String name, int heapMb, int budgetMb, boolean hash)
      throws IOException {
    String tag = name.replace(' ', '-') + "-" + heapMb;
    Path output = directory.resolve("out-" + tag);
    Path gcLog = directory.resolve("gc-" + tag + ".log");
    Path log = directory.resolve("log-" + tag + ".txt");
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String argument : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!argument.startsWith("-Xmx") && !argument.startsWith("-Xlog") && !argument.startsWith("-agentlib") && !argument.startsWith("-javaagent")) {
        command.add(argument);
      }
    }
    command.addAll(List.of("-Xmx" + heapMb + "m", "-Xlog:gc:file=" + gcLog, "-cp", System.getProperty("java.class.path"),
        "dev.sparkprune.jobs.cli.Main", "prune", "--model", model.toString(), "--out", output.toString(), "--method", "wanda",
        "--sparsity", "0.5", "--calib", text.toString(), "--nsamples", String.valueOf(settings.nsamples()), "--seqlen",
        String.valueOf(settings.seqlen()), "--expert-task-mb", String.valueOf(budgetMb), "--master", "local[2]"));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
    builder.environment().put("OPENBLAS_NUM_THREADS", "1");
    long start = System.nanoTime();
    Process process = builder.start();
    Path status = Path.of("/proc", String.valueOf(process.pid()), "status");
    long peak = 0;
    try {
      while (!process.waitFor(200, java.util.concurrent.TimeUnit.MILLISECONDS)) {
        peak = Math.max(peak, highWaterMark(status));
      }
    } catch (InterruptedException e) {
      process.destroy();
      Thread.currentThread().interrupt();
      throw new IOException("Interrupted while running " + name, e);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    long after = 0;
    long max = 0;
    if (Files.exists(gcLog)) {
      for (String line : Files.readAllLines(gcLog, StandardCharsets.UTF_8)) {
        Matcher matcher = GC_AFTER.matcher(line);
        if (matcher.find()) {
          after = Math.max(after, Long.parseLong(matcher.group(2)));
          max = Math.max(max, Long.parseLong(matcher.group(1)));
        }
      }
    }
    List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
    String last = lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    String digest = process.exitValue() == 0 && hash ? hash(output) : "";
    return new Run(name, process.exitValue(), seconds, peak, after, max, digest, last);
  }

  /** VmHWM of a live process in bytes; 0 when it has gone. */
  private static long highWaterMark(Path status) {
    try {
      for (String line : Files.readAllLines(status, StandardCharsets.UTF_8)) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) << 10;
        }
      }
    } catch (IOException | RuntimeException e) {
      // The process exited between the wait and the read.
    }
    return 0;
  }

  /** SHA-256 over the output's safetensors files in name order (their names included). */
  private static String hash(Path output) throws IOException {
    try (var paths = Files.walk(output)) {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      byte[] buffer = new byte[1 << 20];
      for (Path path : (Iterable<Path>) paths.filter(p -> p.toString().endsWith(".safetensors")).sorted()::iterator) {
        digest.update(output.relativize(path).toString().getBytes(StandardCharsets.UTF_8));
        try (InputStream in = Files.newInputStream(path)) {
          for (int n = in.read(buffer); n > 0; n = in.read(buffer)) {
            digest.update(buffer, 0, n);
          }
        }
      }
      return HexFormat.of().formatHex(digest.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing", e);
    }
  }
}
