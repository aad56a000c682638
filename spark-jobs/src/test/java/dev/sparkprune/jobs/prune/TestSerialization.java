package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator;
import dev.sparkprune.jobs.prune.allocation.GlobalAllocation;
import dev.sparkprune.jobs.prune.plan.Placement;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.output.LinearResult;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.calibration.ChunkPartial;
import dev.sparkprune.jobs.calibration.SampleChunk;
import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.StoredTensor;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.serializer.JavaSerializer;
import org.apache.spark.serializer.KryoSerializer;
import org.apache.spark.serializer.SerializerInstance;
import org.junit.jupiter.api.Test;
import scala.reflect.ClassTag;

/** Everything cached, shuffled or shipped to executors survives Java and Kryo serialization. */
class TestSerialization {

  private static List<SerializerInstance> serializers() {
    SparkConf conf = new SparkConf()
        .set("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName())
        .set("spark.kryo.registrationRequired", "false");
    return List.of(new JavaSerializer(conf).newInstance(), new KryoSerializer(conf).newInstance());
  }

  @SuppressWarnings("unchecked")
  private static <T> T roundTrip(SerializerInstance serializer, T value) {
    ClassTag<T> tag = (ClassTag<T>) scala.reflect.ClassTag$.MODULE$.apply(value.getClass());
    ByteBuffer bytes = serializer.serialize(value, tag);
    return serializer.deserialize(bytes, tag);
  }

  @Test
  void quantizedTensorsRoundTripWithTheirScales() throws IOException {
    ModelArchive fp8 = ModelArchive.open(new LocalFileIO(), SharedData.path("fixtures/models/deepseek_v3_fp8").toString());
    ModelArchive mxfp4 = ModelArchive.open(new LocalFileIO(), SharedData.path("fixtures/models/gpt_oss_mxfp4").toString());
    for (ArchiveTensor tensor : List.of(
        fp8.tensor("model.layers.1.mlp.experts.3.up_proj.weight"), mxfp4.tensor("model.layers.1.mlp.experts.gate_up_proj"))) {
      for (SerializerInstance serializer : serializers()) {
        ArchiveTensor copy = roundTrip(serializer, tensor);
        assertThat(copy.storage()).isEqualTo(tensor.storage());
        assertThat(copy.shape()).isEqualTo(tensor.shape());
        assertThat(copy.components()).extracting(StoredTensor::info).containsExactlyElementsOf(
            tensor.components().stream().map(StoredTensor::info).toList());
        assertThat(copy.scales().orElseThrow().fileBegin()).isEqualTo(tensor.scales().orElseThrow().fileBegin());
      }
    }
    // A gpt-oss expert's linear travels with where it sits in the fused tensor.
    Linear up = Architectures.layout(mxfp4).linear("model.layers.1.mlp.experts.3.up_proj.weight").orElseThrow();
    PlannedLinear planned = new PlannedLinear(up, mxfp4.tensor(up.storedTensorName()), mxfp4.quantization(), PruningMethod.WANDA,
        SparsityTarget.unstructured(0.5));
    for (SerializerInstance serializer : serializers()) {
      PlannedLinear copy = roundTrip(serializer, planned);
      assertThat(copy.linear.fusedSlice()).isEqualTo(up.fusedSlice());
      assertThat(copy.linear.fusedSlice().orElseThrow().column(2)).isEqualTo(5);
      assertThat(copy.tensor().name()).isEqualTo("model.layers.1.mlp.experts.gate_up_proj");
    }
  }

  @Test
  void jobDataRoundTrips() throws IOException {
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
    Linear linear = Architectures.layout(archive).linears().get(4);
    PlannedLinear planned = new PlannedLinear(linear, archive.tensor(linear.tensorName()), archive.quantization(), PruningMethod.SPARSEGPT, SparsityTarget.nOfM(2, 4));
    CalibrationStatistics statistics = CalibrationStatistics.create(3, CalibrationStatistics.HessianStorage.DOUBLE);
    statistics.add(new float[] {1, 2, 3, 4, 5, 6}, 0, 2, 1, dev.sparkprune.scoring.linalg.NetlibLinearAlgebra.defaultInstance());
    Mask mask = Mask.builder(2, 9).prune(1, 8).build();
    HiddenStates hidden = new HiddenStates(1, 2, 3, new float[] {1, 2, 3, 4, 5, 6});
    for (SerializerInstance serializer : serializers()) {
      PlannedLinear plannedCopy = roundTrip(serializer, planned);
      assertThat(plannedCopy.tensorName()).isEqualTo(linear.tensorName());
      assertThat(plannedCopy.target).isEqualTo(SparsityTarget.nOfM(2, 4));
      assertThat(plannedCopy.method).isEqualTo(PruningMethod.SPARSEGPT);
      assertThat(plannedCopy.statisticsKey()).isEqualTo(planned.statisticsKey());

      ChunkPartial<CalibrationStatistics> chunk = roundTrip(serializer, new ChunkPartial<>(2, 3, statistics));
      assertThat(chunk.level()).isEqualTo(2);
      assertThat(chunk.firstChunk()).isEqualTo(12);
      assertThat(chunk.value().hessian()).isEqualTo(statistics.hessian());
      assertThat(chunk.value().channelSums("DSnoT")).containsExactly(5, 7, 9);
      dev.sparkprune.scoring.methods.Refinement refinement = new dev.sparkprune.scoring.methods.Refinement(
          dev.sparkprune.scoring.methods.Refinement.Update.ADMM, new dev.sparkprune.scoring.methods.Admm.Settings(12, 0.2, 2, 3),
          true, new dev.sparkprune.scoring.methods.Dsnot.Settings(7, 0.5, 2), "x");
      if (serializer instanceof org.apache.spark.serializer.JavaSerializerInstance) {
        // A record: it travels only inside the scoring closure, which Spark always serializes with Java serialization.
        assertThat(roundTrip(serializer, refinement)).isEqualTo(refinement);
      }
      chunk.value().add(new float[] {1, 1, 1}, 0, 1, 1, dev.sparkprune.scoring.linalg.NetlibLinearAlgebra.defaultInstance());

      SampleChunk samples = roundTrip(serializer, new SampleChunk(2, new int[][] {{1, 5}}, hidden));
      assertThat(samples.index()).isEqualTo(2);
      assertThat(samples.tokens()[0]).containsExactly(1, 5);
      assertThat(samples.hidden().values()).containsExactly(1, 2, 3, 4, 5, 6);

      LinearResult result = roundTrip(serializer, new LinearResult(3, "mlp.up_proj", "t", mask, 1.5, 0.01, 0.2,
          new Placement("7", "1", "cpu: native", "no GPU backend")));
      assertThat(result.mask).isEqualTo(mask);
      assertThat(result.placement.gpu).isEqualTo("1");
      assertThat(result.placement.fallbackReason).isEqualTo("no GPU backend");
      assertThat(result.kept).isEqualTo(17);
      assertThat(roundTrip(serializer, result.summary()).mask).isNull();
      // A quantized tensor's result carries its re-quantization (records, Java-serialized inside Kryo).
      dev.sparkprune.tensorio.quant.Requantization requantization = new dev.sparkprune.tensorio.quant.Requantization(
          new dev.sparkprune.tensorio.quant.QuantizationError(4, 0.5, 2.0, 0.25), 1, 6);
      LinearResult quantized = roundTrip(serializer, result.withStorage("F8_E4M3 (128x128 block scales)", requantization).summary());
      assertThat(quantized.storage).isEqualTo("F8_E4M3 (128x128 block scales)");
      assertThat(quantized.requantization).isEqualTo(requantization);

      org.apache.hadoop.conf.Configuration hadoop = new org.apache.hadoop.conf.Configuration(false);
      hadoop.set("fs.s3a.endpoint", "http://127.0.0.1:9000");
      SerializableConfiguration conf = roundTrip(serializer, new SerializableConfiguration(hadoop));
      assertThat(conf.get().get("fs.s3a.endpoint")).as(serializer.getClass().getSimpleName()).isEqualTo("http://127.0.0.1:9000");

      GlobalAllocation.LayerScores scores = roundTrip(serializer, new GlobalAllocation.LayerScores(new float[] {0.5f, 0.25f}));
      assertThat(scores.coarse.countAtOrBelow(0xFFFF)).isEqualTo(2);
    }
  }
}
