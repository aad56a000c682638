package dev.sparkprune.tensorio;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The element types of the safetensors format, with their sizes in bytes. */
public enum DType {
  BOOL(1, false),
  U8(1, true),
  I8(1, true),
  F8_E4M3(1, true),
  F8_E5M2(1, true),
  I16(2, false),
  U16(2, false),
  F16(2, true),
  BF16(2, true),
  I32(4, false),
  U32(4, false),
  F32(4, true),
  I64(8, false),
  U64(8, false),
  F64(8, true);

  private final int byteSize;
  private final boolean floatConvertible;

  DType(int byteSize, boolean floatConvertible) {
    this.byteSize = byteSize;
    this.floatConvertible = floatConvertible;
  }

  public int byteSize() {
    return byteSize;
  }

  /**
   * Whether {@link TensorCodec} can decode this type to float; the others are copied as bytes. An
   * F8 tensor's codes are only its values when it has no scales: the archive reads block-scaled
   * weights through their scales, and {@link SafetensorsReader} refuses to decode them alone.
   */
  public boolean isFloatConvertible() {
    return floatConvertible;
  }

  /** Whether weights can be written in this type: the float formats a pruned archive keeps. */
  public boolean isFloatEncodable() {
    return this == F32 || this == F16 || this == BF16;
  }

  public static DType parse(String name) {
    for (DType type : values()) {
      if (type.name().equals(name)) {
        return type;
      }
    }
    throw new ValidationException(
        String.format(
            Locale.ROOT,
            "Unknown dtype: '%s' (safetensors dtypes are %s)",
            name,
            Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "))));
  }
}
