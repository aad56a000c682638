package dev.sparkprune.jobs.spark;


import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.ComputeBackends;
import dev.sparkprune.scoring.model.ArchiveWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ArchiveReader;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.Serializable;
import java.util.List;
import java.util.Objects;
import org.apache.spark.TaskContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.resource.ResourceInformation;

/**
 * What every executor function of a job shares: the model's location, the run's staging
 * folder (unique per run, so it also keys executor caches), the Hadoop configuration as a
 * broadcast, BLAS threads per task and the run's fault probe (a no-op outside tests). Small and
 * serializable; tasks open the archive themselves (headers only).
 */
public final class JobContext implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(JobContext.class);

  private final String model;
  private final String staging;
  private final Broadcast<SerializableConfiguration> conf;
  private final int threads;
  private final FaultProbe probe;

  public JobContext(String model, String staging, Broadcast<SerializableConfiguration> conf, int threads, FaultProbe probe) {
    this.model = Objects.requireNonNull(model, "model is null");
    this.staging = Objects.requireNonNull(staging, "staging is null");
    this.conf = Objects.requireNonNull(conf, "conf is null");
    this.threads = threads;
    this.probe = Objects.requireNonNull(probe, "probe is null");
  }

  public String model() {
    return model;
  }

  /** The run's private staging folder; also what keeps one run's executor caches from another's. */
  public String staging() {
    return staging;
  }

  public int threads() {
    return threads;
  }

  public FaultProbe probe() {
    return probe;
  }

  /** A named point of a task of this kind, where a test's probe may inject a fault ({@link FaultProbe}). */
  public void probe(String point) {
    probe.at(point);
  }

  public HadoopFileIO io() {
    return new HadoopFileIO(conf.value().get());
  }

  public ModelArchive archive() throws IOException {
    return ModelArchive.open(io(), model);
  }

  public DecoderModel openModel(ComputeBackend backend) throws IOException {
    return Models.open(archive(), backend.linearAlgebra());
  }

  /**
   * The backend for this task: on the GPU Spark assigned to it when the stage carries a GPU
   * resource profile (see {@link JobStages}), else the CPU.
   */
  public ComputeBackends.Choice backend() {
    return ComputeBackends.forDevices(taskGpus(), LOG::warn);
  }

  /** The GPU addresses Spark assigned to the running task; none outside a GPU stage. */
  public static List<String> taskGpus() {
    TaskContext task = TaskContext.get();
    if (task != null) {
      ResourceInformation gpu = task.resourcesJMap().get(JobStages.GPU);
      if (gpu != null) {
        return List.of(gpu.addresses());
      }
    }
    return List.of();
  }

  /**
   * One linear's weights in [out, in], read with positioned reads from the shards of its stored
   * components (a quantized weight's scales may sit in another shard), exactly dequantized: the
   * caller's plan already holds the tensor, so no other header is read.
   */
  public float[] readLinear(ArchiveTensor tensor, Linear linear) throws IOException {
    try (ArchiveReader reader = ArchiveReader.at(io(), model)) {
      if (linear.fusedSlice().isPresent()) {
        // A slice of a fused expert tensor: its expert's rows only (positioned reads), then its columns.
        var slice = linear.fusedSlice().get();
        return slice.outByIn(reader.readRows(tensor, slice.expert(), 1));
      }
      return ArchiveWeights.outByIn(linear, reader.readFloats(tensor));
    }
  }
}
