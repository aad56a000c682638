package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The driver's choice from the folded calibration summary: a {@link ShrinkPlan}, with the
 * scores behind it (for report.json): per block its influence and, for the dropped run, the
 * angular distance (and, with gradients, its first-order removal importance, else empty); per
 * kept block the MLP channel, KV group and expert scores.
 */
public record ShrinkDecision(
    ShrinkPlan plan, List<Integer> droppedBlocks, double[] blockInfluence, double[] angularDistances, double[] blockRemoval,
    Map<Integer, double[]> mlpScores, Map<Integer, double[]> kvGroupScores, Map<Integer, double[]> expertScores) {

  public static ShrinkDecision choose(ModelShape shape, ShrinkSettings settings, ChunkSummary summary) {
    return choose(shape, settings, summary, TaylorImportance.NONE);
  }

  /** With Taylor scores of the width structures and blocks, which {@code --width-metric taylor} and {@code --layer-metric taylor} rank by. */
  public static ShrinkDecision choose(ModelShape shape, ShrinkSettings settings, ChunkSummary summary, TaylorImportance taylor) {
    settings.checkAgainst(shape);
    DepthScores depth = summary.depth();
    List<Integer> dropped = settings.dropBlocks() == 0 ? List.of() : switch (settings.layerMetric()) {
      case ANGULAR -> depth.dropByAngularDistance(settings.dropBlocks());
      case BLOCK_INFLUENCE -> depth.dropByBlockInfluence(settings.dropBlocks());
      case TAYLOR -> depth.dropLowest(taylor.blockRemoval(), settings.dropBlocks());
    };
    double[] influence = new double[shape.blocks()];
    for (int b = 0; b < influence.length; b++) {
      influence[b] = depth.blockInfluence(b);
    }
    double[] angular = new double[settings.dropBlocks() == 0 ? 0 : shape.blocks() - settings.dropBlocks()];
    for (int l = 0; l < angular.length; l++) {
      angular[l] = depth.angularDistance(l, settings.dropBlocks());
    }
    AttentionGroups groups = new AttentionGroups(shape.heads(), shape.kvHeads(), shape.headDim());
    int keepChannels = KeepCounts.mlpChannels(Math.max(1, shape.intermediate()), settings.mlpKeep());
    int keepGroups = KeepCounts.kvGroups(shape.kvHeads(), settings.headsKeep());
    int keepExperts = shape.experts() == 0 ? 0 : KeepCounts.experts(shape.experts(), settings.expertsKeep());
    // Group-limited routing keeps the same number in every group (ShrinkPlan requires it).
    int expertGroups = shape.moe()
        .filter(moe -> moe.scoring() == MixtureOfExperts.Scoring.SIGMOID_GROUP_LIMITED).map(MixtureOfExperts::groups).orElse(0);
    int keepPerGroup = expertGroups == 0 ? 0 : KeepCounts.expertsPerGroup(shape.experts(), expertGroups, settings.expertsKeep());
    ShrinkSettings.WidthMetric metric = settings.widthMetric();

    List<Integer> kept = new ArrayList<>();
    Map<Integer, int[]> channels = new LinkedHashMap<>();
    Map<Integer, int[]> kvGroups = new LinkedHashMap<>();
    Map<Integer, int[]> experts = new LinkedHashMap<>();
    Map<Integer, double[]> mlpScores = new LinkedHashMap<>();
    Map<Integer, double[]> kvScores = new LinkedHashMap<>();
    Map<Integer, double[]> expertScores = new LinkedHashMap<>();
    for (BlockSummary block : summary.blocks()) {
      int b = block.block();
      if (dropped.contains(b)) {
        continue;
      }
      kept.add(b);
      WidthStatistics statistics = block.statistics();
      if (settings.headsKeep() < 1) {
        double[] scores = switch (metric) {
          case ACTIVATION -> WidthScores.sumPerGroup(WidthScores.activationAware(block.oColumnNorms(), statistics.oInputSumSquares()), groups);
          case FLAP -> WidthScores.sumPerGroup(WidthScores.fluctuation(
              block.oColumnNorms(), statistics.oInputSums(), statistics.oInputSumSquares(), statistics.oTokens()), groups);
          case TAYLOR -> taylorScores(taylor.kvGroups(), b, "KV group");
          case WEIGHT_NORM -> block.kvWeightNorms();
        };
        kvScores.put(b, scores);
        kvGroups.put(b, WidthScores.topIndices(scores, keepGroups));
      }
      if (settings.mlpKeep() < 1 && !shape.isSparse(b)) {
        double[] scores = switch (metric) {
          case ACTIVATION -> WidthScores.activationAware(block.downColumnNorms(), statistics.downInputSumSquares());
          case FLAP -> WidthScores.fluctuation(
              block.downColumnNorms(), statistics.downInputSums(), statistics.downInputSumSquares(), statistics.downTokens());
          case TAYLOR -> taylorScores(taylor.mlpChannels(), b, "MLP channel");
          case WEIGHT_NORM -> block.mlpWeightNorms();
        };
        mlpScores.put(b, scores);
        channels.put(b, WidthScores.topIndices(scores, keepChannels));
      }
      if (settings.expertsKeep() < 1 && shape.isSparse(b)) {
        double[] scores = statistics.experts().scores(settings.expertMetric());
        expertScores.put(b, scores);
        experts.put(b, expertGroups == 0
            ? WidthScores.topIndices(scores, keepExperts)
            : WidthScores.topIndicesPerGroup(scores, expertGroups, keepPerGroup));
      }
    }
    ShrinkPlan plan = ShrinkPlan.of(shape, kept, channels, kvGroups, experts);
    return new ShrinkDecision(plan, dropped, influence, angular, taylor.blockRemoval(), mlpScores, kvScores, expertScores);
  }

  private static double[] taylorScores(Map<Integer, double[]> scores, int block, String what) {
    double[] values = scores.get(block);
    if (values == null) {
      throw new IllegalStateException("Cannot rank the " + what + "s of block " + block + " by Taylor importance: no scores were computed");
    }
    return values;
  }
}
