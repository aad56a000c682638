package dev.sparkprune.tensorio.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.MiniFloats;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.InputFile;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.io.OutputFile;
import dev.sparkprune.tensorio.io.SeekableInput;
import dev.sparkprune.tensorio.quant.Fp8Blocks;
import dev.sparkprune.tensorio.quant.Mxfp4Blocks;
import dev.sparkprune.tensorio.quant.Quantization;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The release-format fixtures read as logical tensors: names, shapes and parameter counts of the
 * BF16 twin, values equal to it (exactly for MXFP4; within the FP8 rounding for FP8), single
 * experts read with positioned reads of their bytes only, and the release rules reproducing the
 * stored bytes when the dequantized weights are quantized again.
 */
class TestQuantizedArchives {
  private static ModelArchive open(String fixture) throws IOException {
    return ModelArchive.open(new LocalFileIO(), SharedData.path("fixtures/models/" + fixture).toString());
  }

  @Test
  void fp8ArchiveHasTheLogicalTensorsOfItsBf16Twin() throws IOException {
    ModelArchive fp8 = open("deepseek_v3_fp8");
    ModelArchive bf16 = open("deepseek_v3");
    assertThat(fp8.quantization().method()).isEqualTo(Quantization.Method.FP8);
    assertThat(fp8.tensors()).extracting(ArchiveTensor::name).containsExactlyInAnyOrderElementsOf(
        bf16.tensors().stream().map(ArchiveTensor::name).toList());
    for (ArchiveTensor tensor : fp8.tensors()) {
      assertThat(tensor.shape()).as(tensor.name()).isEqualTo(bf16.tensor(tensor.name()).shape());
    }
    assertThat(fp8.totalParameters()).isEqualTo(bf16.totalParameters());
    assertThat(fp8.storedTensors()).hasSizeGreaterThan(fp8.tensors().size());
    ArchiveTensor expert = fp8.tensor("model.layers.1.mlp.experts.5.gate_proj.weight");
    assertThat(expert.storage()).isEqualTo(ArchiveTensor.Storage.FP8_BLOCKS);
    assertThat(expert.components()).extracting(StoredTensor::name)
        .containsExactly("model.layers.1.mlp.experts.5.gate_proj.weight", "model.layers.1.mlp.experts.5.gate_proj.weight_scale_inv");
    assertThat(fp8.tensorInfos().get(expert.name()).shape()).containsExactly(48, 192);
    assertThat(fp8.tensor("model.layers.1.mlp.gate.weight").storage()).isEqualTo(ArchiveTensor.Storage.PLAIN);
    assertThat(fp8.findTensor("model.layers.1.mlp.experts.5.gate_proj.weight_scale_inv")).isEmpty();
  }

  /**
   * The fixture's exactness (shared/README: "the same weights stored as the release stores
   * them"): each code is the original weight at its block's scale rounded to nearest E4M3, and
   * the BF16 twin is that weight rounded to BF16, so the two differ by at most half an E4M3 step
   * at the block scale plus BF16's rounding; every block's largest code is ±448 (scale = amax/448).
   */
  @Test
  void fp8WeightsEqualTheBf16TwinWithinTheRoundingOfBothFormats() throws IOException {
    ModelArchive fp8 = open("deepseek_v3_fp8");
    ModelArchive bf16 = open("deepseek_v3");
    int quantized = 0;
    try (ArchiveReader fp8Reader = new ArchiveReader(fp8); ArchiveReader bf16Reader = new ArchiveReader(bf16)) {
      for (ArchiveTensor tensor : fp8.tensors()) {
        float[] actual = fp8Reader.readFloats(tensor);
        float[] reference = bf16Reader.readFloats(tensor.name());
        if (!tensor.isQuantized()) {
          assertThat(actual).as(tensor.name()).isEqualTo(reference);
          continue;
        }
        quantized++;
        int cols = (int) tensor.dim(1);
        float[] scales = fp8Reader.readFloats(ArchiveTensor.plain(tensor.scales().orElseThrow()));
        int scaleCols = Fp8Blocks.blocks(cols);
        double squaredError = 0;
        double squaredReference = 0;
        double worst = 0;
        for (int i = 0; i < actual.length; i++) {
          double scale = scales[(i / cols / 128) * scaleCols + (i % cols) / 128];
          double largest = Math.max(Math.abs(actual[i]), Math.abs(reference[i])) / scale;
          double halfStep = Math.scalb(1.0, Math.max(Math.getExponent(largest), -6) - 4);
          double bound = halfStep * scale + Math.abs(reference[i]) * 0x1p-8;
          double difference = Math.abs((double) actual[i] - reference[i]);
          worst = Math.max(worst, difference / bound);
          squaredError += difference * difference;
          squaredReference += (double) reference[i] * reference[i];
        }
        assertThat(worst).as("%s: largest difference / bound", tensor.name()).isLessThanOrEqualTo(1);
        // E4M3 keeps 3 mantissa bits: Gaussian weights land ~2.7% from their BF16 originals.
        assertThat(Math.sqrt(squaredError / squaredReference)).as(tensor.name()).isBetween(0.015, 0.04);
        byte[] codes = fp8Reader.readStoredRows(tensor.data(), 0, (int) tensor.rows());
        for (int block = 0; block < scales.length; block++) {
          assertThat(blockMax(codes, cols, block / scaleCols, block % scaleCols)).as("%s block %d", tensor.name(), block).isEqualTo(448f);
        }
      }
    }
    assertThat(quantized).isEqualTo(fp8.storedTensors().stream().filter(t -> t.dtype() == DType.F8_E4M3).count()).isGreaterThan(100);
  }

