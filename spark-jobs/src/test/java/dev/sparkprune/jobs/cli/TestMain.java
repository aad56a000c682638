package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.FolderSnapshot;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestMain {
  @TempDir Path dir;

  /** Exit code, stdout and stderr of one CLI run. */
  private record Result(int code, String out, String err) {}

  private static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static void assertOneLineError(Result result, String expected) {
    assertThat(result.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(result.err()).startsWith("sparkprune: error: ").contains(expected);
    assertThat(result.err().strip().lines()).hasSize(1);
    assertThat(result.err()).doesNotContain("\tat ");
  }

  @Test
  void inspectPrintsTheTableForStories260K() {
    Result result = run("inspect", SharedData.stories260K().toString());
    assertThat(result.code()).isZero();
    assertThat(result.out())
        .contains("Architecture   llama (LlamaForCausalLM)")
        .contains("Blocks         5")
        .contains("Linears        35 prunable (7 per block)")
        .contains("Parameters     260,032 total, 226,560 prunable")
        .contains("model.safetensors")
        .contains("4      mlp.down_proj     64 x 172  mlp_hidden        F32    11,008      model.layers.4.mlp.down_proj.weight");
    assertThat(result.out().lines().filter(line -> line.matches("^[0-4] +\\S+ +\\d+ x \\d+.*"))).hasSize(35);
  }

  @Test
  void inspectJsonIsMachineReadable() throws IOException {
    Result result = run("inspect", "--json", SharedData.stories260K().toString());
    assertThat(result.code()).isZero();
    JsonNode json = new ObjectMapper().readTree(result.out());
    assertThat(json.get("model_type").asText()).isEqualTo("llama");
    assertThat(json.get("blocks").asInt()).isEqualTo(5);
    assertThat(json.get("linears")).hasSize(35);
    assertThat(json.get("parameters").get("total").asLong()).isEqualTo(260_032L);
    assertThat(json.get("linears").get(6).get("tensor").asText()).isEqualTo("model.layers.0.mlp.down_proj.weight");
    assertThat(json.get("linears").get(6).get("in_features").asLong()).isEqualTo(172);
    assertThat(json.get("dtypes").get("F32").get("parameters").asLong()).isEqualTo(260_032L);
  }

  @Test
  void inspectListsRoutedExpertsRoutersAndTheSharedExpert() throws IOException {
    Result text = run("inspect", SharedData.path("fixtures/models/qwen2_moe").toString());
    assertThat(text.code()).isZero();
    assertThat(text.out())
        .contains("Architecture   qwen2_moe (Qwen2MoeForCausalLM)")
        .contains("Linears        93 prunable (31 per block)")
        .contains("Experts        8 routed per MoE block, top-2; MoE blocks [0, 1, 2] (3 of 3); routers 3; one shared expert per MoE block")
        .contains("router 3 (1,536 parameters)")
        .contains("shared_expert_gate 3 (192 parameters)");
    assertThat(text.out().lines().filter(line -> line.matches("^1 +7 +mlp\\.experts\\.7\\.down_proj +64 x 32 +expert\\.7\\.hidden .*"))).hasSize(1);
    assertThat(text.out().lines().filter(line -> line.matches("^2 +shared +mlp\\.shared_expert\\.(gate|up|down)_proj .*"))).hasSize(3);
    assertThat(text.out().lines().filter(line -> line.matches("^0 +- +self_attn\\..*"))).hasSize(4);

    Result json = run("inspect", "--json", SharedData.path("fixtures/models/mixtral").toString());
    JsonNode root = new ObjectMapper().readTree(json.out());
    assertThat(root.get("experts").get("routed_per_block").asInt()).isEqualTo(8);
    assertThat(root.get("experts").get("top_k").asInt()).isEqualTo(2);
    assertThat(root.get("experts").get("normalize_top_k").asBoolean()).isTrue();
    assertThat(root.get("experts").get("shared_expert").asBoolean()).isFalse();
    JsonNode w2 = root.get("linears").get(4 + 3 * 3 + 2);
    assertThat(w2.get("tensor").asText()).isEqualTo("model.layers.0.block_sparse_moe.experts.3.w2.weight");
    assertThat(w2.get("expert").asInt()).isEqualTo(3);
    assertThat(w2.get("input_group").asText()).isEqualTo("expert.3.hidden");
    assertThat(root.get("linears").get(0).has("expert")).isFalse();
    assertThat(root.get("not_pruned").findValuesAsText("role")).filteredOn("router"::equals).hasSize(3);
  }

  @Test
  void inspectCountsParametersOfQuantizedWeightsNotTheirBytes() throws IOException {
    Path fp8 = dev.sparkprune.tensorio.archive.QuantizedFixtures.toFp8(SharedData.path("fixtures/models/mixtral"), dir.resolve("fp8"));
    JsonNode plain = new ObjectMapper().readTree(run("inspect", "--json", SharedData.path("fixtures/models/mixtral").toString()).out());
    Result result = run("inspect", "--json", fp8.toString());
    assertThat(result.code()).isZero();
    JsonNode json = new ObjectMapper().readTree(result.out());
    assertThat(json.get("parameters")).isEqualTo(plain.get("parameters"));
    long linears = plain.get("parameters").get("prunable").asLong();
    assertThat(json.get("dtypes").get("F8_E4M3 (128x128 block scales)").get("parameters").asLong()).isEqualTo(linears);
    assertThat(json.get("dtypes").get("F32").get("parameters").asLong())
        .isEqualTo(plain.get("parameters").get("total").asLong() - linears);
    assertThat(json.get("linears").get(0).get("dtype").asText()).isEqualTo("F8_E4M3");
    assertThat(run("inspect", fp8.toString()).out())
        .contains("Dtypes         F32 12 tensors, ")
        .contains("F8_E4M3 (128x128 block scales) 84 tensors, ");
  }

  @Test
  void aRunWhosePlanCannotFitIsRefusedBeforeSparkStarts() throws IOException {
    // 320 MiB executors leave 20 MiB; 128 x 2048 calibration tokens need more. The calibration
    // memory check (before any window is sampled) speaks first; the memory plan's own refusal text
    // is tested in TestMemoryPlan.
    Path model = SharedData.path("fixtures/models/deepseek_v3_fp8");
    Path out = dir.resolve("refused");
    Result result = run("prune", "--model", model.toString(), "--out", out.toString(), "--method", "sparsegpt", "--calib",
        SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--master", "local-cluster[1,1,320]");
    assertOneLineError(result, "Cannot calibrate 128 samples x 2048 tokens (--nsamples, --seqlen): a task holds about ");
    assertThat(result.err()).contains("in an executor of 320 MiB (local-cluster[1,1,320]: executor memory from the master URL)");
    assertThat(out).doesNotExist();
  }

  @Test
  void inspectPlanPrintsBytesPerBlockTaskAndExecutor() throws IOException {
    Path model = SharedData.path("fixtures/models/gpt_oss_mxfp4");
    Result json = run("inspect", "--plan", "--json", "--method", "wanda", "--nsamples", "16", "--seqlen", "64", "--executor-memory", "16g",
        "--executor-cores", "4", "--executors", "3", model.toString());
    assertThat(json.code()).as(json.err()).isZero();
    JsonNode plan = new ObjectMapper().readTree(json.out());
    assertThat(plan.get("executor_usable_bytes").asLong()).isEqualTo((16L << 30) - (300L << 20));
    assertThat(plan.get("executor_cores").asInt()).isEqualTo(4);
    assertThat(plan.get("fits").asBoolean()).isTrue();
    JsonNode config = new ObjectMapper().readTree(model.resolve("config.json").toFile());
    assertThat(plan.get("blocks")).hasSize(config.get("num_hidden_layers").asInt());
    // Wanda: one Sum x^2 vector in double per input group (attention input, attention output, the experts' hidden and intermediate).
    long hidden = config.get("hidden_size").asLong();
    long attention = config.get("num_attention_heads").asLong() * config.get("head_dim").asLong();
    long experts = config.get("num_local_experts").asLong();
    long intermediate = config.get("intermediate_size").asLong();
    // Each expert's gate/up read its routed hidden states, its down the intermediate ones (slices of the fused tensors).
    long groups = hidden + attention + experts * (hidden + intermediate);
    assertThat(plan.get("blocks").get(0).get("statistics_bytes").asLong()).isEqualTo(8 * groups);
    assertThat(plan.get("blocks").get(0).get("shuffle_bytes").asLong()).isEqualTo(12 * 8 * groups);
    Result table = run("inspect", "--plan", "--executor-memory", "16g", model.toString());
    assertThat(table.code()).isZero();
    assertThat(table.out()).contains("Settings       sparsegpt, nsamples 128, seqlen 2048, scoring tasks of 64.0 MiB")
        .contains("Executors      1 x 1 core(s), 15.7 GiB usable of 16.0 GiB (--executor-memory 16g)")
        .containsPattern("block +stored +as float +calibration task")
        .contains("Fits           every block's calibration and scoring fit one executor");
  }

  /**
   * A DeepSeek-V3-shaped MoE (the benchmark's generator, 16 experts of 3 x 128 x 64) under a 1 MB
   * expert budget: inspect --plan prints the expert plan's groups and per-task bytes for the
   * sharded block, equal to the README's formulas computed here from the safetensors headers.
   */
  @Test
  void inspectPlanShowsExpertGroupTaskBytesOfAShardedMoe() throws IOException {
    Path model = dir.resolve("deepseek-v3-shaped");
    int hidden = 128;
    int intermediate = 64;
    int experts = 16;
    dev.sparkprune.jobs.bench.ExpertParallelBenchmark.generate(model,
        new dev.sparkprune.jobs.bench.ExpertParallelBenchmark.Settings(2, experts, hidden, intermediate, 1, 1, 1, 1, 1));
    Result json = run("inspect", "--plan", "--json", "--method", "wanda", "--nsamples", "16", "--seqlen", "32", "--executor-memory", "1g",
        "--executor-cores", "2", "--expert-task-mb", "1", model.toString());
    assertThat(json.code()).as(json.err()).isZero();
    JsonNode plan = new ObjectMapper().readTree(json.out());
    assertThat(plan.get("blocks").get(0).has("expert_parallel")).isFalse(); // first_k_dense_replace 1: block 0 is dense

    // Each routed expert's float weights from the headers, plus Wanda's sums: 16 bytes per channel of its two inputs (H, I).
    long[] expertBytes = new long[experts];
    java.util.regex.Pattern name = java.util.regex.Pattern.compile("model\\.layers\\.1\\.mlp\\.experts\\.(\\d+)\\.(gate|up|down)_proj\\.weight");
    try (Stream<Path> shards = Files.list(model)) {
      for (Path shard : shards.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
        byte[] bytes = Files.readAllBytes(shard);
        long length = java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = new ObjectMapper().readTree(new String(bytes, 8, (int) length, StandardCharsets.UTF_8));
        for (Map.Entry<String, JsonNode> tensor : (Iterable<Map.Entry<String, JsonNode>>) header::fields) {
          java.util.regex.Matcher matcher = name.matcher(tensor.getKey());
          if (matcher.matches()) {
            long numel = 1;
            for (JsonNode dim : tensor.getValue().get("shape")) {
              numel *= dim.asLong();
            }
            expertBytes[Integer.parseInt(matcher.group(1))] += 4 * numel;
          }
        }
      }
    }
    long statistics = 16L * (hidden + intermediate);
    assertThat(expertBytes[0]).isEqualTo(4L * 3 * hidden * intermediate);
    // Groups: experts in index order, a new group when the next expert would pass 1 MiB.
    List<long[]> groups = new java.util.ArrayList<>();
    long[] current = {0, 0, 0};
    for (int e = 0; e < experts; e++) {
      long bytes = expertBytes[e] + statistics;
      if (e > current[0] && current[2] + bytes > 1L << 20) {
        groups.add(current);
        current = new long[] {e, e, 0};
      }
      current[1] = e + 1;
      current[2] += bytes;
    }
    groups.add(current);
    JsonNode sharded = plan.get("blocks").get(1).get("expert_parallel");
    assertThat(sharded.get("groups")).hasSize(groups.size());
    assertThat(groups.size()).isGreaterThan(1);
    // Expert task: the group + 5 partials of one expert's statistics (16 chunks fold in 4 levels) + its routed rows' states
    // (T k |g| / E of T = 16 x 32 tokens, k = 8) + one expert's working set on a chunk (32 k / E rows x (3I + 2H) floats).
    long tokens = 16 * 32;
    long largestTask = 0;
    for (int g = 0; g < groups.size(); g++) {
      long size = groups.get(g)[1] - groups.get(g)[0];
      assertThat(sharded.get("groups").get(g).get("first").asLong()).isEqualTo(groups.get(g)[0]);
      assertThat(sharded.get("groups").get(g).get("end").asLong()).isEqualTo(groups.get(g)[1]);
      assertThat(sharded.get("groups").get(g).get("bytes").asLong()).isEqualTo(groups.get(g)[2]);
      long rows = Math.min((tokens * 8 * size + experts - 1) / experts, tokens * Math.min(8, size));
      largestTask = Math.max(largestTask, groups.get(g)[2] + 5 * statistics + 4L * hidden * rows + 4L * (32 * 8 / experts) * (3 * intermediate + 2 * hidden));
    }
    assertThat(sharded.get("expert_task_bytes").asLong()).isEqualTo(largestTask);
    // Routed tokens out: every token's state to each of its k experts, with the expert index.
    assertThat(sharded.get("dispatch_bytes").asLong()).isEqualTo(4L * hidden * tokens * 8 + 4L * tokens * 8);
    assertThat(plan.get("fits").asBoolean()).isTrue();

    Result table = run("inspect", "--plan", "--method", "wanda", "--nsamples", "16", "--seqlen", "32", "--executor-memory", "1g",
        "--executor-cores", "2", "--expert-task-mb", "1", model.toString());
    assertThat(table.code()).as(table.err()).isZero();
    assertThat(table.out()).contains("1 of 2 blocks expert-parallel").contains(groups.size() + " expert groups")
        .contains("Expert-parallel blocks").contains(TextTable.bytes(largestTask));
  }

  @Test
  void hostileArchiveGivesOneLineAndExitCodeTwo() throws IOException {
    Path archive = dir.resolve("bad");
    Files.createDirectories(archive);
    Files.writeString(archive.resolve("config.json"), "{\"model_type\":\"llama\"}");
    byte[] file = new byte[16];
    file[0] = (byte) 0xFF; // header length 255 in a 16-byte file
    Files.write(archive.resolve("model.safetensors"), file);
    Result result = run("inspect", archive.toString());
    assertOneLineError(result, "header length 255 runs past the end of the file (16 bytes)");
  }

  @Test
  void verbosePrintsTheStackTrace() {
    Result result = run("inspect", "--verbose", dir.resolve("absent").toString());
    assertThat(result.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(result.err()).contains("directory not found").contains("\tat dev.sparkprune");
  }

  @Test
  void pickleArchiveIsRefused() throws IOException {
    Path archive = dir.resolve("pickle");
    Files.createDirectories(archive);
    Files.writeString(archive.resolve("config.json"), "{\"model_type\":\"llama\"}");
    Files.write(archive.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2});
    assertOneLineError(run("inspect", archive.toString()), "Pickle files can execute arbitrary code");
  }

  @Test
  void badOptionsAndCommands() {
    assertOneLineError(run("inspect", "--jsn", "x"), "Unknown option for 'inspect': --jsn");
    assertOneLineError(run("inspect"), "Missing ARCHIVE for 'inspect'");
    assertOneLineError(run("inspect", "a", "b"), "Too many arguments for 'inspect'");
    assertOneLineError(run("frobnicate"), "Unknown command 'frobnicate'");
    Result noArgs = run();
    assertThat(noArgs.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(noArgs.out()).contains("Usage: sparkprune");
    assertThat(run("help").code()).isZero();
  }

  @Test
  void evalPrintsPerplexityForPlainJsonlAndParquetText() throws IOException {
    String model = SharedData.stories260K().toString();
    Result plain = run("eval", "--model", model, "--text", SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
        "--seqlen", "256", "--max-windows", "2");
    assertThat(plain.code()).as(plain.err()).isZero();
    assertThat(plain.out()).contains("evaluated   512 tokens in 2 windows of 256");
    double ppl = Double.parseDouble(plain.out().replaceAll("(?s).*perplexity  ([0-9.]+).*", "$1"));
    // In-domain text for a model with a validation perplexity near 3.7.
    assertThat(ppl).isBetween(2.0, 8.0);

    Path jsonl = dir.resolve("docs.jsonl");
    String story = Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt")).substring(0, 3000);
    Files.writeString(jsonl, "{\"text\": " + new ObjectMapper().writeValueAsString(story) + "}\n");
    Result json = run("eval", "--model", model, "--text", jsonl.toString(), "--seqlen", "128", "--max-windows", "3");
    assertThat(json.code()).as(json.err()).isZero();
    assertThat(json.out()).contains("documents: 1").contains("in 3 windows of 128");

    Result parquet = run("eval", "--model", model, "--text", SharedData.path("data/c4/c4_validation_2k.parquet").toString(),
        "--seqlen", "64", "--max-windows", "1");
    assertThat(parquet.code()).as(parquet.err()).isZero();
    // One window of 64 tokens needs the first documents only: the rest of the file is never read.
    assertThat(parquet.out()).contains("read as far as needed: documents: ").contains("in 1 windows of 64");
    assertThat(Integer.parseInt(parquet.out().replaceAll("(?s).*documents: ([0-9]+),.*", "$1"))).isLessThan(2000);
  }

  @Test
  void evalBadInput() throws IOException {
    String model = SharedData.stories260K().toString();
    assertOneLineError(run("eval", "--model", model, "--text", dir.resolve("missing.txt").toString(), "--seqlen", "64"), "file not found");
    Path text = dir.resolve("t.txt");
    Files.writeString(text, "Once upon a time");
    assertOneLineError(run("eval", "--model", model, "--text", text.toString(), "--seqlen", "1024"),
        "Invalid --seqlen 1024: the model supports at most 512 positions");
    assertOneLineError(run("eval", "--model", model, "--text", text.toString(), "--seqlen", "128"),
        "fewer than one window of 128");
    assertOneLineError(run("eval", "--model", model), "Missing --text or --tasks for 'eval'");
    assertOneLineError(run("eval", "--model", model, "--text", "/dev/zero", "--seqlen", "64", "--max-windows", "2"), "/dev/zero is not a regular file");
    Path bad = dir.resolve("bad.jsonl");
    Files.writeString(bad, "{\"text\": \"ok\"}\n{\"body\": 1}\n");
    assertOneLineError(run("eval", "--model", model, "--text", bad.toString(), "--seqlen", "64"), "line 2: no string field 'text'");
  }

  @Test
  void refinementOptionsAreCheckedBeforeAnyWork() {
    String model = SharedData.stories260K().toString();
    String out = dir.resolve("refined").toString();
    assertOneLineError(run("prune", "--model", model, "--out", out, "--method", "wanda", "--calib", "c", "--update", "lbfgs"),
        "Invalid --update lbfgs: use admm, admm-gradual or none");
    assertOneLineError(run("prune", "--model", model, "--out", out, "--method", "wanda", "--calib", "c", "--refine", "owl"),
        "Invalid --refine owl: use dsnot or none");
    assertOneLineError(run("prune", "--model", model, "--out", out, "--method", "magnitude", "--update", "admm"),
        "Missing --calib: --update admm and --refine dsnot work from calibration statistics");
    assertOneLineError(run("prune", "--model", model, "--out", out, "--method", "sparsegpt", "--calib", "c", "--refine", "dsnot"),
        "Cannot combine --method, --update and --refine: DSnoT refines a Wanda or RIA mask: use it with the wanda or ria method, not sparsegpt");
    assertOneLineError(run("prune", "--model", model, "--out", out, "--method", "wanda", "--calib", "c", "--update", "admm",
        "--admm-iterations", "10", "--admm-gradual-steps", "12"), "Invalid ADMM gradual steps 12: must be in [1, iterations = 10]");
    assertOneLineError(run("prune", "--model", model, "--out", out, "--method", "wanda", "--calib", "c", "--refine", "dsnot",
        "--dsnot-skip", "(mlp"), "Invalid --dsnot-skip (mlp: not a regular expression");
    assertOneLineError(run("prune", "--model", model, "--out", out, "--method", "magnitude", "--calib", "c", "--update", "admm",
        "--allocation", "global"), "--update and --refine are not supported with --allocation global yet");
    assertThat(dir.resolve("refined")).doesNotExist();
  }

  @Test
  void pruneBadInputGivesOneLineAndWritesNothing() throws IOException {
    String model = SharedData.stories260K().toString();
    Path out = dir.resolve("pruned");
    assertOneLineError(run("prune", "--model", model, "--out", out.toString(), "--method", "wanda"), "Missing --calib for --method wanda");
    assertOneLineError(run("prune", "--model", model, "--out", out.toString(), "--method", "obs"),
        "Invalid --method obs: use magnitude, wanda, sparsegpt, ria, gblm or prunerzero");
    assertOneLineError(run("prune", "--model", model, "--out", out.toString(), "--method", "magnitude", "--sparsity", "1.2"),
        "Invalid --sparsity 1.2: must be in [0, 1)");
    assertOneLineError(run("prune", "--model", model, "--out", out.toString(), "--method", "magnitude", "--pattern", "0.5"),
        "Invalid --pattern 0.5");
    // Spark local mode has no task GPU resources: a GPU stage would wait forever.
    assertOneLineError(run("prune", "--model", model, "--out", out.toString(), "--method", "magnitude", "--gpus-per-task", "1"),
        "--gpus-per-task needs a cluster master");
    assertOneLineError(run("prune", "--model", model, "--out", out.toString(), "--method", "magnitude", "--gpus-per-task", "0.7"),
        "Invalid --gpus-per-task 0.7: use a whole number, or a fraction of at most 0.5");

    // A NaN inside a weight is found by the scoring task on an executor; it still reads as one line.
    Path poisoned = ConsoleErrorsIT.poisonedStories260K(dir);
    Result nan = run("prune", "--model", poisoned.toString(), "--out", out.toString(), "--method", "magnitude");
    assertOneLineError(nan, "Cannot prune layer model.layers.2.mlp.up_proj.weight: weight [3, 5] is NaN");
    assertThat(out).doesNotExist();
    try (Stream<Path> siblings = Files.list(dir)) {
      assertThat(siblings.map(path -> path.getFileName().toString())).noneMatch(name -> name.startsWith("pruned"));
    }
  }

  /** The issue's repros: --out naming the model in another spelling, or a folder holding it; every byte stays. */
  @Test
  void pruneRefusesAnOutputThatIsOrHoldsTheModelInAnySpelling() throws IOException {
    Path model = FolderSnapshot.copyFiles(SharedData.stories260K(), dir.resolve("x/model"));
    Map<String, byte[]> dense = FolderSnapshot.of(model);
    String relative = Path.of(System.getProperty("user.dir")).toAbsolutePath().relativize(model).toString();
    for (String out : List.of(dir + "/x/./model", model + "/../model", "file://" + model, dir + "//x/model", relative)) {
      // Every spelling is qualified on the driver to the one URI the message names.
      assertOneLineError(run("prune", "--model", model.toString(), "--out", out, "--method", "magnitude", "--sparsity", "0.5"),
          "Invalid --out file:" + model + ": it is the same folder as --model file:" + model);
      assertOneLineError(run("prune", "--model", model.toString(), "--out", out, "--method", "magnitude", "--overwrite"),
          "it is the same folder as --model");
    }
    assertThat(FolderSnapshot.of(model)).containsOnlyKeys(dense.keySet()).allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(dense.get(name)));
    try (Stream<Path> siblings = Files.list(dir.resolve("x"))) {
      assertThat(siblings.map(path -> path.getFileName().toString())).containsExactly("model");
    }

    Path folder = Files.createDirectories(dir.resolve("p/out"));
    Path llama = FolderSnapshot.copyFiles(SharedData.stories260K(), folder.resolve("llama"));
    Files.writeString(folder.resolve("notes.txt"), "x");
    Map<String, byte[]> before = FolderSnapshot.of(folder);
    assertOneLineError(run("prune", "--model", llama.toString(), "--out", folder.toString(), "--method", "magnitude", "--overwrite"),
        "Invalid --out file:" + folder + ": it contains --model file:" + llama);
    assertOneLineError(run("prune", "--model", llama.toString(), "--out", llama + "/pruned", "--method", "magnitude"),
        "it lies inside --model file:" + llama);
    assertThat(FolderSnapshot.of(folder)).containsOnlyKeys(before.keySet()).allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(before.get(name)));

    Path file = Files.writeString(dir.resolve("a-file"), "x");
    assertOneLineError(run("prune", "--model", model.toString(), "--out", file + "/out", "--method", "magnitude"),
        "Cannot write --out file:" + file + "/out: file:" + file + " is a file, not a folder");
  }

  @Test
  void anExistingFolderIsReplacedOnlyWhenItIsASparkpruneOutputOrWithOverwrite() throws IOException {
    String model = SharedData.stories260K().toString();
    Path mine = Files.createDirectories(dir.resolve("mine"));
    Files.writeString(mine.resolve("notes.txt"), "my notes");
    assertOneLineError(run("prune", "--model", model, "--out", mine.toString(), "--method", "magnitude"),
        "Cannot replace --out file:" + mine + ": it exists and is not a sparkprune output (no _SPARKPRUNE_SUCCESS); choose another output"
            + " folder, or add --overwrite to replace it whole");
    assertThat(Files.readString(mine.resolve("notes.txt"))).isEqualTo("my notes");

    Result replaced = run("prune", "--model", model, "--out", mine.toString(), "--method", "magnitude", "--overwrite");
    assertThat(replaced.code()).as(replaced.err()).isZero();
    assertThat(mine.resolve("notes.txt")).doesNotExist();
    assertThat(mine.resolve("_SPARKPRUNE_SUCCESS")).isRegularFile();
    byte[] first = Files.readAllBytes(mine.resolve("model/model.safetensors"));
    // Now it is a sparkprune output: a rerun replaces it without --overwrite; an empty folder is fine too.
    Result rerun = run("prune", "--model", model, "--out", mine.toString(), "--method", "magnitude", "--sparsity", "0.6");
    assertThat(rerun.code()).as(rerun.err()).isZero();
    assertThat(Files.readAllBytes(mine.resolve("model/model.safetensors"))).isNotEqualTo(first);
    Path empty = Files.createDirectories(dir.resolve("empty"));
    Result intoEmpty = run("prune", "--model", model, "--out", empty.toString(), "--method", "magnitude");
    assertThat(intoEmpty.code()).as(intoEmpty.err()).isZero();
    assertThat(Files.readAllBytes(empty.resolve("model/model.safetensors"))).isEqualTo(first);
  }

  @Test
  void demoPrunesAGeneratedModelWithWandaAndSparseGptWithoutSharedData() throws IOException {
    Path out = dir.resolve("demo");
    Result result = run("demo", "--out", out.toString(), "--shared", dir.resolve("no-shared-data").toString());
    assertThat(result.code()).as(result.err()).isZero();
    assertThat(result.out())
        .contains("no shared data found")
        .containsPattern("dense +perplexity +[0-9.]+")
        .containsPattern("wanda 50% +perplexity +[0-9.]+ +\\(28 linears")
        .containsPattern("sparsegpt 50% +perplexity +[0-9.]+ +\\(28 linears");
    for (String method : new String[] {"wanda", "sparsegpt"}) {
      assertThat(out.resolve(method).resolve("report.json")).exists();
      assertThat(out.resolve(method).resolve("model").resolve("model.safetensors")).exists();
      assertThat(out.resolve(method).resolve("masks")).isDirectory();
    }
    // Running it again must not overwrite the outputs.
    assertOneLineError(run("demo", "--out", out.toString(), "--shared", dir.resolve("no-shared-data").toString()), "already holds a demo output");
  }

  /** Library log lines at WARN and above, as the console would show them. */
  private static final class CapturedLog extends org.apache.logging.log4j.core.appender.AbstractAppender implements AutoCloseable {
    final List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();

    CapturedLog() {
      super("captured", null, null, true, org.apache.logging.log4j.core.config.Property.EMPTY_ARRAY);
      start();
      var context = (org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager.getContext(false);
      context.getConfiguration().getRootLogger().addAppender(this, org.apache.logging.log4j.Level.WARN, null);
      context.updateLoggers();
    }

    @Override
    public void append(org.apache.logging.log4j.core.LogEvent event) {
      lines.add(event.getLevel() + " " + event.getLoggerName() + ": " + event.getMessage().getFormattedMessage());
    }

    @Override
    public void close() {
      var context = (org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager.getContext(false);
      context.getConfiguration().getRootLogger().removeAppender(getName());
      context.updateLoggers();
      stop();
    }
  }

  /**
   * A 3e38 weight is finite, so the scoring tasks' NaN check passed it, and the overflow showed up
   * as a NaN activation statistic of a later layer. The calibration step names the block whose
   * output first leaves float32's range and its largest weight. With --verbose (Spark's whole log
   * kept), the failed run's cleanup adds no "Failed to cancel job group" warning: its job had
   * already ended, so there was nothing to cancel.
   */
  @Test
  void anOverflowingWeightIsBlamedOnItsBlockAndTheCleanupAddsNoWarning() throws IOException {
    Path overflowing = FolderSnapshot.copyFiles(SharedData.stories260K(), dir.resolve("overflowing"));
    var archive = dev.sparkprune.tensorio.archive.ModelArchive.open(new dev.sparkprune.tensorio.io.LocalFileIO(), overflowing.toString());
    long row = archive.tensor("model.layers.2.mlp.up_proj.weight").fileBegin() + 4L * 3 * 64;
    java.nio.ByteBuffer huge = java.nio.ByteBuffer.allocate(4 * 64).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int c = 0; c < 64; c++) {
      huge.putFloat(3e38f);
    }
    try (var channel = java.nio.channels.FileChannel.open(overflowing.resolve("model.safetensors"), java.nio.file.StandardOpenOption.WRITE)) {
      channel.write(huge.flip(), row);
    }
    Path out = dir.resolve("overflow-out");
    Result result;
    try (CapturedLog log = new CapturedLog()) {
      result = run("prune", "--verbose", "--model", overflowing.toString(), "--out", out.toString(), "--method", "wanda", "--calib",
          SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--nsamples", "2", "--seqlen", "32", "--master", "local[2]");
      assertThat(log.lines).noneMatch(line -> line.contains("Failed to cancel job group"));
    }
    assertThat(result.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(result.err().lines().findFirst().orElse(""))
        .startsWith("sparkprune: error: Cannot calibrate block 2: its output holds ")
        .contains("although its input is finite")
        .contains("largest |weight| 3.0E38 in model.layers.2.mlp.up_proj.weight");
    assertThat(out).doesNotExist();
  }
}
