package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Layout bugs show as differences between twins that must compute the same function. */
class TestLayoutTwins {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path dir;

  private static float[] read(SafetensorsReader reader, String name) throws IOException {
    return reader.readFloats(name);
  }

  @Test
  void groupedQueryAttentionEqualsMultiHeadWithRepeatedKeyValueHeads() throws IOException {
    int hidden = 32;
    int heads = 4;
    int headDim = 8;
    ObjectNode gqaConfig = SyntheticArchive.llamaConfig(hidden, 2, heads, 2, 48, 64);
    Path gqa = dir.resolve("gqa");
    SyntheticArchive.builder(gqaConfig).dtype(DType.F32).initStd(0.3f).seed(9).build().write(IO, gqa.toString());

    // The twin: 4 KV heads, query head h reading what kv head h / 2 held.
    Path mha = dir.resolve("mha");
    Files.createDirectories(mha);
    ObjectNode mhaConfig = gqaConfig.deepCopy().put("num_key_value_heads", heads);
    Files.writeString(mha.resolve("config.json"), new ObjectMapper().writeValueAsString(mhaConfig));
    try (SafetensorsReader reader = SafetensorsReader.open(IO.newInputFile(gqa.resolve("model.safetensors").toString()));
        OutputStream out = Files.newOutputStream(mha.resolve("model.safetensors"))) {
      List<TensorSpec> specs = new ArrayList<>();
      List<float[]> values = new ArrayList<>();
      for (TensorInfo tensor : reader.tensors()) {
        float[] data = read(reader, tensor.name());
        long[] shape = tensor.shape();
        if (tensor.name().contains("k_proj") || tensor.name().contains("v_proj")) {
          float[] repeated = new float[heads * headDim * hidden];
          for (int h = 0; h < heads; h++) {
            System.arraycopy(data, (h / 2) * headDim * hidden, repeated, h * headDim * hidden, headDim * hidden);
          }
          data = repeated;
          shape = new long[] {heads * headDim, hidden};
        }
        specs.add(new TensorSpec(tensor.name(), DType.F32, shape));
        values.add(data);
      }
      try (SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of())) {
        for (float[] data : values) {
          writer.writeFloats(data, 0, data.length);
        }
      }
    }
    int[][] tokens = TestArchitectureForwards.randomTokens(2, 10, 64, 10);
    try (DecoderModel a = Models.open(ModelArchive.open(IO, gqa.toString()), TestArchitectureForwards.LINALG);
        DecoderModel b = Models.open(ModelArchive.open(IO, mha.toString()), TestArchitectureForwards.LINALG)) {
      float[] expected = b.logits(b.forward(tokens), 1);
      float[] actual = a.logits(a.forward(tokens), 1);
      for (int i = 0; i < expected.length; i++) {
        assertThat(actual[i]).isCloseTo(expected[i], Offset.offset(1e-5f));
      }
    }
  }

  /** GPT-2 computed with plain loops straight from the checkpoint's [in, out] Conv1D weights. */
  @Test
  void gpt2MatchesAnIndependentForwardOnStoredConv1DWeights() throws IOException {
    int hidden = 16;
    int heads = 2;
    int vocab = 40;
    Path archive = dir.resolve("gpt2");
    SyntheticArchive.builder(SyntheticArchive.gpt2Config(hidden, 1, heads, vocab, 16)).dtype(DType.F32).initStd(0.3f).seed(11).build()
        .write(IO, archive.toString());
    int[] tokens = {3, 17, 5, 39, 0, 22};
    int length = tokens.length;
    double[][] logits;
    try (SafetensorsReader r = SafetensorsReader.open(IO.newInputFile(archive.resolve("model.safetensors").toString()))) {
      String p = "transformer.";
      float[] wte = read(r, p + "wte.weight");
      float[] wpe = read(r, p + "wpe.weight");
      double[][] h = new double[length][hidden];
      for (int t = 0; t < length; t++) {
        for (int i = 0; i < hidden; i++) {
          h[t][i] = wte[tokens[t] * hidden + i] + wpe[t * hidden + i];
        }
      }
      double[][] x = norm(h, read(r, p + "h.0.ln_1.weight"), read(r, p + "h.0.ln_1.bias"));
      double[][] qkv = conv1d(x, read(r, p + "h.0.attn.c_attn.weight"), read(r, p + "h.0.attn.c_attn.bias"), 3 * hidden);
      int headDim = hidden / heads;
      double[][] attention = new double[length][hidden];
      for (int head = 0; head < heads; head++) {
        for (int i = 0; i < length; i++) {
          double[] weights = new double[i + 1];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= i; j++) {
            double dot = 0;
            for (int d = 0; d < headDim; d++) {
              dot += qkv[i][head * headDim + d] * qkv[j][hidden + head * headDim + d];
            }
            weights[j] = dot / Math.sqrt(headDim);
            max = Math.max(max, weights[j]);
          }
          double sum = 0;
          for (int j = 0; j <= i; j++) {
            weights[j] = Math.exp(weights[j] - max);
            sum += weights[j];
          }
          for (int j = 0; j <= i; j++) {
            for (int d = 0; d < headDim; d++) {
              attention[i][head * headDim + d] += weights[j] / sum * qkv[j][2 * hidden + head * headDim + d];
            }
          }
        }
      }
      add(h, conv1d(attention, read(r, p + "h.0.attn.c_proj.weight"), read(r, p + "h.0.attn.c_proj.bias"), hidden));
      double[][] inner = conv1d(norm(h, read(r, p + "h.0.ln_2.weight"), read(r, p + "h.0.ln_2.bias")),
          read(r, p + "h.0.mlp.c_fc.weight"), read(r, p + "h.0.mlp.c_fc.bias"), 4 * hidden);
      for (double[] row : inner) {
        for (int i = 0; i < row.length; i++) {
          row[i] = 0.5 * row[i] * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (row[i] + 0.044715 * Math.pow(row[i], 3))));
        }
      }
      add(h, conv1d(inner, read(r, p + "h.0.mlp.c_proj.weight"), read(r, p + "h.0.mlp.c_proj.bias"), hidden));
      double[][] last = norm(h, read(r, p + "ln_f.weight"), read(r, p + "ln_f.bias"));
      logits = new double[length][vocab];
      for (int t = 0; t < length; t++) {
        for (int v = 0; v < vocab; v++) {
          for (int i = 0; i < hidden; i++) {
            logits[t][v] += last[t][i] * wte[v * hidden + i];
          }
        }
      }
    }
    try (DecoderModel model = Models.open(ModelArchive.open(IO, archive.toString()), TestArchitectureForwards.LINALG)) {
      float[] actual = model.logits(model.forward(new int[][] {tokens}), 0);
      for (int t = 0; t < length; t++) {
        for (int v = 0; v < vocab; v++) {
          assertThat((double) actual[t * vocab + v]).as("logit [%d][%d]", t, v).isCloseTo(logits[t][v], Offset.offset(1e-4));
        }
      }
    }
  }

  private static double[][] conv1d(double[][] x, float[] weight, float[] bias, int out) {
    int in = x[0].length;
    double[][] y = new double[x.length][out];
    for (int t = 0; t < x.length; t++) {
      for (int o = 0; o < out; o++) {
        double sum = bias[o];
        for (int i = 0; i < in; i++) {
          sum += x[t][i] * weight[i * out + o];
        }
        y[t][o] = sum;
      }
    }
    return y;
  }

  private static double[][] norm(double[][] x, float[] weight, float[] bias) {
    double[][] y = new double[x.length][x[0].length];
    for (int t = 0; t < x.length; t++) {
      double mean = 0;
      for (double v : x[t]) {
        mean += v / x[t].length;
      }
      double variance = 0;
      for (double v : x[t]) {
        variance += (v - mean) * (v - mean) / x[t].length;
      }
      for (int i = 0; i < x[t].length; i++) {
        y[t][i] = (x[t][i] - mean) / Math.sqrt(variance + 1e-5) * weight[i] + bias[i];
      }
    }
    return y;
  }

  private static void add(double[][] target, double[][] addend) {
    for (int t = 0; t < target.length; t++) {
      for (int i = 0; i < target[t].length; i++) {
        target[t][i] += addend[t][i];
      }
    }
  }

  @Test
  void partialRotaryTouchesOnlyTheFirstRotaryDimensionsOfEachHead() {
    ModelConfig config = ModelConfig.parse("config.json", "{\"model_type\":\"gpt_neox\",\"rotary_emb_base\":10000}");
    int headDim = 16;
    int rotaryDim = 4;
    int heads = 2;
    Rope rope = new Rope(config, headDim, rotaryDim, 32);
    float[] x = new float[3 * heads * headDim];
    SplittableRandom random = new SplittableRandom(1);
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextDouble();
    }
    float[] rotated = x.clone();
    rope.apply(rotated, 1, 3, heads);
    for (int p = 0; p < 3; p++) {
      for (int h = 0; h < heads; h++) {
        int head = (p * heads + h) * headDim;
        for (int d = rotaryDim; d < headDim; d++) {
          assertThat(rotated[head + d]).isEqualTo(x[head + d]);
        }
        for (int i = 0; i < rotaryDim / 2; i++) {
          double angle = p / Math.pow(10000, 2.0 * i / rotaryDim);
          double x1 = x[head + i];
          double x2 = x[head + i + rotaryDim / 2];
          assertThat((double) rotated[head + i]).isCloseTo(x1 * Math.cos(angle) - x2 * Math.sin(angle), Offset.offset(1e-6));
          assertThat((double) rotated[head + i + rotaryDim / 2]).isCloseTo(x2 * Math.cos(angle) + x1 * Math.sin(angle), Offset.offset(1e-6));
        }
      }
    }
  }
}