  private static float blockMax(byte[] codes, int cols, int blockRow, int blockCol) {
    float max = 0;
    int rows = codes.length / cols;
    for (int r = blockRow * 128; r < Math.min(rows, blockRow * 128 + 128); r++) {
      for (int c = blockCol * 128; c < Math.min(cols, blockCol * 128 + 128); c++) {
        max = Math.max(max, Math.abs(MiniFloats.e4m3(codes[r * cols + c])));
      }
    }
    return max;
  }

  @Test
  void requantizingTheDequantizedFp8WeightsReproducesTheReleaseBytes() throws IOException {
    ModelArchive fp8 = open("deepseek_v3_fp8");
    try (ArchiveReader reader = new ArchiveReader(fp8)) {
      for (ArchiveTensor tensor : fp8.tensors()) {
        if (tensor.isQuantized()) {
          Fp8Blocks.Quantized again = Fp8Blocks.quantize(
              tensor.name(), reader.readFloats(tensor), (int) tensor.dim(0), (int) tensor.dim(1), Quantization.ScaleFormat.FLOAT);
          assertThat(again.codes()).as(tensor.name()).isEqualTo(reader.readStoredRows(tensor.data(), 0, (int) tensor.rows()));
          assertThat(again.scales()).as(tensor.name()).isEqualTo(reader.readFloats(ArchiveTensor.plain(tensor.scales().orElseThrow())));
          assertThat(again.error().maxAbsError()).isZero();
        }
      }
    }
  }

  @Test
  void mxfp4ArchiveReadsExactlyAsTransformersDequantizedBf16Twin() throws IOException {
    ModelArchive mxfp4 = open("gpt_oss_mxfp4");
    ModelArchive bf16 = open("gpt_oss");
    assertThat(mxfp4.quantization().method()).isEqualTo(Quantization.Method.MXFP4);
    assertThat(mxfp4.tensors()).extracting(ArchiveTensor::name).containsExactlyInAnyOrderElementsOf(
        bf16.tensors().stream().map(ArchiveTensor::name).toList());
    assertThat(mxfp4.totalParameters()).isEqualTo(bf16.totalParameters());
    ArchiveTensor gateUp = mxfp4.tensor("model.layers.1.mlp.experts.gate_up_proj");
    assertThat(gateUp.storage()).isEqualTo(ArchiveTensor.Storage.MXFP4);
    assertThat(gateUp.shape()).containsExactly(8, 128, 192);
    assertThat(gateUp.numel()).isEqualTo(8L * 128 * 192);
    try (ArchiveReader mxReader = new ArchiveReader(mxfp4); ArchiveReader bfReader = new ArchiveReader(bf16)) {
      for (ArchiveTensor tensor : mxfp4.tensors()) {
        assertThat(mxReader.readFloats(tensor)).as(tensor.name()).isEqualTo(bfReader.readFloats(tensor.name()));
      }
      float[] all = bfReader.readFloats(gateUp.name());
      float[] five = mxReader.readRows(gateUp.name(), 5, 1);
      assertThat(five).isEqualTo(Arrays.copyOfRange(all, 5 * 128 * 192, 6 * 128 * 192));
    }
  }

