package dev.sparkprune.tensorio.archive;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.TensorCodec;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import dev.sparkprune.tensorio.quant.Fp8Blocks;
import dev.sparkprune.tensorio.quant.Mxfp4Blocks;
import dev.sparkprune.tensorio.quant.Quantization;
import dev.sparkprune.tensorio.quant.QuantizationError;
import dev.sparkprune.tensorio.quant.Requantization;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * Writes a logical tensor of a source archive into an output archive in the source's own stored
 * format, so the output loads where the source loads (see README, "Formats and safety"):
 * <ul>
 *   <li>{@link #copy}: every component byte for byte (codes and scales), for tensors that
 *       survive whole (expert and structure removal);
 *   <li>{@link #writeMasked}: pruned entries set to the zero code (FP8 0x00, the E2M1 zero
 *       nibble), every other code and every scale unchanged;
 *   <li>{@link #writeUpdated}: a pruning method's output floats, exact where only pruning changed
 *       them, the blocks it moved (SparseGPT, ADMM) re-quantized with the release's rule (FP8
 *       amax/448 per 128x128 block; MXFP4 OCP MX shared exponent), returning the error;
 *       {@link #writeRequantized} quantizes everything afresh;
 *   <li>{@link #plainSpecs} and {@link #notConvertedModule}: the alternative, the tensor in BF16
 *       under its logical name with its module listed in {@code modules_to_not_convert}.
 * </ul>
 * The output header declares {@link #specs} (or {@link #plainSpecs}) where the tensor goes; the
 * bytes written here follow in that order. Memory: one 128-row band (FP8) or one expert (MXFP4)
 * of codes at a time, plus, when re-quantizing MXFP4, the scales of all experts (1/16 of the codes).
 */
public final class SourceFormat {
  private SourceFormat() {}

  /** The stored components as an output header declares them, under the tensor's own names. */
  public static List<TensorSpec> specs(ArchiveTensor tensor) {
    return specs(tensor, tensor.name());
  }

  /** The stored components renamed for logical name {@code target} (renumbered blocks or experts). */
  public static List<TensorSpec> specs(ArchiveTensor tensor, String target) {
    List<TensorSpec> specs = new ArrayList<>();
    for (StoredTensor component : tensor.components()) {
      specs.add(new TensorSpec(componentName(tensor, component, target), component.dtype(), component.shape()));
    }
    return specs;
  }

  /** A component's name under a new logical name: the suffix ({@code _scale_inv}, {@code _blocks}) is kept. */
  public static String componentName(ArchiveTensor tensor, StoredTensor component, String target) {
    return target + component.name().substring(tensor.name().length());
  }

  /** Copies every component unchanged, data first, then scales. */
  public static void copy(ArchiveReader reader, ArchiveTensor tensor, OutputStream out) throws IOException {
    reader.copyStored(tensor, out);
  }

  /**
   * Streams the components with pruned entries zeroed in the stored format. {@code masks.apply(e)}
   * is the [out x in] mask (1 = kept) of expert e of an MXFP4 tensor, in the linear's orientation
   * (the stored one); an FP8 weight takes {@code masks.apply(0)}, [rows x cols].
   */
  public static void writeMasked(ArchiveReader reader, ArchiveTensor tensor, IntFunction<Mask> masks, OutputStream out)
      throws IOException {
    StoredTensor data = tensor.data();
    switch (tensor.storage()) {
      case FP8_BLOCKS -> {
        Mask mask = masks.apply(0);
        int cols = (int) tensor.dim(1);
        checkMask(tensor, mask, tensor.dim(0), cols);
        for (long row = 0; row < tensor.rows(); row += Fp8Blocks.BLOCK) {
          int count = (int) Math.min(Fp8Blocks.BLOCK, tensor.rows() - row);
          byte[] codes = reader.readStoredRows(data, row, count);
          Fp8Blocks.mask(codes, row, count, cols, mask);
          out.write(codes);
        }
      }
      case MXFP4 -> {
        int in = (int) tensor.dim(1);
        int rows = (int) tensor.dim(2);
        for (int expert = 0; expert < tensor.rows(); expert++) {
          Mask mask = masks.apply(expert);
          checkMask(tensor, mask, rows, in);
          byte[] blocks = reader.readStoredRows(data, expert, 1);
          Mxfp4Blocks.mask(blocks, 0, rows, in, mask);
          out.write(blocks);
        }
      }
      default -> throw new ValidationException("Cannot mask " + tensor.name() + " in its stored format: it is not quantized; write its floats");
    }
    reader.copyStored(tensor.scales().orElseThrow(), out);
  }

  /**
   * Quantizes floats afresh with the release's rule (no block kept from the source) and streams
   * codes then scales. {@code values.apply(e)} gives expert e of an MXFP4 tensor as [out x in]
   * floats (the stored orientation); an FP8 weight takes {@code values.apply(0)}, [rows x cols].
   */
  public static Requantization writeRequantized(
      ArchiveTensor tensor, IntFunction<float[]> values, Quantization.ScaleFormat scaleFormat, OutputStream out) throws IOException {
    return write(null, tensor, values, scaleFormat, out);
  }

  /**
   * Writes a pruning method's output floats in the source format, exact wherever only pruning
   * changed them: an FP8 128x128 block or MXFP4 32-value group whose values are all the source's
   * (as read) or zero keeps its scale and codes, zeroed where pruned; any other block is
   * re-quantized with the release's rule. Masking methods (magnitude, Wanda) thus write the
   * source bytes with zero codes; weight-updating ones (SparseGPT, ADMM) re-quantize what they
   * moved. Arguments as for {@link #writeRequantized}.
   */
  public static Requantization writeUpdated(
      ArchiveReader reader, ArchiveTensor tensor, IntFunction<float[]> values, Quantization.ScaleFormat scaleFormat, OutputStream out)
      throws IOException {
    return write(reader, tensor, values, scaleFormat, out);
  }

  private static Requantization write(
      ArchiveReader source, ArchiveTensor tensor, IntFunction<float[]> values, Quantization.ScaleFormat scaleFormat, OutputStream out)
      throws IOException {
    switch (tensor.storage()) {
      case FP8_BLOCKS -> {
        StoredTensor scaleTensor = tensor.scales().orElseThrow();
        ValidationException.check(
            scaleTensor.dtype() == DType.F32,
            "Cannot re-quantize %s: its scales are %s; sparkprune writes F32 scales", tensor.name(), scaleTensor.dtype());
        int rows = (int) tensor.dim(0);
        int cols = (int) tensor.dim(1);
        byte[] sourceCodes = null;
        float[] sourceScales = null;
        if (source != null) {
          sourceCodes = source.readStoredRows(tensor.data(), 0, rows);
          byte[] raw = source.readStoredRows(scaleTensor, 0, (int) scaleTensor.info().rows());
          sourceScales = new float[(int) scaleTensor.numel()];
          TensorCodec.decode(DType.F32, raw, 0, sourceScales, 0, sourceScales.length);
        }
        Fp8Blocks.Quantized quantized = Fp8Blocks.update(tensor.name(), values.apply(0), rows, cols, sourceCodes, sourceScales, scaleFormat);
        byte[] scales = new byte[quantized.scales().length * Float.BYTES];
        TensorCodec.encode(DType.F32, quantized.scales(), 0, scales, 0, quantized.scales().length);
        out.write(quantized.codes());
        out.write(scales);
        return new Requantization(quantized.error(), quantized.requantizedBlocks(), quantized.scales().length);
      }
      case MXFP4 -> {
        int in = (int) tensor.dim(1);
        int rows = (int) tensor.dim(2);
        int experts = (int) tensor.rows();
        int groupsPerExpert = rows * (in / Mxfp4Blocks.GROUP);
        byte[] scales = new byte[experts * groupsPerExpert];
        Requantization total = new Requantization(QuantizationError.NONE, 0, 0);
        for (int expert = 0; expert < experts; expert++) {
          byte[] sourceBlocks = source == null ? null : source.readStoredRows(tensor.data(), expert, 1);
          byte[] sourceScales = source == null ? null : source.readStoredRows(tensor.scales().orElseThrow(), expert, 1);
          Mxfp4Blocks.Quantized quantized =
              Mxfp4Blocks.updateOutByIn(tensor.name() + " expert " + expert, values.apply(expert), rows, in, sourceBlocks, sourceScales);
          out.write(quantized.blocks());
          System.arraycopy(quantized.scales(), 0, scales, expert * groupsPerExpert, groupsPerExpert);
          total = total.plus(new Requantization(quantized.error(), quantized.requantizedGroups(), groupsPerExpert));
        }
        out.write(scales);
        return total;
      }
      default -> throw new ValidationException("Cannot re-quantize " + tensor.name() + ": it is not quantized; write its floats");
    }
  }

  /**
   * The tensor as one plain {@code dtype} tensor under its logical name and shape (FP8 [out, in];
   * MXFP4 transformers' [experts, in, out]), the layout transformers saves when it dequantizes.
   */
  public static List<TensorSpec> plainSpecs(ArchiveTensor tensor, String target, DType dtype) {
    ValidationException.check(dtype.isFloatEncodable(), "Cannot write %s as %s: not a float format sparkprune writes", tensor.name(), dtype);
    return List.of(new TensorSpec(target, dtype, tensor.shape()));
  }

  /**
   * The module to list in {@code modules_to_not_convert} when this tensor is written plain: the
   * linear of an FP8 weight; the experts module of an MXFP4 tensor, which transformers converts as
   * a whole, so every quantized tensor of that module must then be written plain.
   */
  public static String notConvertedModule(ArchiveTensor tensor) {
    return Quantization.moduleOf(tensor.name());
  }

  private static void checkMask(ArchiveTensor tensor, Mask mask, long rows, long cols) {
    ValidationException.check(
        mask.rows() == rows && mask.cols() == cols,
        "Cannot mask %s: mask is [%d, %d], expected [%d, %d]", tensor.name(), mask.rows(), mask.cols(), rows, cols);
  }
}
