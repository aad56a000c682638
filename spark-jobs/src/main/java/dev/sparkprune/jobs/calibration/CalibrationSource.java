package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.jobs.plan.CalibrationShape;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;

/**
 * A run's calibration windows, sampled once on the driver ({@link CalibrationSamples}), and the
 * one rule every job cuts them by: fixed, numbered chunks of at most {@value #MAX_CHUNKS} (one
 * batch each through a block, so results never depend on partitioning), spread over the
 * partitions asked for. Prune embeds them for its {@link CalibrationPass}; shrink runs the same
 * chunks through its own block-major pass (see ARCHITECTURE.md for why it is not a visitor).
 */
public final class CalibrationSource {
  /** Calibration chunks at most: also the calibration stages' parallelism. */
  public static final int MAX_CHUNKS = CalibrationShape.MAX_CHUNKS;

  private static final CalibrationSource NONE = new CalibrationSource(new CalibrationSettings("", 0, 0, 0, 0), new int[0][]);

  private final CalibrationSettings settings;
  private final int[][] samples;

  private CalibrationSource(CalibrationSettings settings, int[][] samples) {
    this.settings = Objects.requireNonNull(settings, "settings is null");
    this.samples = Objects.requireNonNull(samples, "samples is null");
  }

  /** The windows the settings ask for, from their text or pre-tokenized rows. */
  public static CalibrationSource sample(HadoopFileIO io, CalibrationSettings settings, Tokenizer tokenizer) throws IOException {
    return new CalibrationSource(settings,
        CalibrationSamples.sample(io, settings.location(), tokenizer, settings.nsamples(), settings.seqlen(), settings.seed()));
  }

  /** Windows already sampled (tests, benchmarks). */
  public static CalibrationSource of(CalibrationSettings settings, int[][] samples) {
    return new CalibrationSource(settings, samples.clone());
  }

  /** No windows: a run that embeds no text (magnitude, saved statistics). */
  public static CalibrationSource none() {
    return NONE;
  }

  /** Samples per chunk for {@code nsamples}: at most {@value #MAX_CHUNKS} chunks, at least one sample each. */
  public static int chunkSize(int nsamples) {
    return CalibrationShape.chunkSize(nsamples);
  }

  public CalibrationSettings settings() {
    return settings;
  }

  public boolean isEmpty() {
    return samples.length == 0;
  }

  /** How many windows were sampled. */
  public int size() {
    return samples.length;
  }

  /**
   * The samples in fixed, numbered chunks, in order: chunks depend only on the samples and
   * --nsamples, never on partitions, so results fold the same on any cluster.
   */
  public List<Tuple2<Integer, int[][]>> chunks() {
    int chunkSize = chunkSize(settings.nsamples());
    List<Tuple2<Integer, int[][]>> chunks = new ArrayList<>();
    for (int first = 0, index = 0; first < samples.length; first += chunkSize, index++) {
      chunks.add(new Tuple2<>(index, Arrays.copyOfRange(samples, first, Math.min(samples.length, first + chunkSize))));
    }
    return chunks;
  }

  /** The partitions the chunks are spread over: those asked for (else Spark's parallelism), at most one per chunk. */
  public int partitions(JavaSparkContext jsc) {
    int requested = settings.partitions() > 0 ? settings.partitions() : jsc.defaultParallelism();
    return Math.max(1, Math.min(chunks().size(), requested));
  }

  /** Embeds the windows on the executors: a calibration pass at block 0 of a model of {@code blocks} blocks. */
  public CalibrationPass embed(JobStages stages, int blocks, ProgressLog log) {
    return embed(stages, blocks, log, ExpertSharding.none());
  }

  /** The same, the blocks {@code sharding} names running expert-parallel. */
  public CalibrationPass embed(JobStages stages, int blocks, ProgressLog log, ExpertSharding sharding) {
    CalibrationPass pass = CalibrationPass.embed(stages, chunks(), partitions(stages.jsc()), blocks, sharding);
    logChunks(log, pass.chunks(), pass.partitions());
    for (int block : sharding.blocks()) {
      log.line("block %d/%d: %d routed experts in %d expert groups (expert-parallel)", block + 1, blocks,
          sharding.groups(block).get(sharding.groups(block).size() - 1).end(), sharding.groups(block).size());
    }
    return pass;
  }

  /** The progress line every calibrating job prints. */
  public void logChunks(ProgressLog log, int chunks, int partitions) {
    log.line("calibration: %d samples x %d tokens in %d chunks on %d partitions", samples.length, settings.seqlen(), chunks, partitions);
  }

  /** SHA-256 over the sampled token ids: the calibration fingerprint in reports; "" without samples. */
  public String fingerprint() {
    if (isEmpty()) {
      return "";
    }
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    for (int[] sample : samples) {
      for (int id : sample) {
        digest.update(new byte[] {(byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id});
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }
}
