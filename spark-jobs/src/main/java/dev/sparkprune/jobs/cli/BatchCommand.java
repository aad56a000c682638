package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.prune.BatchJob;
import dev.sparkprune.jobs.spark.SparkSessions;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import org.apache.spark.sql.Row;
import picocli.CommandLine.Model.CommandSpec;

/** {@code sparkprune batch}: every model of a manifest; exit 1 if any model failed. */
final class BatchCommand implements Subcommand {
  private final CommandSpec spec;

  BatchCommand() {
    spec = Specs.command(this, "batch", "Prune every model of a manifest; Parquet status table in _status.");
    spec.addOption(Specs.required("manifest", "URI", "JSONL, CSV or Parquet; one row per model, columns named as prune's options."));
    spec.addOption(Specs.required("out-root", "URI", "Each model's output goes to <out-root>/<name>."));
    spec.addOption(Specs.master());
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  @Override
  public int run(Arguments arguments, PrintStream out) throws IOException {
    ConfKeys.checkKnown(new org.apache.spark.SparkConf());
    String manifest = arguments.require("manifest");
    String outRoot = arguments.require("out-root");
    List<Row> statuses = new BatchJob(SparkSessions.getOrCreate(arguments.value("master").orElse(null)), manifest, outRoot, out).run();
    long failed = statuses.stream().filter(row -> "FAILED".equals(row.getString(2))).count();
    out.printf("batch: %d models, %d failed; status table %s/_status%n", statuses.size(), failed, outRoot.replaceAll("/+$", ""));
    return failed == 0 ? Main.EXIT_OK : Main.EXIT_FAILURE;
  }
}
