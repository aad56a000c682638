package dev.sparkprune.scoring;

import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;

/** One golden file of {@code ../shared/fixtures/pruning}: inputs and reference outputs. */
public final class Fixture {
  public static final List<String> NAMES = List.of("small", "odd", "wide");
  public static final List<String> TAGS = List.of("u50", "u70", "2of4", "4of8");

  private final String name;
  private final SafetensorsReader reader;
  public final int rows;
  public final int cols;

  private Fixture(String name, SafetensorsReader reader) {
    this.name = name;
    this.reader = reader;
    TensorInfo w = reader.tensor("W");
    this.rows = (int) w.dim(0);
    this.cols = (int) w.dim(1);
  }

  public static Fixture load(String name) {
    String path = SharedData.path("fixtures/pruning/" + name + ".safetensors").toString();
    try {
      return new Fixture(name, SafetensorsReader.open(new LocalFileIO().newInputFile(path)));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static SparsityTarget target(String tag) {
    switch (tag) {
      case "u50":
        return SparsityTarget.unstructured(0.5);
      case "u70":
        return SparsityTarget.unstructured(0.7);
      case "2of4":
        return SparsityTarget.nOfM(2, 4);
      case "4of8":
        return SparsityTarget.nOfM(4, 8);
      default:
        throw new IllegalArgumentException(tag);
    }
  }

  public String name() {
    return name;
  }

  public float[] floats(String tensor) {
    try {
      return reader.readFloats(tensor);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public Weights weights() {
    return Weights.of(rows, cols, floats("W"));
  }

  public double[] hessian() {
    float[] h = floats("hessian");
    double[] out = new double[h.length];
    for (int i = 0; i < h.length; i++) {
      out[i] = h[i];
    }
    return out;
  }

  public Mask mask(String method, String tag) {
    try {
      TensorInfo tensor = reader.tensor(method + "_" + tag + "_mask");
      return Mask.fromPrunedFlags(rows, cols, reader.readRawRows(tensor, 0, rows));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public String toString() {
    return name;
  }
}
