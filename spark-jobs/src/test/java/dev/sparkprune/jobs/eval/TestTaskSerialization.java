package dev.sparkprune.jobs.eval;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator;
import java.nio.ByteBuffer;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.serializer.JavaSerializer;
import org.apache.spark.serializer.KryoSerializer;
import org.apache.spark.serializer.SerializerInstance;
import org.junit.jupiter.api.Test;
import scala.reflect.ClassTag;

/** What the task job ships to executors and back survives Java and Kryo serialization. */
class TestTaskSerialization {

  @SuppressWarnings("unchecked")
  private static <T> T roundTrip(SerializerInstance serializer, T value) {
    ClassTag<T> tag = (ClassTag<T>) scala.reflect.ClassTag$.MODULE$.apply(value.getClass());
    ByteBuffer bytes = serializer.serialize(value, tag);
    return serializer.deserialize(bytes, tag);
  }

  @Test
  void documentsScoresAndTheFunctionRoundTrip() {
    SparkConf conf = new SparkConf().set("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName());
    for (SerializerInstance serializer : List.of(new JavaSerializer(conf).newInstance(), new KryoSerializer(conf).newInstance())) {
      EncodedDocument document = roundTrip(serializer, new EncodedDocument(1, 7, new int[][] {{3, 4}, {3}}, new int[][] {{5}, {6, 7}}));
      assertThat(document.task).isEqualTo(1);
      assertThat(document.index).isEqualTo(7);
      assertThat(document.contexts).isDeepEqualTo(new int[][] {{3, 4}, {3}});
      assertThat(document.continuations).isDeepEqualTo(new int[][] {{5}, {6, 7}});
      DocumentScores scores = roundTrip(serializer, new DocumentScores(2, 9, new double[] {-1.5, -0.25}));
      assertThat(scores.task).isEqualTo(2);
      assertThat(scores.index).isEqualTo(9);
      assertThat(scores.logLikelihoods).containsExactly(-1.5, -0.25);
    }
    // The partition function travels in the task closure, always with Java serialization.
    SerializerInstance java = new JavaSerializer(conf).newInstance();
    assertThat(roundTrip(java, new TaskEvalJob.ScoreDocuments(new TaskEvalOptions("m", 8, 2, 16), null))).isNotNull();
  }
}
