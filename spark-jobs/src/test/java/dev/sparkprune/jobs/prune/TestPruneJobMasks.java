package dev.sparkprune.jobs.prune;

import dev.sparkprune.tensorio.mask.Mask;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/** Reads a prune output's Parquet masks back into masks by tensor. */
final class TestPruneJobMasks {
  private TestPruneJobMasks() {}

  static Map<String, Mask> read(SparkSession spark, Path out) {
    return read(spark, out.toString());
  }

  /** As above for any Hadoop URI of an output folder. */
  static Map<String, Mask> read(SparkSession spark, String out) {
    Map<String, Map<Integer, Row>> records = new HashMap<>();
    for (Row row : spark.read().parquet(out.replaceAll("/+$", "") + "/masks").collectAsList()) {
      records.computeIfAbsent(row.getString(row.fieldIndex("tensor")), key -> new TreeMap<>()).put(row.getInt(row.fieldIndex("row_start")), row);
    }
    Map<String, Mask> masks = new HashMap<>();
    records.forEach((tensor, byStart) -> {
      ByteArrayOutputStream bits = new ByteArrayOutputStream();
      int rows = 0;
      int cols = 0;
      for (Row row : byStart.values()) {
        if (row.getInt(row.fieldIndex("row_start")) != rows) {
          throw new AssertionError("Mask records of " + tensor + " do not tile the rows");
        }
        byte[] part = (byte[]) row.get(row.fieldIndex("bits"));
        bits.write(part, 0, part.length);
        rows += row.getInt(row.fieldIndex("rows"));
        cols = row.getInt(row.fieldIndex("cols"));
      }
      masks.put(tensor, Mask.fromBits(rows, cols, bits.toByteArray()));
    });
    return masks;
  }

  /** Every file under the output's masks/ (hidden ones included), by relative path, with its bytes as a hex digest. */
  static Map<String, String> files(Path out) throws java.io.IOException {
    Path masks = out.resolve("masks");
    Map<String, String> files = new TreeMap<>();
    try (var walk = java.nio.file.Files.walk(masks)) {
      for (Path file : walk.filter(java.nio.file.Files::isRegularFile).toList()) {
        files.put(masks.relativize(file).toString(), sha256(java.nio.file.Files.readAllBytes(file)));
      }
    }
    return files;
  }

  private static String sha256(byte[] bytes) {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
