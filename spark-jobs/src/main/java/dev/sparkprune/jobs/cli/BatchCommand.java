package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.prune.BatchJob;
import dev.sparkprune.jobs.spark.SparkSessions;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.Row;

/** {@code sparkprune batch}: every model of a manifest; exit 1 if any model failed. */
final class BatchCommand {
  private BatchCommand() {}

  static int run(List<String> args, PrintStream out) throws IOException {
    CommandLine line = CommandLine.parse("batch", args, Set.of("manifest", "out-root", "master"), Set.of());
    line.requireNoPositionals();
    String manifest = line.require("manifest");
    String outRoot = line.require("out-root");
    List<Row> statuses = new BatchJob(SparkSessions.getOrCreate(line.value("master").orElse(null)), manifest, outRoot, out).run();
    long failed = statuses.stream().filter(row -> "FAILED".equals(row.getString(2))).count();
    out.printf("batch: %d models, %d failed; status table %s/_status%n", statuses.size(), failed, outRoot.replaceAll("/+$", ""));
    return failed == 0 ? Main.EXIT_OK : Main.EXIT_FAILURE;
  }
}
