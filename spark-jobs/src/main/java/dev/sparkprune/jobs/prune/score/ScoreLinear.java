package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.gradient.GradientSource;
import dev.sparkprune.jobs.prune.output.StagedTensors;
import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.plan.Placement;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackends;
import dev.sparkprune.scoring.methods.LinearInputs;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.arch.Expert;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.quant.Requantization;
import java.io.IOException;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.broadcast.Broadcast;
import scala.Tuple2;

/**
 * Scores one linear: reads its weights from the archive, prunes with the method's kernel,
 * stages the pruned weights in the archive's dtype and returns the mask.
 */
final class ScoreLinear implements Function<Tuple2<PlannedLinear, CalibrationStatistics>, LinearResult> {
  private static final long serialVersionUID = 1L;
  private final dev.sparkprune.jobs.spark.JobContext context;
  private final Broadcast<Map<String, CalibrationStatistics>> channelStatistics;
  private final GradientSource gradients;
  private final Wanda.Group wandaGroup;
  private final dev.sparkprune.scoring.methods.Refinement refinement;

  private final int minExpertTokens;

  /**
   * {@code gradients}: where a gradient method reads each linear's G; {@code minExpertTokens}: a
   * routed expert calibrated on fewer tokens is pruned with magnitude.
   */
  ScoreLinear(
      dev.sparkprune.jobs.spark.JobContext context, Broadcast<Map<String, CalibrationStatistics>> channelStatistics,
      GradientSource gradients, Wanda.Group wandaGroup, dev.sparkprune.scoring.methods.Refinement refinement, int minExpertTokens) {
    this.context = context;
    this.channelStatistics = channelStatistics;
    this.gradients = gradients;
    this.wandaGroup = wandaGroup;
    this.refinement = refinement;
    this.minExpertTokens = minExpertTokens;
  }

  @Override
  public LinearResult call(Tuple2<PlannedLinear, CalibrationStatistics> task) throws IOException {
    PlannedLinear planned = task._1();
    CalibrationStatistics statistics = task._2();
    if (statistics == null && channelStatistics != null) {
      statistics = channelStatistics.value().get(planned.statisticsKey());
    }
    long start = System.nanoTime();
    float[] values = planned.read(context);
    Linear linear = planned.linear;
    ComputeBackends.Choice backend = context.backend();
    long calibrationTokens = statistics == null ? -1 : statistics.tokens();
    PruningMethod method = planned.method;
    String fallback = "";
    // Statistics of a handful of routed tokens say little: magnitude needs none.
    if (linear.isRoutedExpert() && method.needsCalibration() && statistics != null && calibrationTokens < minExpertTokens) {
      fallback = String.format(
          Locale.ROOT, "magnitude: %d calibration tokens, fewer than --min-expert-tokens %d", calibrationTokens, minExpertTokens);
      method = PruningMethod.MAGNITUDE;
      statistics = null;
    }
    // The method's mask, then DSnoT and the ADMM update when asked for (Refinement.NONE: the method alone).
    // A magnitude fallback has no trustworthy statistics to refine or update from.
    dev.sparkprune.scoring.methods.Refinement applied = fallback.isEmpty() ? refinement : dev.sparkprune.scoring.methods.Refinement.NONE;
    LinearInputs inputs = LinearInputs.of(planned.tensorName(), Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), values));
    if (method.needsGradient()) {
      // G of the dense model, from the run's gradient set (read here: it is weight-sized).
      inputs = inputs.withGradient(gradients.gradient(context.io(), linear));
    }
    PruneResult result = applied.pruner(method, wandaGroup)
        .prune(statistics == null ? inputs : inputs.withStatistics(statistics), planned.target, backend.backend(), context.threads());
    Requantization written = StagedTensors.stage(context, planned, values, result);
    // After the side effect: a retried attempt must overwrite what the failed one staged.
    context.probe("score");
    return new LinearResult(
        planned.block(),
        linear.name(),
        planned.tensorName(),
        result.mask(),
        result.reconstructionLoss().orElse(Double.NaN),
        result.damping().orElse(Double.NaN),
        (System.nanoTime() - start) / 1e9,
        Placement.of(backend))
        .withExpert(linear.expert().map(Expert::label).orElse(""), calibrationTokens, fallback)
        .withStorage(planned.tensor().storageLabel(), written);
  }
}
