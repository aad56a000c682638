package dev.sparkprune.tensorio.quant;

import java.io.Serializable;

/**
 * What writing one tensor in its quantized source format cost: the error of the written values
 * against the floats given (zero where only pruning changed them) and how many quantization
 * blocks (FP8 128x128 blocks, MXFP4 32-value groups) were quantized anew, of how many.
 */
public record Requantization(QuantizationError error, long requantizedBlocks, long blocks) implements Serializable {
  public Requantization plus(Requantization other) {
    return new Requantization(error.plus(other.error), requantizedBlocks + other.requantizedBlocks, blocks + other.blocks);
  }
}
