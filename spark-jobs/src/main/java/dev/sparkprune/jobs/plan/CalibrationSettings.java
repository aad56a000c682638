package dev.sparkprune.jobs.plan;

import java.util.Objects;

/**
 * Where calibration windows come from and how many: the source (text, or pre-tokenized
 * {@code input_ids} rows), --nsamples windows of --seqlen tokens drawn with --seed, and the
 * partitions the chunks are spread over (0: Spark's default parallelism).
 */
public record CalibrationSettings(String location, int nsamples, int seqlen, long seed, int partitions) {
  public CalibrationSettings {
    Objects.requireNonNull(location, "location is null");
  }
}
