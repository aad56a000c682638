package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.plan.PruneRules;
import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/** {@link PruneOptionsResolver.Inputs} on a Hadoop file system: what the CLI and batches use. */
public final class HadoopInputs implements PruneOptionsResolver.Inputs {
  /** Rules files are read whole; PruneRules refuses larger ones. */
  private static final long MAX_FINGERPRINTED_BYTES = 16 << 20;

  private final HadoopFileIO io;

  public HadoopInputs(HadoopFileIO io) {
    this.io = Objects.requireNonNull(io, "io is null");
  }

  @Override
  public OptionalInt tokenRowLength(String calibration) throws IOException {
    // Text sources stop at their first line or row; pre-tokenized ones are calibration-sized.
    Optional<List<int[]>> rows = TextSource.readTokenIds(io, calibration);
    return rows.isPresent() ? OptionalInt.of(rows.get().get(0).length) : OptionalInt.empty();
  }

  @Override
  public Optional<String> fingerprint(String location) throws IOException {
    if (!io.exists(location)) {
      return Optional.empty();
    }
    try {
      byte[] bytes = InputFiles.readAll(io.newInputFile(location), MAX_FINGERPRINTED_BYTES);
      return Optional.of(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
