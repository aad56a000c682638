package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.ModelLayout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * A model whose listed sparse blocks never hold their routed experts together: {@link #loadBlock}
 * reads such a block without them, and {@link #runBlock} reads each routed expert alone when
 * its turn comes ({@link MoeBlock#run} with an expert source), so memory holds attention, router,
 * shared expert and one routed expert. The same bits as the wrapped model (the same steps in the
 * same order); the cost is reading the block's experts again on every call. What an in-process
 * evaluation does with blocks over the expert-task budget.
 */
public final class ExpertStreaming implements DecoderModel {
  private final DecoderModel model;
  private final Set<Integer> blocks;

  private ExpertStreaming(DecoderModel model, Set<Integer> blocks) {
    this.model = model;
    this.blocks = new TreeSet<>(blocks);
  }

  /** {@code model} with the sparse blocks among {@code blocks} streaming their experts; the model itself when there are none. */
  public static DecoderModel wrap(DecoderModel model, Set<Integer> blocks) {
    Set<Integer> sparse = new TreeSet<>();
    for (int block : blocks) {
      if (model.moe(block).isPresent()) {
        sparse.add(block);
      }
    }
    return sparse.isEmpty() ? model : new ExpertStreaming(model, sparse);
  }

  @Override
  public ModelLayout layout() {
    return model.layout();
  }

  @Override
  public int vocabSize() {
    return model.vocabSize();
  }

  @Override
  public int maxPositions() {
    return model.maxPositions();
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    return model.embed(tokens);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return blocks.contains(block) ? model.loadBlockWithoutExperts(block) : model.loadBlock(block);
  }

  @Override
  public HiddenStates runBlock(BlockWeights weights, HiddenStates input, InputHook hook) {
    int block = weights.block();
    if (!blocks.contains(block)) {
      return model.runBlock(weights, input, hook);
    }
    MoeBlock moe = model.moe(block).orElseThrow();
    MoeInput moeInput = model.attend(weights, input, hook);
    try {
      return moeInput.finish(moe.run(weights, moeInput.x(), input.tokens(), input.sequences(), hook,
          e -> moe.expertAlone(model.loadExpert(block, e), e)));
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read the experts of block " + block, e);
    }
  }

  @Override
  public Optional<MoeBlock> moe(int block) {
    return model.moe(block);
  }

  @Override
  public BlockWeights loadBlockWithoutExperts(int block) throws IOException {
    return model.loadBlockWithoutExperts(block);
  }

  @Override
  public BlockWeights loadExpert(int block, int expert) throws IOException {
    return model.loadExpert(block, expert);
  }

  @Override
  public MoeInput attend(BlockWeights weights, HiddenStates input, InputHook hook) {
    return model.attend(weights, input, hook);
  }

  @Override
  public MoeInput moeInput(BlockWeights weights, HiddenStates residual) {
    return model.moeInput(weights, residual);
  }

  @Override
  public float[] logits(HiddenStates hidden, int sequence) throws IOException {
    return model.logits(hidden, sequence);
  }

  @Override
  public void close() throws IOException {
    model.close();
  }
}
