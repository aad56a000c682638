package dev.sparkprune.tensorio.archive;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.quant.Fp8Blocks;
import dev.sparkprune.tensorio.quant.Mxfp4Blocks;
import dev.sparkprune.tensorio.quant.Quantization;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Groups an archive's stored tensors into logical tensors under its quantization, checking from
 * the headers alone that every quantized weight has scales of the right dtype and shape, that no
 * scale is orphaned, and that no module the config keeps unquantized is stored quantized.
 */
final class LogicalTensors {
  static final String FP8_SCALE_SUFFIX = "_scale_inv";
  static final String MX_BLOCKS_SUFFIX = "_blocks";
  static final String MX_SCALES_SUFFIX = "_scales";

  private final Quantization quantization;
  private final Map<String, StoredTensor> stored;
  private final String location;

  private LogicalTensors(Quantization quantization, Map<String, StoredTensor> stored, String location) {
    this.quantization = quantization;
    this.stored = stored;
    this.location = location;
  }

  /** Logical tensors in the order of their data in the shards. */
  static List<ArchiveTensor> group(Quantization quantization, List<StoredTensor> stored, String location) {
    Map<String, StoredTensor> byName = new LinkedHashMap<>();
    stored.forEach(tensor -> byName.put(tensor.name(), tensor));
    return new LogicalTensors(quantization, byName, location).group();
  }

  private List<ArchiveTensor> group() {
    // The scales each quantized tensor claims; a scale-like tensor nobody claims is an error.
    Map<String, String> claimedBy = new HashMap<>();
    List<ArchiveTensor> logical = new ArrayList<>();
    for (StoredTensor tensor : stored.values()) {
      ArchiveTensor resolved = resolve(tensor);
      if (resolved == null) {
        continue;
      }
      resolved.scales().ifPresent(scales -> claimedBy.put(scales.name(), resolved.name()));
      logical.add(resolved);
    }
    for (StoredTensor tensor : stored.values()) {
      if (isScaleOfItsFormat(tensor) && !claimedBy.containsKey(tensor.name())) {
        throw new ValidationException(orphanMessage(tensor));
      }
    }
    checkUniqueNames(logical);
    return logical;
  }

  /** The logical tensor whose data is {@code tensor}; null for a scale, which its data claims. */
  private ArchiveTensor resolve(StoredTensor tensor) {
    DType dtype = tensor.dtype();
    boolean fp8 = dtype == DType.F8_E4M3 || dtype == DType.F8_E5M2;
    switch (quantization.method()) {
      case NONE:
        ValidationException.check(
            !fp8,
            "Invalid model archive %s: tensor '%s' is %s but config.json has no %s, so its scales are unknown; "
                + "add the checkpoint's quantization_config",
            location, tensor.name(), dtype, Quantization.CONFIG_KEY);
        return ArchiveTensor.plain(tensor);
      case FP8:
        if (isScaleOfItsFormat(tensor)) {
          return null;
        }
        if (!fp8) {
          return ArchiveTensor.plain(tensor);
        }
        return fp8Weight(tensor);
      case MXFP4:
        ValidationException.check(
            !fp8, "Invalid model archive %s: tensor '%s' is %s in an mxfp4 archive", location, tensor.name(), dtype);
        if (isScaleOfItsFormat(tensor)) {
          return null;
        }
        if (dtype == DType.U8 && tensor.name().endsWith(MX_BLOCKS_SUFFIX)) {
          return mxfp4Blocks(tensor);
        }
        return ArchiveTensor.plain(tensor);
      default:
        throw new IllegalStateException("Unknown quantization method " + quantization.method());
    }
  }

