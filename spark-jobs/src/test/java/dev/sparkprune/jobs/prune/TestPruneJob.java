package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.allocation.OwlAllocation;
import dev.sparkprune.jobs.prune.allocation.TestGlobalAllocation;
import dev.sparkprune.jobs.prune.output.PruneReport;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.methods.LinearInputs;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The prune job end to end on the real stories260K model, calibrated on TinyStories. */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
public class TestPruneJob extends SparkTestBase {
  private static final int NSAMPLES = 8;
  private static final int SEQLEN = 128;
  private static final Map<String, Double> PERPLEXITY = new ConcurrentHashMap<>();

  @TempDir static Path dir;

  /** stories260K calibrated on TinyStories: 8 samples of 128 tokens, seed 7. */
  static PruneOptions.Builder stories(PruningMethod method, SparsityTarget target, Path out) {
    return PruneOptions.builder()
        .model(SharedData.stories260K().toString())
        .out(out.toString())
        .method(method)
        .target(target)
        .calibration(SharedData.path("data/tinystories/tinystories_val_sample.txt").toString())
        .nsamples(NSAMPLES)
        .seqlen(SEQLEN)
        .seed(7);
  }

  static PruneOptions options(PruningMethod method, SparsityTarget target, Path out, int partitions) {
    return stories(method, target, out).partitions(partitions).build();
  }

