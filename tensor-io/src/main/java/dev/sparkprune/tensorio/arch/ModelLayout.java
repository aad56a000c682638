package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A model archive seen through its architecture: the decoder blocks with their prunable linears,
 * and the role of every tensor in the archive, including tensors the architecture does not know.
 */
public final class ModelLayout implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String modelType;
  private final List<Block> blocks;
  private final Map<String, TensorRole> roles;
  private final long totalParameters;
  private final long prunableParameters;

  private ModelLayout(String modelType, List<Block> blocks, Map<String, TensorRole> roles, long totalParameters, long prunableParameters) {
    this.modelType = modelType;
    this.blocks = List.copyOf(blocks);
    this.roles = Collections.unmodifiableMap(roles);
    this.totalParameters = totalParameters;
    this.prunableParameters = prunableParameters;
  }

  /** Checks every expected tensor against the archive's headers and builds the layout. */
  public static ModelLayout resolve(Blueprint blueprint, Map<String, TensorInfo> tensors, String archiveLocation) {
    Map<String, TensorRole> expectedRoles = new LinkedHashMap<>();
    for (ExpectedTensor expected : blueprint.tensors()) {
      TensorInfo actual = tensors.get(expected.name());
      if (actual == null) {
        ValidationException.check(
            !expected.required(),
            "Invalid model archive %s: tensor '%s' that %s needs is missing",
            archiveLocation,
            expected.name(),
            blueprint.modelType());
        continue;
      }
      ValidationException.check(
          Arrays.equals(actual.shape(), expected.shape()),
          "Invalid model archive %s: tensor '%s' has shape %s but config.json implies %s",
          archiveLocation,
          expected.name(),
          actual.shapeString(),
          Arrays.toString(expected.shape()));
      if (expected.role() == TensorRole.LINEAR) {
        ValidationException.check(
            actual.dtype().isFloatConvertible(),
            "Invalid model archive %s: linear '%s' has dtype %s; sparkprune prunes F32, F16 and BF16 weights",
            archiveLocation,
            expected.name(),
            actual.dtype());
      }
      expectedRoles.put(expected.name(), expected.role());
    }
    Map<String, TensorRole> roles = new LinkedHashMap<>();
    long total = 0;
    for (TensorInfo tensor : tensors.values()) {
      roles.put(tensor.name(), expectedRoles.getOrDefault(tensor.name(), TensorRole.OTHER));
      total += tensor.numel();
    }
    List<Block> blocks = new ArrayList<>();
    long prunable = 0;
    for (int b = 0; b < blueprint.blockCount(); b++) {
      List<Linear> linears = new ArrayList<>();
      for (Linear linear : blueprint.linears()) {
        if (linear.block() == b) {
          linears.add(linear);
          prunable += linear.parameters();
        }
      }
      blocks.add(new Block(b, linears));
    }
    return new ModelLayout(blueprint.modelType(), blocks, roles, total, prunable);
  }

  public String modelType() {
    return modelType;
  }

  public List<Block> blocks() {
    return blocks;
  }

  public List<Linear> linears() {
    List<Linear> all = new ArrayList<>();
    blocks.forEach(block -> all.addAll(block.linears()));
    return all;
  }

  public Optional<Linear> linear(String tensorName) {
    return linears().stream().filter(linear -> linear.tensorName().equals(tensorName)).findFirst();
  }

  /** The role of every tensor in the archive, in archive order. */
  public Map<String, TensorRole> roles() {
    return roles;
  }

  public long totalParameters() {
    return totalParameters;
  }

  public long prunableParameters() {
    return prunableParameters;
  }
}
