package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.spark.KryoClasses;
import java.util.List;

/**
 * What the calibration pass caches and shuffles: chunks of hidden states and their partials, and
 * an expert-parallel block's attended chunks, routed rows and expert results.
 */
public final class CalibrationKryoClasses implements KryoClasses {
  @Override
  public List<Class<?>> classes() {
    return List.of(SampleChunk.class, ChunkPartial.class, AttendedChunk.class, ExpertRows.class, ExpertResult.class);
  }
}
