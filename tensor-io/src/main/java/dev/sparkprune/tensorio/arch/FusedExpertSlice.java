package dev.sparkprune.tensorio.arch;

import java.io.Serializable;
import java.util.Objects;

/**
 * Where a gpt-oss expert's linear lives in its block's fused expert tensor. Per expert, the fused
 * tensors are [in, width] in transformers' logical layout ({@code x @ gate_up_proj[e]}):
 * {@code gate_up_proj} [hidden, 2 x intermediate] with gate in the even columns and up in the odd
 * ones ({@code gate_up[..., ::2]}, {@code gate_up[..., 1::2]} in GptOssExperts), {@code down_proj}
 * [intermediate, hidden]. The linear's output row {@code o} is logical column {@link #column}; in
 * the MXFP4 release layout ({@code *_blocks} [experts, width, in / 32, 16]) it is stored row
 * {@link #column}, so a linear's codes and scales are whole stored rows.
 *
 * <p>A final class rather than a record: Spark's Kryo serializes plan rows that carry it.
 */
public final class FusedExpertSlice implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Which projection of the expert. */
  public enum Part {
    GATE,
    UP,
    DOWN
  }

  private final String tensor;
  private final int expert;
  private final Part part;
  private final int out;
  private final int in;

  public FusedExpertSlice(String tensor, int expert, Part part, int out, int in) {
    this.tensor = Objects.requireNonNull(tensor, "tensor is null");
    this.part = Objects.requireNonNull(part, "part is null");
    if (expert < 0 || out <= 0 || in <= 0) {
      throw new IllegalArgumentException("Invalid fused expert slice " + tensor + " expert " + expert + " [" + out + ", " + in + "]");
    }
    this.expert = expert;
    this.out = out;
    this.in = in;
  }

  /** The fused tensor's full name ({@code model.layers.0.mlp.experts.gate_up_proj}). */
  public String tensor() {
    return tensor;
  }

  public int expert() {
    return expert;
  }

  public Part part() {
    return part;
  }

  /** The fused tensor's last logical dimension: 2 x out for gate_up, out for down. */
  public int width() {
    return part == Part.DOWN ? out : 2 * out;
  }

  /** The logical column (MXFP4: stored row) of output row {@code row}. */
  public int column(int row) {
    return switch (part) {
      case GATE -> 2 * row;
      case UP -> 2 * row + 1;
      case DOWN -> row;
    };
  }

  /** This linear's [out x in] weights from its expert's logical [in x width] values. */
  public float[] outByIn(float[] expertInByWidth) {
    checkLength(expertInByWidth.length, (long) in * width());
    int width = width();
    float[] values = new float[out * in];
    for (int o = 0; o < out; o++) {
      int column = column(o);
      for (int i = 0; i < in; i++) {
        values[o * in + i] = expertInByWidth[i * width + column];
      }
    }
    return values;
  }

  /** Writes [out x in] weights into the expert's logical [in x width] values at {@code offset}. */
  public void scatter(float[] outByIn, float[] expertInByWidth, int offset) {
    checkLength(outByIn.length, (long) out * in);
    int width = width();
    for (int o = 0; o < out; o++) {
      int column = column(o);
      for (int i = 0; i < in; i++) {
        expertInByWidth[offset + i * width + column] = outByIn[o * in + i];
      }
    }
  }

  /**
   * Copies a plain [out x in] encoding of this linear ({@code elementBytes} per value) into the
   * stored bytes of its expert, [in x width] (BF16 gpt-oss).
   */
  public void patchPlain(byte[] stagedOutByIn, byte[] expertStored, int elementBytes) {
    checkLength(stagedOutByIn.length, (long) out * in * elementBytes);
    checkLength(expertStored.length, (long) in * width() * elementBytes);
    int width = width();
    for (int o = 0; o < out; o++) {
      int column = column(o);
      for (int i = 0; i < in; i++) {
        System.arraycopy(stagedOutByIn, (o * in + i) * elementBytes, expertStored, (i * width + column) * elementBytes, elementBytes);
      }
    }
  }

  /**
   * Copies this linear's stored rows ({@code rowBytes} each, [out x rowBytes]: MXFP4 codes or
   * scales) into its expert's stored rows [width x rowBytes].
   */
  public void patchRows(byte[] stagedRows, byte[] expertStored, int rowBytes) {
    checkLength(stagedRows.length, (long) out * rowBytes);
    checkLength(expertStored.length, (long) width() * rowBytes);
    for (int o = 0; o < out; o++) {
      System.arraycopy(stagedRows, o * rowBytes, expertStored, column(o) * rowBytes, rowBytes);
    }
  }

  /** This linear's stored rows ([out x rowBytes]) out of its expert's [width x rowBytes]. */
  public byte[] rows(byte[] expertStored, int rowBytes) {
    checkLength(expertStored.length, (long) width() * rowBytes);
    byte[] rows = new byte[out * rowBytes];
    for (int o = 0; o < out; o++) {
      System.arraycopy(expertStored, column(o) * rowBytes, rows, o * rowBytes, rowBytes);
    }
    return rows;
  }

  /**
   * The name under which weights holding one expert alone keep that expert's slice of fused
   * tensor {@code fused}: the expert index travels with the values.
   */
  public static String expertSliceName(String fused, int expert) {
    return fused + "[" + expert + "]";
  }

  private void checkLength(int actual, long expected) {
    if (actual != expected) {
      throw new IllegalArgumentException(
          "Invalid length " + actual + " for " + part + " of expert " + expert + " of " + tensor + " [" + out + ", " + in + "]: expected " + expected);
    }
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof FusedExpertSlice that
        && tensor.equals(that.tensor) && expert == that.expert && part == that.part && out == that.out && in == that.in;
  }

  @Override
  public int hashCode() {
    return Objects.hash(tensor, expert, part, out, in);
  }

  @Override
  public String toString() {
    return part.name().toLowerCase(java.util.Locale.ROOT) + " of expert " + expert + " of " + tensor;
  }
}