  private ArchiveTensor fp8Weight(StoredTensor weight) {
    ValidationException.check(
        weight.dtype() == DType.F8_E4M3,
        "Invalid model archive %s: tensor '%s' is %s but quantization_config.fmt is e4m3", location, weight.name(), weight.dtype());
    String scaleName = weight.name() + FP8_SCALE_SUFFIX;
    StoredTensor scales = stored.get(scaleName);
    ValidationException.check(
        scales != null,
        "Invalid model archive %s: F8_E4M3 weight '%s' has no scale tensor '%s' (fp8 with 128x128 blocks needs one per weight)",
        location, weight.name(), scaleName);
    long[] shape = weight.shape();
    ValidationException.check(
        shape.length == 2,
        "Invalid model archive %s: F8_E4M3 weight '%s' has shape %s; block-scaled weights are 2-D",
        location, weight.name(), weight.info().shapeString());
    ValidationException.check(
        scales.dtype().isFloatEncodable(),
        "Invalid model archive %s: scale tensor '%s' is %s; expected F32 (or BF16, F16)", location, scaleName, scales.dtype());
    long[] expected = {Fp8Blocks.blocks(shape[0]), Fp8Blocks.blocks(shape[1])};
    ValidationException.check(
        Arrays.equals(scales.shape(), expected),
        "Invalid model archive %s: scale tensor '%s' has shape %s but weight '%s' %s with 128x128 blocks needs %s",
        location, scaleName, scales.info().shapeString(), weight.name(), weight.info().shapeString(), Arrays.toString(expected));
    checkConverted(weight.name(), Quantization.moduleOf(weight.name()));
    return ArchiveTensor.fp8Blocks(weight, scales);
  }

  private ArchiveTensor mxfp4Blocks(StoredTensor blocks) {
    String name = blocks.name().substring(0, blocks.name().length() - MX_BLOCKS_SUFFIX.length());
    String scaleName = name + MX_SCALES_SUFFIX;
    StoredTensor scales = stored.get(scaleName);
    ValidationException.check(
        scales != null, "Invalid model archive %s: MXFP4 blocks '%s' have no scale tensor '%s'", location, blocks.name(), scaleName);
    long[] shape = blocks.shape();
    ValidationException.check(
        shape.length == 4 && shape[3] == Mxfp4Blocks.GROUP_BYTES,
        "Invalid model archive %s: MXFP4 blocks '%s' have shape %s; expected [experts, rows, groups, %d]",
        location, blocks.name(), blocks.info().shapeString(), Mxfp4Blocks.GROUP_BYTES);
    long[] expected = Arrays.copyOf(shape, 3);
    ValidationException.check(
        scales.dtype() == DType.U8 && Arrays.equals(scales.shape(), expected),
        "Invalid model archive %s: MXFP4 scales '%s' are %s%s but blocks '%s' %s need U8%s",
        location, scaleName, scales.dtype(), scales.info().shapeString(), blocks.name(), blocks.info().shapeString(),
        Arrays.toString(expected));
    ValidationException.check(
        !stored.containsKey(name),
        "Invalid model archive %s: tensor '%s' is stored both plain and as MXFP4 '%s'", location, name, blocks.name());
    checkConverted(name, Quantization.moduleOf(name));
    return ArchiveTensor.mxfp4(name, blocks, scales);
  }

  private void checkConverted(String tensor, String module) {
    ValidationException.check(
        !quantization.isNotConverted(module),
        "Invalid model archive %s: tensor '%s' is stored quantized but quantization_config lists its module '%s' as not converted",
        location, tensor, module);
  }

  /** A scale tensor of this archive's format, by name and dtype. */
  private boolean isScaleOfItsFormat(StoredTensor tensor) {
    String name = tensor.name();
    return switch (quantization.method()) {
      case FP8 -> name.endsWith(FP8_SCALE_SUFFIX);
      case MXFP4 -> tensor.dtype() == DType.U8 && name.endsWith(MX_SCALES_SUFFIX)
          && stored.containsKey(stripped(name, MX_SCALES_SUFFIX) + MX_BLOCKS_SUFFIX);
      case NONE -> false;
    };
  }

  private String orphanMessage(StoredTensor scale) {
    String data = stripped(scale.name(), quantization.method() == Quantization.Method.FP8 ? FP8_SCALE_SUFFIX : MX_SCALES_SUFFIX);
    StoredTensor weight = stored.get(data);
    if (weight == null) {
      return String.format("Invalid model archive %s: scale tensor '%s' has no weight '%s'", location, scale.name(), data);
    }
    return String.format(
        "Invalid model archive %s: scale tensor '%s' belongs to '%s', which is %s, not quantized",
        location, scale.name(), data, weight.dtype());
  }

  private void checkUniqueNames(List<ArchiveTensor> logical) {
    Map<String, TensorInfo> seen = new HashMap<>();
    for (ArchiveTensor tensor : logical) {
      ValidationException.check(
          seen.put(tensor.name(), tensor.info()) == null, "Invalid model archive %s: two tensors are named '%s'", location, tensor.name());
    }
  }

  private static String stripped(String name, String suffix) {
    return name.substring(0, name.length() - suffix.length());
  }
}
