package dev.sparkprune.jobs.prune.plan;

import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.Shard;
import dev.sparkprune.tensorio.io.SeekableInput;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Input fingerprints for reports and for matching saved statistics to their model. */
public final class Fingerprints {
  private Fingerprints() {}

  /**
   * SHA-256 over config.json and each shard's name, length and header (every tensor's name,
   * dtype, shape and byte range): reads headers only, and changes when the archive does.
   */
  public static String model(ModelArchive archive) throws IOException {
    MessageDigest digest = sha256();
    digest.update(archive.config().text().getBytes(StandardCharsets.UTF_8));
    for (Shard shard : archive.shards()) {
      digest.update(shard.fileName().getBytes(StandardCharsets.UTF_8));
      digest.update(Long.toString(shard.length()).getBytes(StandardCharsets.UTF_8));
      try (SafetensorsReader reader = archive.openShard(shard.fileName());
          SeekableInput input = archive.io().newInputFile(archive.shardLocation(shard.fileName())).open()) {
        byte[] header = new byte[(int) reader.dataStart()];
        input.readFully(0, header, 0, header.length);
        digest.update(header);
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  /** SHA-256 over the sampled token ids: the calibration fingerprint in the report. */
  public static String calibration(int[][] samples) {
    MessageDigest digest = sha256();
    for (int[] sample : samples) {
      for (int id : sample) {
        digest.update(new byte[] {(byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id});
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
