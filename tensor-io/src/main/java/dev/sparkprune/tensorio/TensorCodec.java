package dev.sparkprune.tensorio;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** Little-endian element codecs between safetensors bytes and float arrays. */
public final class TensorCodec {
  private static final VarHandle SHORT_LE =
      MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle INT_LE =
      MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle LONG_LE =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

  private TensorCodec() {}

  /** Decodes {@code count} elements of {@code type} from {@code src} into {@code dst}. */
  public static void decode(DType type, byte[] src, int srcOffset, float[] dst, int dstOffset, int count) {
    switch (type) {
      case F32:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Float.intBitsToFloat((int) INT_LE.get(src, srcOffset + 4 * i));
        }
        break;
      case BF16:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Float.intBitsToFloat(((short) SHORT_LE.get(src, srcOffset + 2 * i)) << 16);
        }
        break;
      case F16:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = HalfFloats.f16ToFloat((short) SHORT_LE.get(src, srcOffset + 2 * i));
        }
        break;
      case F64:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = (float) Double.longBitsToDouble((long) LONG_LE.get(src, srcOffset + 8 * i));
        }
        break;
      case F8_E4M3:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = MiniFloats.e4m3(src[srcOffset + i]);
        }
        break;
      case F8_E5M2:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = MiniFloats.e5m2(src[srcOffset + i]);
        }
        break;
      case I8:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = src[srcOffset + i];
        }
        break;
      case U8:
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = src[srcOffset + i] & 0xFF;
        }
        break;
      default:
        throw new ValidationException("Cannot decode dtype " + type + " to float");
    }
  }

  /** Encodes {@code count} floats as {@code type}, rounding to nearest even for 16-bit types. */
  public static void encode(DType type, float[] src, int srcOffset, byte[] dst, int dstOffset, int count) {
    switch (type) {
      case F32:
        for (int i = 0; i < count; i++) {
          INT_LE.set(dst, dstOffset + 4 * i, Float.floatToRawIntBits(src[srcOffset + i]));
        }
        break;
      case BF16:
        for (int i = 0; i < count; i++) {
          SHORT_LE.set(dst, dstOffset + 2 * i, HalfFloats.floatToBf16(src[srcOffset + i]));
        }
        break;
      case F16:
        for (int i = 0; i < count; i++) {
          SHORT_LE.set(dst, dstOffset + 2 * i, HalfFloats.floatToF16(src[srcOffset + i]));
        }
        break;
      case F64:
        for (int i = 0; i < count; i++) {
          LONG_LE.set(dst, dstOffset + 8 * i, Double.doubleToRawLongBits(src[srcOffset + i]));
        }
        break;
      default:
        throw new ValidationException("Cannot encode float weights as dtype " + type);
    }
  }

  static long readLongLE(byte[] src, int offset) {
    return (long) LONG_LE.get(src, offset);
  }

  static void writeLongLE(byte[] dst, int offset, long value) {
    LONG_LE.set(dst, offset, value);
  }
}