  static PruneReport run(PruneOptions options) throws IOException {
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    PruneReport report = new PruneJob(spark, options, new PrintStream(progress, true, StandardCharsets.UTF_8)).run();
    assertThat(progress.toString(StandardCharsets.UTF_8)).contains("plan: llama, 5 blocks, 35 linears").contains("published");
    return report;
  }

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(PruningMethod.MAGNITUDE, "0.5"),
        Arguments.of(PruningMethod.WANDA, "0.5"),
        Arguments.of(PruningMethod.SPARSEGPT, "0.5"),
        Arguments.of(PruningMethod.MAGNITUDE, "2:4"),
        Arguments.of(PruningMethod.WANDA, "2:4"),
        Arguments.of(PruningMethod.SPARSEGPT, "2:4"));
  }

  /** Masks as the Parquet output holds them, read back with Spark SQL. */
  public static Map<String, Mask> readMasks(Path out) {
    return TestPruneJobMasks.read(spark, out);
  }

  /**
   * The sequential protocol in one process: same samples, statistics per chunk in sample order
   * folded chunk by chunk, the kernel on each linear, hidden states advanced through the pruned block.
   */
  static Map<String, Mask> referenceMasks(PruneOptions options) throws IOException {
    return referenceMasks(options, options.mode() == PruneOptions.Mode.SEQUENTIAL);
  }

  /** With {@code sequential} false, hidden states advance through the dense block: one-shot. */
  static Map<String, Mask> referenceMasks(PruneOptions options, boolean sequential) throws IOException {
    Map<String, Mask> masks = new LinkedHashMap<>();
    referenceResults(options, sequential).forEach((name, result) -> masks.put(name, result.mask()));
    return masks;
  }

  /** As {@link #referenceMasks}, each linear's whole result (mask and weights), with the options' refinement applied. */
  static Map<String, PruneResult> referenceResults(PruneOptions options, boolean sequential) throws IOException {
    return referenceResults(options, sequential, Map.of());
  }

  /** As above, a gradient method reading each linear's G from {@code gradients} (by tensor name). */
  static Map<String, PruneResult> referenceResults(PruneOptions options, boolean sequential, Map<String, Weights> gradients)
      throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, options.model());
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    int[][] samples = dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, options.calibration().get(), tokenizer, options.nsamples(), options.seqlen(), options.seed());
    Map<String, PruneResult> results = new LinkedHashMap<>();
    CalibrationStatistics.HessianStorage storage = options.refinement().needsHessian()
        ? CalibrationStatistics.HessianStorage.DOUBLE : options.method().hessianStorage();
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      ModelLayout layout = model.layout();
      // One batch per chunk, as the job runs them: results are bit-identical for the same batch shapes only.
      HiddenStates[] hidden = new HiddenStates[(samples.length + dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples()) - 1) / dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples())];
      for (int c = 0; c < hidden.length; c++) {
        hidden[c] = model.embed(Arrays.copyOfRange(samples, c * dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples()), Math.min(samples.length, (c + 1) * dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples()))));
      }
      for (int b = 0; b < layout.blocks().size(); b++) {
        BlockWeights weights = model.loadBlock(b);
        List<Map<String, CalibrationStatistics>> chunks = new ArrayList<>();
        for (int c = 0; c < hidden.length; c++) {
          Map<String, CalibrationStatistics> chunk = new HashMap<>();
          final int block = b;
          InputHook hook = (linears, input, tokens, sequences) -> chunk
              .computeIfAbsent(dev.sparkprune.jobs.calibration.LinearInputStatistics.key(block, linears.get(0).inputGroup()),
                  key -> CalibrationStatistics.create((int) linears.get(0).inFeatures(), storage))
              .add(input, 0, tokens, sequences, NetlibLinearAlgebra.defaultInstance());
          model.runBlock(weights, hidden[c], hook);
          chunks.add(chunk);
        }
        Map<String, CalibrationStatistics> total = foldPairwise(chunks);
        BlockWeights pruned = weights;
        for (Linear linear : layout.blocks().get(b).linears()) {
          LinearInputs inputs = LinearInputs.of(
                  linear.tensorName(),
                  Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), weights.tensor(linear.tensorName())))
              .withStatistics(total.get(dev.sparkprune.jobs.calibration.LinearInputStatistics.key(b, linear.inputGroup())));
          if (gradients.containsKey(linear.tensorName())) {
            inputs = inputs.withGradient(gradients.get(linear.tensorName()));
          }
          PruneResult result = options.refinement().pruner(options.method(), options.wandaGroup()).prune(
              inputs,
              options.target(),
              CpuBackend.defaultInstance(),
              1);
          results.put(linear.tensorName(), result);
          pruned = pruned.withTensor(linear.tensorName(), result.weights());
        }
        for (int c = 0; c < hidden.length; c++) {
          hidden[c] = model.runBlock(sequential ? pruned : weights, hidden[c], InputHook.NONE);
        }
      }
    }
    return results;
  }

  static double perplexity(String model) throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, model);
    String text = Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt")).substring(0, 60_000);
    int[] corpus = TokenizerLoader.load(archive).encode(text, true);
    try (DecoderModel decoder = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      return Perplexity.evaluate(decoder, corpus, 256, 16, 4).perplexity();
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void prunesEveryLayerToTargetWithTheKernelsMasksAndAValidArchive(PruningMethod method, String targetText) throws IOException {
    SparsityTarget target = SparsityTarget.parse(targetText);
    Path out = dir.resolve(method.displayName() + "-" + targetText.replace(":", "of"));
    PruneOptions options = options(method, target, out, 0);
    PruneReport report = run(options);
    assertThat(report.layerCount()).isEqualTo(35);

    Map<String, Mask> masks = readMasks(out);
    assertThat(masks).hasSize(35);
    Map<String, Mask> expected = method == PruningMethod.MAGNITUDE ? magnitudeMasks(target) : referenceMasks(options);
    for (Map.Entry<String, Mask> entry : expected.entrySet()) {
      assertThat(masks.get(entry.getKey())).as("%s mask of %s", method, entry.getKey()).isEqualTo(entry.getValue());
    }
    for (Mask mask : masks.values()) {
      if (target.isStructured()) {
        for (int r = 0; r < mask.rows(); r++) {
          for (int g = 0; g < mask.cols(); g += 4) {
            int prunedInGroup = 0;
            for (int c = g; c < g + 4; c++) {
              prunedInGroup += mask.isKept(r, c) ? 0 : 1;
            }
            assertThat(prunedInGroup).isEqualTo(2);
          }
        }
      } else {
        // Wanda exactly 50% per row; magnitude and SparseGPT include their threshold value.
        assertThat(mask.sparsity()).isBetween(0.5, 0.5 + 1.0 / mask.cols() + 1e-9);
      }
    }
    // The report agrees with the Parquet masks, and Spark SQL reads them.
    var perLayer = spark.read().parquet(out.resolve("masks").toString())
        .groupBy("tensor").agg(org.apache.spark.sql.functions.expr("1 - sum(kept) / sum(cast(rows as bigint) * cols)").as("sparsity"))
        .collectAsList();
    assertThat(perLayer).hasSize(35);
    for (Row row : perLayer) {
      assertThat(row.getDouble(1)).isCloseTo(report.sparsityByTensor().get(row.getString(0)), org.assertj.core.data.Offset.offset(1e-12));
    }

    assertArchiveIsPrunedCopy(out.resolve("model"), masks, method != PruningMethod.SPARSEGPT);
    PERPLEXITY.put(method.displayName() + " " + targetText, perplexity(out.resolve("model").toString()));
  }

  private static Map<String, Mask> magnitudeMasks(SparsityTarget target) throws IOException {
    ModelArchive archive = ModelArchive.open(new HadoopFileIO(new Configuration()), SharedData.stories260K().toString());
    Map<String, Mask> masks = new HashMap<>();
    try (SafetensorsReader reader = archive.openShard("model.safetensors")) {
      for (Linear linear : Architectures.layout(archive).linears()) {
        Weights weights = Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), reader.readFloats(linear.tensorName()));
        masks.put(linear.tensorName(), PruningMethod.MAGNITUDE.pruner().prune(LinearInputs.of(linear.tensorName(), weights), target, CpuBackend.defaultInstance(), 1).mask());
      }
    }
    return masks;
  }

  /** Same tensors, order, dtypes and metadata; pruned entries zero; everything else byte for byte. */
  private static void assertArchiveIsPrunedCopy(Path model, Map<String, Mask> masks, boolean keptUnchanged) throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive original = ModelArchive.open(io, SharedData.stories260K().toString());
    ModelArchive pruned = ModelArchive.open(io, model.toString());
    assertThat(pruned.otherFiles()).containsExactlyInAnyOrderElementsOf(original.otherFiles());
    assertThat(Files.readString(model.resolve("config.json"))).isEqualTo(original.config().text());
    try (SafetensorsReader before = original.openShard("model.safetensors");
        SafetensorsReader after = pruned.openShard("model.safetensors")) {
      assertThat(after.metadata()).isEqualTo(before.metadata());
      assertThat(after.tensors()).extracting(TensorInfo::name).containsExactlyElementsOf(before.tensors().stream().map(TensorInfo::name).toList());
      for (TensorInfo tensor : before.tensors()) {
        assertThat(after.tensor(tensor.name()).dtype()).isEqualTo(tensor.dtype());
        Mask mask = masks.get(tensor.name());
        if (mask == null) {
          assertThat(after.readRawRows(after.tensor(tensor.name()), 0, (int) tensor.rows()))
              .as("untouched %s", tensor.name()).isEqualTo(before.readRawRows(tensor, 0, (int) tensor.rows()));
          continue;
        }
        float[] w0 = before.readFloats(tensor.name());
        float[] w1 = after.readFloats(tensor.name());
        for (int r = 0; r < mask.rows(); r++) {
          for (int c = 0; c < mask.cols(); c++) {
            float value = w1[r * mask.cols() + c];
            if (!mask.isKept(r, c)) {
              assertThat(value).isEqualTo(0f);
            } else if (keptUnchanged) {
              assertThat(value).isEqualTo(w0[r * mask.cols() + c]);
            }
          }
        }
      }
    }
  }

  /**
   * Runs after the six prune cases (the class orders this test last) on the perplexities they
   * recorded; shows as skipped, with the reason, when a filter or a failure left some out.
   */
  @Test
  @Order(Integer.MAX_VALUE)
  void calibratedMethodsBeatMagnitude() throws IOException {
    assumeTrue(PERPLEXITY.size() == cases().count(),
        () -> "only " + new java.util.TreeSet<>(PERPLEXITY.keySet()) + " of the " + cases().count()
            + " prune cases ran in this class (a test filter, or one failed): skipping the perplexity comparison");
    double dense = perplexity(SharedData.stories260K().toString());
    System.out.printf("perplexity: dense %.3f, pruned %s%n", dense, new java.util.TreeMap<>(PERPLEXITY));
    for (String target : List.of("0.5", "2:4")) {
      double magnitude = PERPLEXITY.get("magnitude " + target);
      for (String method : List.of("wanda", "sparsegpt")) {
        double ppl = PERPLEXITY.get(method + " " + target);
        assertThat(ppl).as("%s %s vs dense", method, target).isGreaterThan(dense);
        assertThat(ppl).as("%s %s vs magnitude %s", method, target, magnitude).isLessThan(0.6 * magnitude);
      }
    }
  }

  static PruneOptions.Builder oneShot(PruningMethod method, SparsityTarget target, Path out) {
    return stories(method, target, out).mode(PruneOptions.Mode.ONE_SHOT);
  }

  @Test
  void oneShotScoresEveryLayerFromDenseStatistics() throws IOException {
    Path out = dir.resolve("one-shot-wanda");
    PruneOptions options = oneShot(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), out).build();
    run(options);
    Map<String, Mask> expected = referenceMasks(options, false);
    assertThat(readMasks(out)).isEqualTo(expected);
    assertThat(expected).isNotEqualTo(referenceMasks(options, true));
  }

  @Test
  void savedStatisticsServeAnotherSparsityWithIdenticalResults() throws IOException {
    Path first = dir.resolve("stats-source");
    run(oneShot(PruningMethod.SPARSEGPT, SparsityTarget.unstructured(0.5), first).saveStatistics(true).build());
    Path stats = first.resolve("stats");
    assertThat(stats.resolve("stats.json")).exists();
    assertThat(Files.readString(stats.resolve("stats.json"))).contains("\"hessian\" : true").contains("0/attention_input");

    Path reused = dir.resolve("stats-reused");
    run(oneShot(PruningMethod.SPARSEGPT, SparsityTarget.nOfM(2, 4), reused).calibration(null).statistics(stats.toString()).build());
    Path fresh = dir.resolve("stats-fresh");
    run(oneShot(PruningMethod.SPARSEGPT, SparsityTarget.nOfM(2, 4), fresh).build());
    assertThat(readMasks(reused)).isEqualTo(readMasks(fresh));
    assertThat(Files.readAllBytes(reused.resolve("model/model.safetensors"))).isEqualTo(Files.readAllBytes(fresh.resolve("model/model.safetensors")));

    // Wanda-only statistics cannot serve SparseGPT; sequential runs cannot save or reuse them.
    Path wandaStats = dir.resolve("wanda-stats");
    run(oneShot(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), wandaStats).saveStatistics(true).build());
    assertThatThrownBy(() -> run(oneShot(PruningMethod.SPARSEGPT, SparsityTarget.unstructured(0.5), dir.resolve("x"))
            .calibration(null).statistics(wandaStats.resolve("stats").toString()).build()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("hold no X^T X");
    assertThatThrownBy(() -> options(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), dir.resolve("y"), 0).toString()
            .concat(PruneOptions.builder().model("m").out("o").method(PruningMethod.WANDA).target(SparsityTarget.unstructured(0.5))
                .calibration("c").saveStatistics(true).build().toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("--save-stats needs --mode one-shot");
  }

  @Test
  void preTokenizedCalibrationIsUsedAsGivenFromJsonlAndParquet() throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    Tokenizer tokenizer = TokenizerLoader.load(ModelArchive.open(io, SharedData.stories260K().toString()));
    int[][] rows = dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), tokenizer, 9, SEQLEN, 3);
    Path jsonl = dir.resolve("calib.jsonl");
    StringBuilder lines = new StringBuilder();
    for (int[] row : rows) {
      lines.append("{\"input_ids\": ").append(Arrays.toString(row)).append("}\n");
    }
    Files.writeString(jsonl, lines);
    Path parquet = dir.resolve("calib-parquet");
    List<Row> records = new java.util.ArrayList<>();
    for (int[] row : rows) {
      records.add(org.apache.spark.sql.RowFactory.create((Object) Arrays.stream(row).boxed().toArray(Integer[]::new)));
    }
    var schema = new org.apache.spark.sql.types.StructType().add("input_ids",
        org.apache.spark.sql.types.DataTypes.createArrayType(org.apache.spark.sql.types.DataTypes.IntegerType));
    spark.createDataFrame(records, schema).coalesce(1).write().parquet(parquet.toString());
    for (Path source : List.of(jsonl, parquet)) {
      int[][] samples = dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, source.toString(), tokenizer, NSAMPLES, SEQLEN, 99);
      assertThat(samples).isDeepEqualTo(Arrays.copyOf(rows, NSAMPLES));
    }
    Path out = dir.resolve("pretokenized");
    PruneOptions options = PruneOptions.builder().model(SharedData.stories260K().toString()).out(out.toString())
        .method(PruningMethod.WANDA).target(SparsityTarget.unstructured(0.5)).calibration(jsonl.toString())
        .nsamples(NSAMPLES).seqlen(SEQLEN).build();
    run(options);
    assertThat(readMasks(out)).isEqualTo(referenceMasks(options));

    Path huge = dir.resolve("calib-huge-id");
    var longSchema = new org.apache.spark.sql.types.StructType().add("input_ids",
        org.apache.spark.sql.types.DataTypes.createArrayType(org.apache.spark.sql.types.DataTypes.LongType));
    spark.createDataFrame(List.of(org.apache.spark.sql.RowFactory.create((Object) new Long[] {1L, 1L << 40})), longSchema)
        .coalesce(1).write().parquet(huge.toString());
    assertThatThrownBy(() -> dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, huge.toString(), tokenizer, 1, 2, 0))
        .isInstanceOf(ValidationException.class).hasMessageContaining("input_ids[1] = 1099511627776 is not a token id");
    assertThatThrownBy(() -> dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, jsonl.toString(), tokenizer, 10, SEQLEN, 0))
        .isInstanceOf(ValidationException.class).hasMessageContaining("9 input_ids rows, fewer than --nsamples 10");
    // From Parquet footers, before Spark would start: the rows are counted, not read.
    assertThatThrownBy(() -> JobInputs.open(io, PruneOptions.builder().model(SharedData.stories260K().toString()).out(out.toString())
        .method(PruningMethod.WANDA).target(SparsityTarget.unstructured(0.5)).calibration(parquet.toString()).nsamples(10).seqlen(SEQLEN).build()))
        .isInstanceOf(ValidationException.class).hasMessageContaining("9 input_ids rows, fewer than --nsamples 10");
    assertThatThrownBy(() -> dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, jsonl.toString(), tokenizer, 2, 64, 0))
        .isInstanceOf(ValidationException.class).hasMessageContaining("row 0").hasMessageContaining("128 input_ids, expected --seqlen 64");
  }

  @Test
  void oneAndThreePartitionsGiveBitIdenticalOutputs() throws IOException {
    SparsityTarget target = SparsityTarget.unstructured(0.5);
    Path one = dir.resolve("p1");
    Path three = dir.resolve("p3");
    run(options(PruningMethod.SPARSEGPT, target, one, 1));
    run(options(PruningMethod.SPARSEGPT, target, three, 3));
    assertThat(Files.readAllBytes(three.resolve("model/model.safetensors"))).isEqualTo(Files.readAllBytes(one.resolve("model/model.safetensors")));
    assertThat(readMasks(three)).isEqualTo(readMasks(one));
  }

  @Test
  void rerunIsIdempotentAndAFailedRunLeavesTheEarlierOutputUntouched() throws IOException {
    Path out = dir.resolve("rerun");
    PruneOptions options = options(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), out, 0);
    run(options);
    byte[] first = Files.readAllBytes(out.resolve("model/model.safetensors"));
    run(options);
    assertThat(Files.readAllBytes(out.resolve("model/model.safetensors"))).isEqualTo(first);

    Path tiny = dir.resolve("tiny.txt");
    Files.writeString(tiny, "Too short to calibrate on.");
    PruneOptions failing = PruneOptions.builder().model(options.model()).out(out.toString()).method(PruningMethod.WANDA)
        .target(SparsityTarget.unstructured(0.5)).calibration(tiny.toString()).nsamples(2).seqlen(SEQLEN).build();
    assertThatThrownBy(() -> run(failing)).isInstanceOf(ValidationException.class).hasMessageContaining("fewer than one sample");
    assertThat(Files.readAllBytes(out.resolve("model/model.safetensors"))).isEqualTo(first);
    try (Stream<Path> siblings = Files.list(dir)) {
      assertThat(siblings.map(path -> path.getFileName().toString())).noneMatch(name -> name.contains(".staging-") || name.contains(".replaced-"));
    }
  }

  @Test
  void otherWeightFormatsBesideTheSafetensorsAreNeverCopied() throws IOException {
    Path model = dir.resolve("with-pickle");
    Files.createDirectories(model);
    try (Stream<Path> files = Files.list(SharedData.stories260K())) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Files.copy(file, model.resolve(file.getFileName()));
      }
    }
    Files.write(model.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2, 'u', 'n', 'p', 'r', 'u', 'n', 'e', 'd'});
    Path out = dir.resolve("without-pickle");
    run(PruneOptions.builder().model(model.toString()).out(out.toString()).method(PruningMethod.MAGNITUDE)
        .target(SparsityTarget.unstructured(0.5)).build());
    assertThat(out.resolve("model/pytorch_model.bin")).doesNotExist();
    assertThat(out.resolve("model/tokenizer.json")).exists();
    assertThat(out.resolve("model/generation_config.json")).exists();
  }

  @Test
  void configRulesSkipLayersAndSetMethodsAndPatternsPerLayer() throws IOException {
    Path rules = dir.resolve("rules.yaml");
    Files.writeString(rules, String.join("\n",
        "rules:",
        "  - match: \"model\\\\.layers\\\\.0\\\\..*\"",
        "    skip: true",
        "  - match: \".*mlp.*\"",
        "    method: sparsegpt",
        "  - match: \".*o_proj.*\"",
        "    pattern: \"2:4\"",
        ""));
    Path out = dir.resolve("with-rules");
    PruneReport report = run(stories(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), out).config(rules.toString()).build());
    assertThat(report.layerCount()).isEqualTo(28);
    Map<String, Mask> masks = readMasks(out);
    assertThat(masks.keySet()).noneMatch(name -> name.startsWith("model.layers.0."));
    for (Map.Entry<String, Mask> entry : masks.entrySet()) {
      if (entry.getKey().contains("o_proj")) {
        for (int r = 0; r < entry.getValue().rows(); r++) {
          for (int g = 0; g < 64; g += 4) {
            int pruned = 0;
            for (int c = g; c < g + 4; c++) {
              pruned += entry.getValue().isKept(r, c) ? 0 : 1;
            }
            assertThat(pruned).isEqualTo(2);
          }
        }
      }
    }
    var layers = report.json().get("layers");
    for (var layer : layers) {
      boolean mlp = layer.get("tensor").asText().contains(".mlp.");
      assertThat(layer.has("reconstruction_loss")).as(layer.get("tensor").asText()).isEqualTo(mlp);
    }
    try (SafetensorsReader before = ModelArchive.open(new HadoopFileIO(new Configuration()), SharedData.stories260K().toString()).openShard("model.safetensors");
        SafetensorsReader after = ModelArchive.open(new HadoopFileIO(new Configuration()), out.resolve("model").toString()).openShard("model.safetensors")) {
      TensorInfo skipped = before.tensor("model.layers.0.mlp.up_proj.weight");
      assertThat(after.readRawRows(after.tensor(skipped.name()), 0, (int) skipped.rows())).isEqualTo(before.readRawRows(skipped, 0, (int) skipped.rows()));
    }
  }

  /** Dense statistics of every block, one process, folded per chunk as the job folds them. */
  static Map<String, CalibrationStatistics> denseStatistics(PruneOptions options) throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, options.model());
    int[][] samples = dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, options.calibration().get(), TokenizerLoader.load(archive), options.nsamples(), options.seqlen(), options.seed());
    Map<String, CalibrationStatistics> total = new HashMap<>();
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      // One batch per chunk, as the job runs them: results are bit-identical for the same batch shapes only.
      HiddenStates[] hidden = new HiddenStates[(samples.length + dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples()) - 1) / dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples())];
      for (int c = 0; c < hidden.length; c++) {
        hidden[c] = model.embed(Arrays.copyOfRange(samples, c * dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples()), Math.min(samples.length, (c + 1) * dev.sparkprune.jobs.calibration.CalibrationSource.chunkSize(options.nsamples()))));
      }
      for (int b = 0; b < model.layout().blocks().size(); b++) {
        BlockWeights weights = model.loadBlock(b);
        List<Map<String, CalibrationStatistics>> chunks = new ArrayList<>();
        for (int c = 0; c < hidden.length; c++) {
          Map<String, CalibrationStatistics> chunk = new HashMap<>();
          final int block = b;
          InputHook hook = (linears, input, tokens, sequences) -> chunk
              .computeIfAbsent(dev.sparkprune.jobs.calibration.LinearInputStatistics.key(block, linears.get(0).inputGroup()),
                  key -> CalibrationStatistics.create((int) linears.get(0).inFeatures(), CalibrationStatistics.HessianStorage.NONE))
              .add(input, 0, tokens, sequences, NetlibLinearAlgebra.defaultInstance());
          hidden[c] = model.runBlock(weights, hidden[c], hook);
          chunks.add(chunk);
        }
        total.putAll(foldPairwise(chunks));
      }
    }
    return total;
  }

  @Test
  void owlOutlierRatiosEqualADirectComputationAndSetPerBlockTargets() throws IOException {
    Path out = dir.resolve("owl");
    PruneOptions options = stories(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), out).allocation(PruneOptions.Allocation.OWL).build();
    PruneReport report = run(options);

    Map<String, CalibrationStatistics> statistics = denseStatistics(options);
    ModelArchive archive = ModelArchive.open(new HadoopFileIO(new Configuration()), options.model());
    double[] sums = new double[5];
    long[] counts = new long[5];
    Map<Integer, List<float[]>> scores = new HashMap<>();
    try (SafetensorsReader reader = archive.openShard("model.safetensors")) {
      for (Linear linear : Architectures.layout(archive).linears()) {
        float[] w = reader.readFloats(linear.tensorName());
        float[] scaler = statistics.get(dev.sparkprune.jobs.calibration.LinearInputStatistics.key(linear.block(), linear.inputGroup())).scalerRow();
        float[] s = new float[w.length];
        for (int i = 0; i < w.length; i++) {
          s[i] = Math.abs(w[i]) * (float) Math.sqrt(scaler[i % (int) linear.inFeatures()]);
          sums[linear.block()] += s[i];
        }
        counts[linear.block()] += s.length;
        scores.computeIfAbsent(linear.block(), key -> new java.util.ArrayList<>()).add(s);
      }
    }
    double[] ratios = new double[5];
    var blocks = report.json().get("allocation").get("blocks");
    for (int b = 0; b < 5; b++) {
      double threshold = 5 * sums[b] / counts[b];
      long above = 0;
      for (float[] s : scores.get(b)) {
        for (float value : s) {
          above += value > threshold ? 1 : 0;
        }
      }
      ratios[b] = 100.0 * above / counts[b];
      assertThat(blocks.get(b).get("outlier_ratio_percent").asDouble()).as("block %d", b).isCloseTo(ratios[b], org.assertj.core.data.Offset.offset(1e-9));
    }
    assertThat(Arrays.stream(ratios).distinct().count()).isGreaterThan(1);
    SparsityTarget[] targets = OwlAllocation.targets(ratios, SparsityTarget.unstructured(0.5), 0.08);
    double meanSparsity = 0;
    for (int b = 0; b < 5; b++) {
      assertThat(blocks.get(b).get("target").asText()).isEqualTo(targets[b].toString());
      meanSparsity += targets[b].ratio() / 5;
    }
    assertThat(meanSparsity).isCloseTo(0.5, org.assertj.core.data.Offset.offset(1e-9));
    // The block with the most outliers is pruned least.
    int most = 0;
    for (int b = 1; b < 5; b++) {
      most = ratios[b] > ratios[most] ? b : most;
    }
    for (int b = 0; b < 5; b++) {
      assertThat(targets[most].ratio()).isLessThanOrEqualTo(targets[b].ratio());
    }
    for (var layer : report.json().get("layers")) {
      int cols = layer.get("cols").asInt();
      double expected = Math.floor(cols * targets[layer.get("block").asInt()].ratio()) / cols;
      assertThat(layer.get("sparsity").asDouble()).as(layer.get("tensor").asText()).isCloseTo(expected, org.assertj.core.data.Offset.offset(1e-12));
    }
  }

  @Test
  void wandaComparedPerLayerUniformlyAndGloballyFromDenseStatistics() throws IOException {
    Path uniform = dir.resolve("wanda-layer");
    PruneReport perLayer = run(stories(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), uniform)
        .wandaGroup(dev.sparkprune.scoring.methods.Wanda.Group.MATRIX).build());
    for (var layer : perLayer.json().get("layers")) {
      // One threshold per matrix, the threshold value itself included.
      assertThat(layer.get("sparsity").asDouble()).isBetween(0.5, 0.5 + 1.0 / (layer.get("rows").asInt() * layer.get("cols").asInt()) + 1e-9);
    }

    Path out = dir.resolve("wanda-global");
    PruneOptions options = stories(PruningMethod.WANDA, SparsityTarget.unstructured(0.5), out)
        .wandaGroup(dev.sparkprune.scoring.methods.Wanda.Group.MATRIX).allocation(PruneOptions.Allocation.GLOBAL).build();
    PruneReport report = run(options);
    Map<String, CalibrationStatistics> statistics = denseStatistics(options);
    ModelArchive archive = ModelArchive.open(new HadoopFileIO(new Configuration()), options.model());
    Map<String, float[]> scores = new LinkedHashMap<>();
    Map<String, Long> caps = new LinkedHashMap<>();
    long total = 0;
    try (SafetensorsReader reader = archive.openShard("model.safetensors")) {
      for (Linear linear : Architectures.layout(archive).linears()) {
        float[] w = reader.readFloats(linear.tensorName());
        float[] scaler = statistics.get(dev.sparkprune.jobs.calibration.LinearInputStatistics.key(linear.block(), linear.inputGroup())).scalerRow();
        float[] s = new float[w.length];
        for (int i = 0; i < w.length; i++) {
          s[i] = Math.abs(w[i]) * (float) Math.sqrt(scaler[i % (int) linear.inFeatures()]);
        }
        scores.put(linear.tensorName(), s);
        caps.put(linear.tensorName(), s.length - (long) Math.ceil(0.01 * s.length));
        total += s.length;
      }
    }
    float threshold = TestGlobalAllocation.bruteForce(scores, caps, (long) (total * 0.5));
    assertThat((float) report.json().get("allocation").get("threshold").asDouble()).isEqualTo(threshold);
    Map<String, Mask> masks = readMasks(out);
    for (Map.Entry<String, float[]> layer : scores.entrySet()) {
      long atOrBelow = 0;
      for (float value : layer.getValue()) {
        atOrBelow += value <= threshold ? 1 : 0;
      }
      assertThat(masks.get(layer.getKey()).prunedCount()).isEqualTo(Math.min(atOrBelow, caps.get(layer.getKey())));
    }
  }

  @Test
  void patternThatDoesNotDivideInFeaturesFailsBeforeAnyWork() {
    Path out = dir.resolve("bad-pattern");
    // Resolved outside the lambda, so an absent ../shared skips the test rather than failing it.
    PruneOptions options = options(PruningMethod.WANDA, SparsityTarget.nOfM(3, 5), out, 0);
    assertThatThrownBy(() -> run(options))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("M = 5 does not divide in_features 64");
    assertThat(Files.exists(out)).isFalse();
    assertThat(Arrays.asList(dir.toFile().list())).noneMatch(name -> name.startsWith("bad-pattern"));
  }

  /**
   * GPT-2 stores its Conv1D weights [in, out]. The job prunes them as [out, in] and writes them
   * back in the stored orientation: every stored weight is either unchanged (its mask bit kept)
   * or zero, and the pruned ones are the smaller half by magnitude. Needs no ../shared.
   */
  @Test
  void transposedConv1DWeightsArePrunedAndWrittenBackInTheirStoredOrientation() throws IOException {
    Path model = dir.resolve("gpt2-synthetic");
    dev.sparkprune.tensorio.synthetic.SyntheticArchive.builder(dev.sparkprune.tensorio.synthetic.SyntheticArchive.gpt2Config(16, 2, 2, 40, 16))
        .dtype(dev.sparkprune.tensorio.DType.F32).seed(5).build().write(new dev.sparkprune.tensorio.io.LocalFileIO(), model.toString());
    Path out = dir.resolve("gpt2-pruned");
    new PruneJob(spark, PruneOptions.builder().model(model.toString()).out(out.toString()).method(PruningMethod.MAGNITUDE)
        .target(SparsityTarget.unstructured(0.5)).build(), new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
    Map<String, Mask> masks = TestPruneJobMasks.read(spark, out);
    ModelLayout layout = Architectures.layout(ModelArchive.open(new dev.sparkprune.tensorio.io.LocalFileIO(), model.toString()));
    int transposed = 0;
    try (SafetensorsReader original = SafetensorsReader.open(new dev.sparkprune.tensorio.io.LocalFileIO().newInputFile(model.resolve("model.safetensors").toString()));
        SafetensorsReader pruned = SafetensorsReader.open(new dev.sparkprune.tensorio.io.LocalFileIO().newInputFile(out.resolve("model/model.safetensors").toString()))) {
      for (Linear linear : layout.linears()) {
        transposed += linear.storedTransposed() ? 1 : 0;
        int outFeatures = (int) linear.outFeatures();
        int inFeatures = (int) linear.inFeatures();
        Mask mask = masks.get(linear.tensorName());
        assertThat(mask.rows()).isEqualTo(outFeatures);
        assertThat(mask.cols()).isEqualTo(inFeatures);
        float[] before = original.readFloats(linear.tensorName());
        float[] after = pruned.readFloats(linear.tensorName());
        float largestPruned = 0;
        float smallestKept = Float.POSITIVE_INFINITY;
        for (int o = 0; o < outFeatures; o++) {
          for (int i = 0; i < inFeatures; i++) {
            int stored = linear.storedTransposed() ? i * outFeatures + o : o * inFeatures + i;
            if (mask.isKept(o, i)) {
              assertThat(after[stored]).isEqualTo(before[stored]);
              smallestKept = Math.min(smallestKept, Math.abs(before[stored]));
            } else {
              assertThat(after[stored]).isZero();
              largestPruned = Math.max(largestPruned, Math.abs(before[stored]));
            }
          }
        }
        assertThat(largestPruned).as(linear.tensorName()).isLessThanOrEqualTo(smallestKept);
      }
    }
    assertThat(transposed).as("GPT-2's Conv1D linears").isPositive();
  }

  /**
   * The job's fold of per-chunk statistics, written out directly: a pairwise tree over chunks
   * 0 .. n-1, each node merging its left half's fold with its right half's (or the left alone
   * where the right holds no chunk); the root covers the smallest power of two >= n.
   */
  static Map<String, CalibrationStatistics> foldPairwise(List<Map<String, CalibrationStatistics>> chunks) {
    int size = 1;
    while (size < chunks.size()) {
      size *= 2;
    }
    return foldNode(chunks, 0, size);
  }

  private static Map<String, CalibrationStatistics> foldNode(List<Map<String, CalibrationStatistics>> chunks, int first, int size) {
    if (size == 1) {
      return chunks.get(first);
    }
    Map<String, CalibrationStatistics> left = foldNode(chunks, first, size / 2);
    if (first + size / 2 >= chunks.size()) {
      return left;
    }
    Map<String, CalibrationStatistics> right = foldNode(chunks, first + size / 2, size / 2);
    right.forEach((key, value) -> left.merge(key, value, CalibrationStatistics::merge));
    return left;
  }
}
