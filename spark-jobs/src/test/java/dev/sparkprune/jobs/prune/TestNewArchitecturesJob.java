package dev.sparkprune.jobs.prune;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.cli.Main;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Gemma-2, Gemma-3 and Phi-3 fixtures (and, with one 2:4 case each, DeepSeek-V3, GLM-4.5 and
 * gpt-oss) through inspect, prune (Wanda and SparseGPT, 50% and 2:4) and eval: masks meet their
 * targets on every linear, fused ones included, and the rewritten archive holds zeros exactly
 * where the masks prune.
 */
class TestNewArchitecturesJob extends SparkTestBase {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir static Path dir;

  static Path fixture(String name) {
    return SharedData.path("fixtures/models/" + name);
  }

  /**
   * Every method and target on Phi-3 (fused linears, 3 small blocks); on each Gemma the two
   * methods with the two targets crossed, to keep the suite quick (each Gemma run is a
   * sequential job over 4-6 blocks).
   */
  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of("phi3", PruningMethod.WANDA, "0.5"),
        Arguments.of("phi3", PruningMethod.WANDA, "2:4"),
        Arguments.of("phi3", PruningMethod.SPARSEGPT, "0.5"),
        Arguments.of("phi3", PruningMethod.SPARSEGPT, "2:4"),
        Arguments.of("gemma2", PruningMethod.WANDA, "0.5"),
        Arguments.of("gemma2", PruningMethod.SPARSEGPT, "2:4"),
        Arguments.of("gemma3", PruningMethod.WANDA, "2:4"),
        Arguments.of("gemma3", PruningMethod.SPARSEGPT, "0.5"),
        // The giant-MoE families: 2:4 holds per row for Wanda and for the magnitude fallback of
        // experts routed fewer than --min-expert-tokens; gpt-oss prunes its attention and each
        // expert's gate, up and down, slices of the fused BF16 tensors, 50% of every row.
        Arguments.of("deepseek_v3", PruningMethod.WANDA, "2:4"),
        Arguments.of("glm4_moe", PruningMethod.SPARSEGPT, "2:4"),
        Arguments.of("gpt_oss", PruningMethod.WANDA, "0.5"));
  }

  private static String cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).as("exit code; stderr: %s", err.toString(StandardCharsets.UTF_8)).isZero();
    return out.toString(StandardCharsets.UTF_8);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"gemma2", "gemma3", "phi3"})
  void inspectListsEveryLinearWithItsShape(String name) throws IOException {
    String table = cli("inspect", fixture(name).toString());
    ModelLayout layout = Architectures.layout(ModelArchive.open(IO, fixture(name).toString()));
    int perBlock = name.equals("phi3") ? 4 : 7;
    assertThat(table).contains("Linears        " + layout.blocks().size() * perBlock + " prunable (" + perBlock + " per block)");
    if (name.equals("phi3")) {
      assertThat(table).containsPattern("0 +self_attn\\.qkv_proj +128 x 64 +attention_input")
          .containsPattern("0 +mlp\\.gate_up_proj +256 x 64 +mlp_input")
          .doesNotContain("q_proj ");
    } else {
      assertThat(table).containsPattern("0 +self_attn\\.q_proj +128 x 64 +attention_input").containsPattern("0 +mlp\\.down_proj +64 x 128 +mlp_hidden");
    }
  }

  @org.junit.jupiter.api.Test
  void aConfigTheForwardPassCannotComputeIsOneLineExitTwo() throws IOException {
    Path archive = java.nio.file.Files.createDirectories(dir.resolve("phi3-relu"));
    for (String file : new String[] {"model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
      java.nio.file.Files.copy(fixture("phi3").resolve(file), archive.resolve(file));
    }
    String config = java.nio.file.Files.readString(fixture("phi3").resolve("config.json")).replace("\"silu\"", "\"relu\"");
    java.nio.file.Files.writeString(archive.resolve("config.json"), config);
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(new String[] {"inspect", archive.toString()}, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).isEqualTo(
        "sparkprune: error: Cannot run model_type phi3: hidden_act \"relu\" in " + archive.resolve("config.json")
            + " is not implemented; its forward pass computes [silu, swish]" + System.lineSeparator());
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("cases")
  void pruneMeetsTheTargetAndEvalRunsOnTheOutput(String name, PruningMethod method, String target) throws IOException {
    Path out = prune(name, method, target);
    Map<String, String> fallbacks = fallbacks(out);

    ModelLayout layout = Architectures.layout(ModelArchive.open(IO, fixture(name).toString()));
    Map<String, Mask> masks = TestPruneJobMasks.read(spark, out);
    assertThat(masks.keySet()).containsExactlyInAnyOrderElementsOf(layout.linears().stream().map(Linear::tensorName).toList());
    try (SafetensorsReader dense = SafetensorsReader.open(IO.newInputFile(fixture(name).resolve("model.safetensors").toString()));
        SafetensorsReader pruned = SafetensorsReader.open(IO.newInputFile(out.resolve("model/model.safetensors").toString()))) {
      for (Linear linear : layout.linears()) {
        Mask mask = masks.get(linear.tensorName());
        assertThat(mask.rows()).isEqualTo(linear.outFeatures());
        assertThat(mask.cols()).isEqualTo(linear.inFeatures());
        assertMeetsTarget(linear, mask, fallbacks.containsKey(linear.tensorName()) ? PruningMethod.MAGNITUDE : method, target);
        float[] before = GptOssExperts.outByIn(dense, linear);
        float[] after = GptOssExperts.outByIn(pruned, linear);
        for (int i = 0; i < after.length; i++) {
          boolean kept = mask.isKept(i / mask.cols(), i % mask.cols());
          if (!kept) {
            assertThat(after[i]).as("%s pruned weight %d", linear, i).isZero();
          } else if (method == PruningMethod.WANDA) {
            assertThat(after[i]).as("%s kept weight %d", linear, i).isEqualTo(before[i]);
          }
        }
      }
    }
    String eval = cli("eval", "--model", out.resolve("model").toString(), "--text",
        SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--seqlen", "32", "--max-windows", "4");
    assertThat(eval).contains("evaluated   128 tokens in 4 windows of 32").containsPattern("perplexity  [0-9.]+ \\(mean NLL [0-9.]+\\)");
  }

  /**
   * The release formats: 2:4 on the FP8 DeepSeek-V3 fixture (every linear F8_E4M3 with 128x128
   * F32 scales) and 50% on the MXFP4 gpt-oss fixture (BF16 attention, and every expert's gate, up
   * and down pruned inside the fused MXFP4 tensors). The output holds the source's tensors,
   * dtypes, shapes and order; each FP8 weight keeps its scales byte for byte and its codes where
   * kept (Wanda moves no weight, so the release rule re-quantizes a kept value to its own code:
   * checked by decoding the E4M3 bit fields here), the zero code where pruned; MXFP4 experts
   * likewise ({@link #assertMxfp4Experts}); everything else is the source's bytes; eval runs.
   */
  @ParameterizedTest(name = "{0} {1} {2}")
  @org.junit.jupiter.params.provider.CsvSource({
      "deepseek_v3_fp8, WANDA, 2:4", "deepseek_v3_fp8, SPARSEGPT, 2:4", "gpt_oss_mxfp4, WANDA, 0.5", "gpt_oss_mxfp4, SPARSEGPT, 0.5"})
  void prunesQuantizedArchivesInTheirOwnFormat(String name, PruningMethod method, String target) throws IOException {
    Path out = prune(name, method, target);
    com.fasterxml.jackson.databind.JsonNode report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.resolve("report.json").toFile());
    Map<String, Long> requantized = new java.util.HashMap<>();
    report.get("layers").forEach(layer -> requantized.put(layer.get("tensor").asText(),
        layer.path("requantization").path("blocks_requantized").asLong(0)));

    ModelLayout layout = Architectures.layout(ModelArchive.open(IO, fixture(name).toString()));
    Map<String, Mask> masks = TestPruneJobMasks.read(spark, out);
    assertThat(masks.keySet()).containsExactlyInAnyOrderElementsOf(layout.linears().stream().map(Linear::tensorName).toList());
    assertThat(java.nio.file.Files.readString(out.resolve("model/config.json")))
        .isEqualTo(java.nio.file.Files.readString(fixture(name).resolve("config.json")));
    int quantized = 0;
    try (SafetensorsReader dense = SafetensorsReader.open(IO.newInputFile(fixture(name).resolve("model.safetensors").toString()));
        SafetensorsReader pruned = SafetensorsReader.open(IO.newInputFile(out.resolve("model/model.safetensors").toString()))) {
      assertThat(pruned.tensors()).hasSameSizeAs(dense.tensors());
      for (int t = 0; t < dense.tensors().size(); t++) {
        TensorInfo before = dense.tensors().get(t);
        TensorInfo after = pruned.tensors().get(t);
        assertThat(after.name()).isEqualTo(before.name());
        assertThat(after.dtype()).as(before.name()).isEqualTo(before.dtype());
        assertThat(after.shape()).as(before.name()).isEqualTo(before.shape());
        Mask mask = masks.get(before.name());
        byte[] source = raw(dense, before);
        byte[] written = raw(pruned, after);
        if (before.name().endsWith("_blocks") || (method == PruningMethod.SPARSEGPT && before.name().endsWith("_scales"))) {
          // MXFP4 experts: checked linear by linear below. Wanda leaves every scale as it was (the loop's last branch).
          continue;
        }
        if (mask == null) {
          // Scales (SparseGPT's: checked with their weights), MXFP4 experts, norms, routers: the source's bytes.
          if (method != PruningMethod.SPARSEGPT || !before.name().endsWith("_scale_inv")) {
            assertThat(written).as(before.name()).isEqualTo(source);
          }
        } else if (before.dtype() == DType.F8_E4M3) {
          quantized++;
          assertMeetsTarget(layout.linears().stream().filter(l -> l.tensorName().equals(before.name())).findFirst().orElseThrow(),
              mask, method, "2:4");
          float[] scales = dense.readFloats(before.name() + "_scale_inv");
          int cols = (int) before.dim(1);
          int scaleCols = (cols + 127) / 128;
          if (method == PruningMethod.SPARSEGPT) {
            assertRequantizedByTheReleaseRule(before, source, written, scales, pruned.readFloats(before.name() + "_scale_inv"), mask,
                requantized.get(before.name()));
            continue;
          }
          for (int i = 0; i < written.length; i++) {
            int row = i / cols;
            int col = i % cols;
            float scale = scales[(row / 128) * scaleCols + col / 128];
            if (mask.isKept(row, col)) {
              assertThat(written[i]).as("%s kept code %d", before.name(), i).isEqualTo(source[i]);
              float value = e4m3(source[i]) * scale;
              assertThat(e4m3(written[i]) * scale).as("%s kept value %d", before.name(), i).isEqualTo(value);
            } else {
              assertThat(e4m3(written[i]) * scale).as("%s pruned value %d", before.name(), i).isZero();
            }
          }
        } else {
          float[] values = dense.readFloats(before.name());
          float[] result = pruned.readFloats(before.name());
          for (int i = 0; i < result.length; i++) {
            boolean kept = mask.isKept(i / mask.cols(), i % mask.cols());
            // SparseGPT moves kept weights; pruned ones are zero whatever the method.
            if (!kept || method == PruningMethod.WANDA) {
              assertThat(result[i]).as("%s weight %d", before.name(), i).isEqualTo(kept ? values[i] : 0f);
            }
          }
        }
      }
    }
    if (name.endsWith("mxfp4")) {
      quantized = assertMxfp4Experts(name, out, layout, masks, method, report);
    }
    assertThat(quantized).isEqualTo(
        name.endsWith("fp8") ? layout.linears().size() : (int) layout.linears().stream().filter(l -> l.fusedSlice().isPresent()).count());
    // SparseGPT moves kept weights, so some blocks are quantized anew (the path under test), and the report says so.
    assertThat(requantized.values().stream().mapToLong(Long::longValue).sum() > 0).isEqualTo(method == PruningMethod.SPARSEGPT);
    String eval = cli("eval", "--model", out.resolve("model").toString(), "--text",
        SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--seqlen", "32", "--max-windows", "4");
    assertThat(eval).contains("evaluated   128 tokens in 4 windows of 32").containsPattern("perplexity  [0-9.]+ \\(mean NLL [0-9.]+\\)");
  }

  /**
   * Every gpt-oss expert linear of an MXFP4 output, decoded from the archive's bytes here
   * ({@link GptOssExperts}): its mask meets 50% per row (Wanda; magnitude's layer-wide count for
   * an expert routed too few tokens); a pruned value is the zero code's value; Wanda changes no
   * scale and no kept code, only pruned nibbles, to 0. SparseGPT moves kept weights: a 32-value
   * group either keeps its scale and kept codes or is quantized anew by the OCP MX rule (shared
   * exponent floor(log2 amax) - 2, so the largest code of the group is 4 or 6); report.json
   * counts at least the changed groups (a re-quantized group may come back to its source codes)
   * and gives the error of each re-quantized linear.
   * Returns how many expert linears were checked.
   */
  private static int assertMxfp4Experts(String name, Path out, ModelLayout layout, Map<String, Mask> masks, PruningMethod method,
      com.fasterxml.jackson.databind.JsonNode report) throws IOException {
    Map<String, String> fallbacks = fallbacks(out);
    Map<String, com.fasterxml.jackson.databind.JsonNode> layers = new java.util.HashMap<>();
    report.get("layers").forEach(layer -> layers.put(layer.get("tensor").asText(), layer));
    int checked = 0;
    try (SafetensorsReader dense = SafetensorsReader.open(IO.newInputFile(fixture(name).resolve("model.safetensors").toString()));
        SafetensorsReader pruned = SafetensorsReader.open(IO.newInputFile(out.resolve("model/model.safetensors").toString()))) {
      for (Linear linear : layout.linears()) {
        if (linear.fusedSlice().isEmpty()) {
          continue;
        }
        checked++;
        Mask mask = masks.get(linear.tensorName());
        // SparseGPT's and magnitude's thresholds prune every tie at them: FP4 weights hold many exact zeros.
        boolean perRow = method == PruningMethod.WANDA && !fallbacks.containsKey(linear.tensorName());
        assertMeetsTarget(linear, mask, perRow ? PruningMethod.WANDA : PruningMethod.MAGNITUDE, "0.5");
        int in = mask.cols();
        int[] codesBefore = GptOssExperts.codes(dense, linear);
        int[] codesAfter = GptOssExperts.codes(pruned, linear);
        int[] scalesBefore = GptOssExperts.scales(dense, linear);
        int[] scalesAfter = GptOssExperts.scales(pruned, linear);
        float[] values = GptOssExperts.outByIn(pruned, linear);
        long changed = 0;
        for (int group = 0; group < scalesBefore.length; group++) {
          int row = group / (in / 32);
          boolean same = scalesBefore[group] == scalesAfter[group];
          float largest = 0;
          for (int i = group * 32; i < group * 32 + 32; i++) {
            if (!mask.isKept(row, i % in)) {
              assertThat(values[i]).as("%s pruned value %d", linear, i).isZero();
              if (method == PruningMethod.WANDA) {
                assertThat(codesAfter[i]).as("%s pruned code %d", linear, i).isZero();
              }
            } else {
              same &= codesBefore[i] == codesAfter[i];
            }
            largest = Math.max(largest, GptOssExperts.magnitude(codesAfter[i]));
          }
          if (method == PruningMethod.WANDA) {
            assertThat(same).as("%s group %d: Wanda keeps scale and kept codes", linear, group).isTrue();
          } else if (!same) {
            changed++;
            assertThat(largest).as("%s group %d re-quantized: largest code", linear, group).isIn(4f, 6f);
          }
        }
        com.fasterxml.jackson.databind.JsonNode requantization = layers.get(linear.tensorName()).get("requantization");
        assertThat(requantization.get("blocks").asLong()).as("%s groups", linear).isEqualTo(scalesBefore.length);
        // A group whose weights moved a little may re-quantize to its source codes (4-bit codes are
        // coarse): every changed group was re-quantized, not every re-quantized group changed.
        long reported = requantization.get("blocks_requantized").asLong();
        assertThat(reported).as("%s groups re-quantized", linear).isBetween(changed, (long) scalesBefore.length);
        double error = requantization.get("relative_frobenius_error").asDouble();
        if (reported > 0) {
          assertThat(error).as("%s re-quantization error", linear).isPositive().isLessThan(1.0);
        } else {
          assertThat(error).as("%s re-quantization error", linear).isZero();
        }
      }
    }
    return checked;
  }

  /** The linears the report says were pruned with magnitude instead (experts routed too few tokens), with why. */
  private static Map<String, String> fallbacks(Path out) throws IOException {
    Map<String, String> fallbacks = new java.util.HashMap<>();
    new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.resolve("report.json").toFile()).get("layers").forEach(layer -> {
      if (layer.has("fallback")) {
        fallbacks.put(layer.get("tensor").asText(), layer.get("fallback").asText());
      }
    });
    return fallbacks;
  }

  /** Prunes fixture {@code name} on 4 x 32 calibration tokens into a folder of its own; returns it. */
  private static Path prune(String name, PruningMethod method, String target) throws IOException {
    Path out = dir.resolve(name + "-" + method + "-" + target.replace(":", "of"));
    PruneOptions options = PruneOptions.builder()
        .model(fixture(name).toString())
        .out(out.toString())
        .method(method)
        .target(SparsityTarget.parse(target))
        .calibration(SharedData.path("data/tinystories/tinystories_val_sample.txt").toString())
        .nsamples(4)
        .seqlen(32)
        .seed(3)
        .build();
    new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
    return out;
  }

  /**
   * SparseGPT on FP8: pruned codes decode to 0; each 128x128 block either keeps the source's
   * scale and kept codes (the method moved none of its weights) or is quantized anew by the
   * release rule, scale = amax / 448, so its largest code is exactly +-448 (0x7E / 0xFE); the
   * report counts exactly the blocks that changed.
   */
  private static void assertRequantizedByTheReleaseRule(
      TensorInfo tensor, byte[] source, byte[] written, float[] sourceScales, float[] writtenScales, Mask mask, long reported) {
    int rows = (int) tensor.dim(0);
    int cols = (int) tensor.dim(1);
    int scaleCols = (cols + 127) / 128;
    long changed = 0;
    for (int br = 0; br < rows; br += 128) {
      for (int bc = 0; bc < cols; bc += 128) {
        int block = (br / 128) * scaleCols + bc / 128;
        boolean same = Float.floatToRawIntBits(sourceScales[block]) == Float.floatToRawIntBits(writtenScales[block]);
        float amax = 0;
        for (int r = br; r < Math.min(rows, br + 128); r++) {
          for (int c = bc; c < Math.min(cols, bc + 128); c++) {
            int i = r * cols + c;
            float code = e4m3(written[i]);
            if (!mask.isKept(r, c)) {
              assertThat(code * writtenScales[block]).as("%s pruned value %d", tensor.name(), i).isZero();
            } else {
              same &= written[i] == source[i];
            }
            amax = Math.max(amax, Math.abs(code));
          }
        }
        if (!same) {
          changed++;
          assertThat(amax).as("%s block %d re-quantized: largest code", tensor.name(), block).isEqualTo(448f);
        }
      }
    }
    assertThat(changed).as("%s blocks re-quantized (report.json)", tensor.name()).isEqualTo(reported);
  }

  private static byte[] raw(SafetensorsReader reader, TensorInfo tensor) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    reader.copyRaw(tensor, bytes);
    return bytes.toByteArray();
  }

  /** OCP E4M3FN from its bit fields (sign, 4 exponent bits biased by 7, 3 mantissa bits; no infinities). */
  private static float e4m3(byte code) {
    int bits = code & 0xFF;
    int exponent = (bits >> 3) & 0xF;
    int mantissa = bits & 0x7;
    assertThat(bits & 0x7F).as("NaN code").isNotEqualTo(0x7F);
    double magnitude = exponent == 0 ? mantissa / 8.0 * Math.pow(2, -6) : (1 + mantissa / 8.0) * Math.pow(2, exponent - 7);
    return (float) ((bits & 0x80) != 0 ? -magnitude : magnitude);
  }

  private static void assertMeetsTarget(Linear linear, Mask mask, PruningMethod method, String target) {
    if (target.equals("2:4")) {
      for (int r = 0; r < mask.rows(); r++) {
        for (int g = 0; g < mask.cols(); g += 4) {
          int kept = 0;
          for (int c = g; c < g + 4; c++) {
            kept += mask.isKept(r, c) ? 1 : 0;
          }
          assertThat(kept).as("%s row %d group at %d", linear, r, g).isEqualTo(2);
        }
      }
    } else if (method == PruningMethod.MAGNITUDE) {
      // Layer-wide: every |w| at or below the value at floor(numel / 2) is pruned, ties included
      // (the gpt-oss fixtures' weights are MXFP4 values: many ties).
      assertThat(mask.prunedCount()).as("%s pruned", linear).isGreaterThanOrEqualTo((long) mask.rows() * mask.cols() / 2);
    } else if (method == PruningMethod.WANDA) {
      // Wanda's comparison group is each output row, fused or not: exactly floor(cols / 2) pruned per row.
      for (int r = 0; r < mask.rows(); r++) {
        assertThat(mask.keptInRow(r)).as("%s row %d", linear, r).isEqualTo(mask.cols() - mask.cols() / 2);
      }
    } else {
      // SparseGPT thresholds each 128-column block over all rows at index floor(numel / 2): one more per block.
      long blocks = (mask.cols() + 127) / 128;
      assertThat(mask.prunedCount()).as("%s pruned", linear).isBetween((long) mask.rows() * mask.cols() / 2, (long) mask.rows() * mask.cols() / 2 + blocks);
    }
  }
}