  @Test
  void oneExpertIsReadWithPositionedReadsOfItsOwnBytesOnly() throws IOException {
    ModelArchive opened = open("gpt_oss_mxfp4");
    RecordingFileIO io = new RecordingFileIO();
    ModelArchive archive = ModelArchive.open(io, opened.location());
    ArchiveTensor down = archive.tensor("model.layers.2.mlp.experts.down_proj");
    io.reads.clear();
    try (ArchiveReader reader = new ArchiveReader(archive)) {
      float[] expert = reader.readRows(down, 6, 1);
      assertThat(expert).hasSize(96 * 128);
    }
    StoredTensor blocks = down.data();
    StoredTensor scales = down.scales().orElseThrow();
    long blockRow = blocks.byteLength() / 8;
    long scaleRow = scales.byteLength() / 8;
    // Opening the shard reads its 8-byte length and its header; the data reads are the expert's.
    long dataStart = blocks.fileBegin() - blocks.info().begin();
    List<long[]> dataReads = io.reads.stream().filter(read -> read[0] >= dataStart).toList();
    assertThat(dataReads).containsExactlyInAnyOrder(
        new long[] {blocks.fileBegin() + 6 * blockRow, blockRow},
        new long[] {scales.fileBegin() + 6 * scaleRow, scaleRow});
  }

  @Test
  void requantizingTheDequantizedMxfp4ExpertsReproducesTheReleaseBytes() throws IOException {
    ModelArchive mxfp4 = open("gpt_oss_mxfp4");
    try (ArchiveReader reader = new ArchiveReader(mxfp4)) {
      for (ArchiveTensor tensor : mxfp4.tensors()) {
        if (!tensor.isQuantized()) {
          continue;
        }
        int in = (int) tensor.dim(1);
        int out = (int) tensor.dim(2);
        for (int expert = 0; expert < tensor.rows(); expert++) {
          float[] outByIn = transpose(reader.readRows(tensor, expert, 1), in, out);
          Mxfp4Blocks.Quantized again = Mxfp4Blocks.quantizeOutByIn(tensor.name(), outByIn, out, in);
          assertThat(again.blocks()).as("%s expert %d", tensor.name(), expert).isEqualTo(reader.readStoredRows(tensor.data(), expert, 1));
          assertThat(again.scales()).isEqualTo(reader.readStoredRows(tensor.scales().orElseThrow(), expert, 1));
          assertThat(again.error().maxAbsError()).isZero();
        }
      }
    }
  }

  @Test
  void aQuantizedWeightCannotBeDecodedAloneByTheShardReader() throws IOException {
    ModelArchive fp8 = open("deepseek_v3_fp8");
    try (SafetensorsReader shard = fp8.openShard(ModelArchive.SINGLE_SHARD)) {
      assertThatThrownBy(() -> shard.readFloats("model.layers.1.self_attn.o_proj.weight"))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Cannot decode tensor 'model.layers.1.self_attn.o_proj.weight' alone: it is stored quantized with scales "
              + "'model.layers.1.self_attn.o_proj.weight_scale_inv'; read it by its logical name through ArchiveReader");
    }
    ModelArchive mxfp4 = open("gpt_oss_mxfp4");
    try (SafetensorsReader shard = mxfp4.openShard(ModelArchive.SINGLE_SHARD)) {
      assertThatThrownBy(() -> shard.readFloats("model.layers.0.mlp.experts.down_proj_blocks"))
          .hasMessageContaining("read it by its logical name through ArchiveReader");
    }
  }

  static float[] transpose(float[] values, int rows, int cols) {
    float[] out = new float[values.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[c * rows + r] = values[r * cols + c];
      }
    }
    return out;
  }

  /** Local files, recording every positioned read as {position, length}. */
  static final class RecordingFileIO implements FileIO {
    private final LocalFileIO local = new LocalFileIO();
    final List<long[]> reads = new ArrayList<>();

    @Override
    public InputFile newInputFile(String location) {
      InputFile file = local.newInputFile(location);
      return new InputFile() {
        @Override
        public String location() {
          return file.location();
        }

        @Override
        public long length() throws IOException {
          return file.length();
        }

        @Override
        public SeekableInput open() throws IOException {
          SeekableInput input = file.open();
          return new SeekableInput() {
            @Override
            public void readFully(long position, byte[] buffer, int offset, int length) throws IOException {
              reads.add(new long[] {position, length});
              input.readFully(position, buffer, offset, length);
            }

            @Override
            public void close() throws IOException {
              input.close();
            }
          };
        }
      };
    }

    @Override
    public OutputFile newOutputFile(String location) {
      return local.newOutputFile(location);
    }

    @Override
    public boolean exists(String location) throws IOException {
      return local.exists(location);
    }

    @Override
    public boolean delete(String location) throws IOException {
      return local.delete(location);
    }

    @Override
    public List<String> listFiles(String directory) throws IOException {
      return local.listFiles(directory);
    }
  }
}
