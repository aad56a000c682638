package dev.sparkprune.jobs.prune;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.ComputeBackends;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.model.ArchiveWeights;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.arch.Expert;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.api.java.function.PairFlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import scala.Tuple2;

/**
 * The executor side of the prune job: small serializable function classes holding resolved
 * settings and broadcast handles, never the driver's job object. Each task opens the archive
 * itself (headers only) and reads just the tensors it needs with positioned reads.
 */
final class PruneFunctions {
  /** Rows of one Parquet mask record: bounds a record to 1024 rows' packed bits. */
  static final int MASK_ROWS_PER_RECORD = 1024;

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(PruneFunctions.class);

  private PruneFunctions() {}

  /**
   * Scores one linear: reads its weights from the archive, prunes with the method's kernel,
   * stages the pruned weights in the archive's dtype and returns the mask.
   */
  static final class ScoreLinear implements Function<Tuple2<PlannedLinear, CalibrationStatistics>, LinearResult> {
    private static final long serialVersionUID = 1L;
    private final dev.sparkprune.jobs.spark.JobContext context;
    private final Broadcast<Map<String, CalibrationStatistics>> channelStatistics;
    private final Wanda.Group wandaGroup;
    private final dev.sparkprune.scoring.methods.Refinement refinement;

    private final int minExpertTokens;

    /** {@code minExpertTokens}: a routed expert calibrated on fewer tokens is pruned with magnitude. */
    ScoreLinear(
        dev.sparkprune.jobs.spark.JobContext context, Broadcast<Map<String, CalibrationStatistics>> channelStatistics, Wanda.Group wandaGroup,
        dev.sparkprune.scoring.methods.Refinement refinement, int minExpertTokens) {
      this.context = context;
      this.channelStatistics = channelStatistics;
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
      PruneResult result = applied.prune(
          method,
          planned.tensorName(),
          Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), values),
          statistics,
          planned.target,
          backend.backend(),
          context.threads(),
          wandaGroup);
      StagedTensors.write(context.io(), context.staging(), linear, planned.dtype, result.weights());
      // After the side effect: a retried attempt must overwrite what the failed one staged.
      context.faultPoint("score");
      return new LinearResult(
          planned.block(),
          linear.name(),
          planned.tensorName(),
          result.mask(),
          result.reconstructionLoss().orElse(Double.NaN),
          result.damping().orElse(Double.NaN),
          (System.nanoTime() - start) / 1e9,
          Placement.of(backend))
          .withExpert(linear.expert().map(Expert::label).orElse(""), calibrationTokens, fallback);
    }
  }

  /** A linear's mask as Parquet rows of at most {@link #MASK_ROWS_PER_RECORD} rows each. */
  static final class MaskRows implements FlatMapFunction<LinearResult, Row> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Row> call(LinearResult result) {
      Mask mask = result.mask;
      List<Row> rows = new ArrayList<>();
      for (int start = 0; start < mask.rows(); start += MASK_ROWS_PER_RECORD) {
        int count = Math.min(MASK_ROWS_PER_RECORD, mask.rows() - start);
        byte[] bits = mask.bits(start, count);
        long kept = 0;
        for (byte b : bits) {
          kept += Integer.bitCount(b & 0xFF);
        }
        rows.add(RowFactory.create(result.tensor, result.linear, start, count, mask.cols(), kept, bits, result.block));
      }
      return rows.iterator();
    }
  }

  /**
   * Rewrites one shard into the staged model: same tensors, order, dtypes and metadata; pruned
   * tensors from their staged files, every other tensor copied byte for byte.
   */
  static final class WriteShard implements Function<String, Integer> {
    private static final long serialVersionUID = 1L;
    private final dev.sparkprune.jobs.spark.JobContext context;
    private final Set<String> prunedTensors;
    private final String modelDirectory;

    WriteShard(dev.sparkprune.jobs.spark.JobContext context, Set<String> prunedTensors, String modelDirectory) {
      this.context = context;
      this.prunedTensors = prunedTensors;
      this.modelDirectory = modelDirectory;
    }

    @Override
    public Integer call(String shard) throws IOException {
      HadoopFileIO io = context.io();
      ModelArchive archive = context.archive();
      String target = io.resolve(modelDirectory, shard);
      // A retried attempt starts over; the run's staging folder is private to this run.
      io.delete(target);
      int tensors;
      try (SafetensorsReader reader = archive.openShard(shard);
          OutputStream out = new BufferedOutputStream(io.newOutputFile(target).create(), 1 << 20)) {
        tensors = reader.tensors().size();
        List<TensorSpec> specs = new ArrayList<>();
        reader.tensors().forEach(tensor -> specs.add(TensorSpec.of(tensor)));
        try (SafetensorsWriter writer = SafetensorsWriter.create(out, specs, reader.metadata())) {
          OutputStream sink = new WriterSink(writer);
          boolean first = true;
          for (TensorInfo tensor : reader.tensors()) {
            if (!first) {
              // Mid-file: a retried attempt must start the shard over.
              context.faultPoint("write");
            }
            first = false;
            if (prunedTensors.contains(tensor.name())) {
              StagedTensors.copyRaw(io, context.staging(), tensor.name(), sink);
            } else {
              reader.copyRaw(tensor, sink);
            }
          }
        }
      }
      return tensors;
    }
  }

  /** Feeds bytes through the writer, which checks every tensor gets exactly its bytes. */
  private static final class WriterSink extends OutputStream {
    private final SafetensorsWriter writer;

    WriterSink(SafetensorsWriter writer) {
      this.writer = writer;
    }

    @Override
    public void write(int b) throws IOException {
      writer.writeBytes(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) throws IOException {
      writer.writeBytes(bytes, offset, length);
    }
  }
}
