package dev.sparkprune.jobs.spark;

import dev.sparkprune.jobs.prune.allocation.GlobalAllocation;
import dev.sparkprune.jobs.prune.plan.Placement;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.output.LinearResult;
import com.esotericsoftware.kryo.Kryo;
import org.apache.spark.serializer.KryoRegistrator;

/**
 * Registers the classes the prune job caches and shuffles (chunks of hidden states, statistics,
 * masks, plan rows), so Kryo writes class ids instead of names. Set with
 * {@code spark.kryo.registrator=dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator}.
 */
public final class SparkpruneKryoRegistrator implements KryoRegistrator {
  @Override
  public void registerClasses(Kryo kryo) {
    kryo.register(dev.sparkprune.jobs.calibration.SampleChunk.class);
    kryo.register(dev.sparkprune.jobs.calibration.ChunkPartial.class);
    kryo.register(java.util.LinkedHashMap.class);
    kryo.register(LinearResult.class);
    kryo.register(Placement.class);
    kryo.register(PlannedLinear.class);
    kryo.register(GlobalAllocation.LayerScores.class);
    kryo.register(dev.sparkprune.scoring.model.HiddenStates.class);
    kryo.register(dev.sparkprune.scoring.model.HiddenStates[].class);
    kryo.register(dev.sparkprune.scoring.stats.CalibrationStatistics.class);
    kryo.register(dev.sparkprune.scoring.stats.CalibrationStatistics.HessianStorage.class);
    kryo.register(dev.sparkprune.scoring.allocation.ScoreHistogram.class);
    kryo.register(dev.sparkprune.scoring.SparsityTarget.class);
    kryo.register(dev.sparkprune.scoring.methods.PruningMethod.class);
    kryo.register(dev.sparkprune.tensorio.mask.Mask.class);
    kryo.register(dev.sparkprune.tensorio.arch.Linear.class);
    kryo.register(dev.sparkprune.tensorio.arch.Expert.class);
    kryo.register(dev.sparkprune.tensorio.DType.class);
    kryo.register(int[][].class);
    kryo.register(float[].class);
    kryo.register(double[].class);
    kryo.register(long[].class);
    kryo.register(byte[].class);
  }
}
