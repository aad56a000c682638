package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ArchiveReader;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import java.io.Closeable;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Reads logical tensors of an archive as float through one {@link ArchiveReader} (one open
 * reader per shard), quantized ones (FP8 blocks, MXFP4 experts) exactly dequantized. Linears
 * stored transposed (GPT-2's Conv1D, [in, out]) come back in [out, in] orientation.
 */
public final class ArchiveWeights implements Closeable {
  private final ModelArchive archive;
  private final ModelLayout layout;
  private final ArchiveReader reader;
  private final Map<String, float[]> cache = new HashMap<>();

  public ArchiveWeights(ModelArchive archive, ModelLayout layout) {
    this.archive = archive;
    this.layout = layout;
    this.reader = new ArchiveReader(archive);
  }

  public ModelArchive archive() {
    return archive;
  }

  public ModelLayout layout() {
    return layout;
  }

  public boolean contains(String name) {
    return archive.findTensor(name).isPresent();
  }

  /** The tensor as float, linears in [out, in] orientation. */
  public float[] read(String name) throws IOException {
    float[] values = reader.readFloats(find(name));
    Optional<Linear> linear = layout.linear(name);
    return linear.isPresent() ? outByIn(linear.get(), values) : values;
  }

  /**
   * Rows [rowStart, rowStart + rowCount) of the first dimension as stored in logical layout: the
   * experts of a fused expert tensor ([experts, in, out] for gpt-oss), read without the others.
   */
  public float[] readRows(String name, long rowStart, int rowCount) throws IOException {
    return reader.readRows(find(name), rowStart, rowCount);
  }

  private ArchiveTensor find(String name) {
    return archive.findTensor(name)
        .orElseThrow(() -> new ValidationException("Cannot run the model: tensor '" + name + "' is missing from " + archive.location()));
  }

  /** A linear's weights as stored (GPT-2's Conv1D stores [in, out]) to [out, in]. */
  public static float[] outByIn(Linear linear, float[] stored) {
    return linear.storedTransposed() ? transpose(stored, (int) linear.inFeatures(), (int) linear.outFeatures()) : stored;
  }

  /** A linear's [out, in] weights in the orientation its archive stores them. */
  public static float[] asStored(Linear linear, float[] outByIn) {
    return linear.storedTransposed() ? transpose(outByIn, (int) linear.outFeatures(), (int) linear.inFeatures()) : outByIn;
  }

  /**
   * A tensor read once and kept: for the few model-wide tensors (embeddings, final norm, head)
   * that every batch needs; block tensors are read per block and never cached here.
   */
  public float[] cached(String name) throws IOException {
    float[] values = cache.get(name);
    if (values == null) {
      values = read(name);
      cache.put(name, values);
    }
    return values;
  }

  /** Row-major [rows x cols] to [cols x rows]. */
  private static float[] transpose(float[] values, int rows, int cols) {
    float[] out = new float[values.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[c * rows + r] = values[r * cols + c];
      }
    }
    return out;
  }

  @Override
  public void close() throws IOException {
    reader.close();
  }
}
