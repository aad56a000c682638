package dev.sparkprune.jobs.spark;

import static org.assertj.core.api.Assertions.assertThat;

import com.esotericsoftware.kryo.Kryo;
import dev.sparkprune.jobs.calibration.ChunkPartial;
import dev.sparkprune.jobs.calibration.SampleChunk;
import dev.sparkprune.jobs.prune.allocation.GlobalAllocation;
import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.plan.Placement;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The registrator finds every job package's classes through its service file, numbered alike in every JVM. */
class TestKryoRegistration {
  private static final List<Class<?>> JOB_CLASSES = List.of(
      SampleChunk.class, ChunkPartial.class, LinearResult.class, Placement.class, PlannedLinear.class, GlobalAllocation.LayerScores.class);

  private static Kryo registered(SparkpruneKryoRegistrator registrator) {
    Kryo kryo = new Kryo();
    registrator.registerClasses(kryo);
    return kryo;
  }

  @Test
  void jobClassesAreRegisteredWithTheSameIdsEachTime() {
    Kryo first = registered(new SparkpruneKryoRegistrator());
    Kryo second = registered(new SparkpruneKryoRegistrator());
    for (Class<?> type : JOB_CLASSES) {
      assertThat(first.getClassResolver().getRegistration(type)).as(type.getName()).isNotNull();
      assertThat(first.getClassResolver().getRegistration(type).getId()).as(type.getName())
          .isEqualTo(second.getClassResolver().getRegistration(type).getId());
    }
  }

  @Test
  @SuppressWarnings("deprecation")
  void theEarlierClassNameStillRegistersEverything() {
    Kryo kryo = registered(new dev.sparkprune.jobs.prune.SparkpruneKryoRegistrator());
    Kryo current = registered(new SparkpruneKryoRegistrator());
    for (Class<?> type : JOB_CLASSES) {
      assertThat(kryo.getClassResolver().getRegistration(type).getId()).isEqualTo(current.getClassResolver().getRegistration(type).getId());
    }
  }
}
