package dev.sparkprune.jobs.calibration;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;

/**
 * What calibration holds on the executors, from sizes alone, so that a run too large for its
 * executors fails before Spark starts with the numbers instead of an OutOfMemoryError after it:
 * the hidden states cached in total (nsamples x seqlen x hidden floats) and per partition (its
 * chunks), and what one task holds while it runs a chunk through a block (its partition's states
 * in and out, and the chunk's activations: the block's widest linear output per token). Plain
 * arithmetic, reusable by any plan that caches calibration states (the giant-MoE plan too).
 *
 * @param cachedBytes the hidden states of every sample, across the cluster
 * @param partitionBytes the hidden states of one partition's chunks
 * @param taskBytes what one running task holds: its partition's states plus a chunk's activations
 * @param largestArray the longest single float array a task allocates (a chunk's widest activation)
 */
public record CalibrationMemory(long cachedBytes, long partitionBytes, long taskBytes, long largestArray) {
  private static final int FLOAT_BYTES = Float.BYTES;
  /** Spark keeps this much of every executor heap for itself (its RESERVED_SYSTEM_MEMORY_BYTES). */
  static final long SPARK_RESERVED_BYTES = 300L << 20;
  /** Java's largest array (a few elements under Integer.MAX_VALUE). */
  private static final long MAX_ARRAY = Integer.MAX_VALUE - 8;
  private static final Pattern LOCAL = Pattern.compile("local\\[(\\*|\\d+)(\\s*,\\s*\\d+)?\\]|local");
  private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*\\]");

  /**
   * @param hidden floats per token of the cached states
   * @param widestPerToken floats per token of the widest activation a block computes
   * @param chunkSize samples per chunk (chunks are fixed by nsamples)
   * @param partitions partitions the chunks are spread over (at most one per chunk)
   */
  public static CalibrationMemory estimate(long nsamples, long seqlen, long hidden, long widestPerToken, int chunkSize, int partitions) {
    long chunks = (nsamples + chunkSize - 1) / chunkSize;
    long used = Math.max(1, Math.min(chunks, partitions));
    long chunksPerPartition = (chunks + used - 1) / used;
    long chunkTokens = (long) chunkSize * seqlen;
    long partitionStates = chunksPerPartition * chunkTokens * hidden * FLOAT_BYTES;
    // A task keeps its partition's states (read from the cache) and the states it produces, and one chunk's activations.
    long activations = chunkTokens * (2 * hidden + 2 * widestPerToken) * FLOAT_BYTES;
    return new CalibrationMemory(nsamples * seqlen * hidden * FLOAT_BYTES, partitionStates, 2 * partitionStates + activations,
        chunkTokens * Math.max(hidden, widestPerToken));
  }

  /**
   * The estimate for a run's calibration settings, cut into chunks by the one rule every job
   * uses ({@link CalibrationSource#chunkSize}) and spread over the partitions it asks for, else
   * over {@code defaultPartitions} (Spark's default parallelism as it will be).
   */
  public static CalibrationMemory estimate(CalibrationSettings settings, long hidden, long widestPerToken, int defaultPartitions) {
    return estimate(settings.nsamples(), settings.seqlen(), hidden, widestPerToken, CalibrationSource.chunkSize(settings.nsamples()),
        settings.partitions() > 0 ? settings.partitions() : defaultPartitions);
  }

  /**
   * Refuses, before any window is sampled, calibration settings the executors cannot hold: the
   * check below for {@link #estimate(CalibrationSettings, long, long, int)}, naming the settings.
   */
  public static void check(CalibrationSettings settings, long hidden, long widestPerToken, Executors executors, int defaultPartitions) {
    estimate(settings, hidden, widestPerToken, defaultPartitions).check(
        String.format(Locale.ROOT, "%d samples x %d tokens (--nsamples, --seqlen)", settings.nsamples(), settings.seqlen()), executors);
  }

  /**
   * The widest activation per token of any block: the largest output of a linear that every
   * token passes (q/k/v, gate/up, a fused one), or the top-k routed experts' outputs together.
   */
  public static long widestPerToken(ModelLayout layout, int topK) {
    long widest = 0;
    Map<String, Long> experts = new HashMap<>();
    for (Linear linear : layout.linears()) {
      if (linear.isRoutedExpert()) {
        experts.merge(linear.block() + "/" + linear.name().replaceAll("experts\\.\\d+\\.", "experts.*."), linear.outFeatures(), Math::max);
      } else {
        widest = Math.max(widest, linear.outFeatures());
      }
    }
    for (long out : experts.values()) {
      widest = Math.max(widest, out * Math.max(1, topK));
    }
    return widest;
  }

  /**
   * Refuses, with one line naming the numbers, a run whose executors cannot hold this: a task's
   * share of an executor heap (heap less Spark's reservation, over the tasks it runs at once),
   * the cached states of all samples across the executors when their number is known, and
   * Java's largest array.
   */
  public void check(String run, Executors executors) {
    ValidationException.check(largestArray <= MAX_ARRAY,
        "Cannot calibrate %s: one chunk's activations would be a single array of %,d floats, over Java's limit of %,d; use fewer or "
            + "shorter samples (--nsamples, --seqlen)", run, largestArray, MAX_ARRAY);
    long usable = Math.max(0, executors.heapBytes() - SPARK_RESERVED_BYTES);
    long perTask = executors.taskHeapBytes();
    ValidationException.check(taskBytes <= perTask,
        "Cannot calibrate %s: a task holds about %s (its partition's hidden states, %s, in and out, and a chunk's activations), over "
            + "the %s each of %d tasks has in an executor of %s (%s); use fewer or shorter samples (--nsamples, --seqlen), more "
            + "--partitions, or more executor memory",
        run, size(taskBytes), size(partitionBytes), size(perTask), executors.tasksAtOnce(), size(executors.heapBytes()), executors.source());
    if (executors.count() > 0) {
      long total = usable * executors.count();
      ValidationException.check(cachedBytes <= total,
          "Cannot calibrate %s: the cached hidden states take %s in all, over the %s of %d executor(s) of %s (%s); use fewer or "
              + "shorter samples (--nsamples, --seqlen), or more executor memory",
          run, size(cachedBytes), size(total), executors.count(), size(executors.heapBytes()), executors.source());
    }
  }

  /**
   * The executors calibration will run on, before Spark starts: heap each, tasks each runs at
   * once, how many (0 when unknown, as with dynamic allocation), and where the figures come from.
   */
  public record Executors(long heapBytes, int tasksAtOnce, int count, String source) {
    /** From the master URL and the Spark conf (spark-submit passes it as system properties). */
    public static Executors of(String master, SparkConf conf) {
      String resolved = master != null ? master : conf.get("spark.master", "local[*]");
      int taskCpus = conf.getInt("spark.task.cpus", 1);
      Matcher cluster = LOCAL_CLUSTER.matcher(resolved);
      if (cluster.matches()) {
        return new Executors(Long.parseLong(cluster.group(3)) << 20, Math.max(1, Integer.parseInt(cluster.group(2)) / taskCpus),
            Integer.parseInt(cluster.group(1)), resolved + ": executor memory from the master URL");
      }
      Matcher local = LOCAL.matcher(resolved);
      if (local.matches()) {
        int threads = local.group(1) == null ? 1
            : local.group(1).equals("*") ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(local.group(1));
        return new Executors(Runtime.getRuntime().maxMemory(), Math.max(1, threads / taskCpus), 1,
            resolved + ": executors run in this JVM, whose heap is set by -Xmx or SPARKPRUNE_HEAP");
      }
      long heap = conf.getSizeAsBytes("spark.executor.memory", "1g");
      int cores = conf.getInt("spark.executor.cores", 1);
      boolean dynamic = conf.getBoolean("spark.dynamicAllocation.enabled", false);
      int count = dynamic ? 0 : conf.getInt("spark.executor.instances", 0);
      return new Executors(heap, Math.max(1, cores / taskCpus), count, "spark.executor.memory, spark.executor.cores");
    }

    /** A task's share of an executor heap: the heap less Spark's reservation, over the tasks it runs at once. */
    public long taskHeapBytes() {
      return Math.max(0, heapBytes - SPARK_RESERVED_BYTES) / Math.max(1, tasksAtOnce);
    }

    /** Calibration partitions when --partitions is not given: Spark's default parallelism as it will be (16, the most chunks, if unknown). */
    public int defaultParallelism(SparkConf conf) {
      return conf.getInt("spark.default.parallelism", count > 0 ? count * tasksAtOnce : 16);
    }
  }

  /** Bytes as MiB or GiB, as the refusals print them. */
  public static String size(long bytes) {
    return bytes >= 1L << 30 ? String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30))
        : String.format(Locale.ROOT, "%.0f MiB", bytes / (double) (1L << 20));
  }
}
