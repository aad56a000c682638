package dev.sparkprune.jobs.spark;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Objects;

/** The job's progress lines, each stamped with the seconds since the run started. */
public final class ProgressLog {
  private final PrintStream out;
  private final long start = System.nanoTime();

  public ProgressLog(PrintStream out) {
    this.out = Objects.requireNonNull(out, "out is null");
  }

  public double seconds() {
    return (System.nanoTime() - start) / 1e9;
  }

  public void line(String format, Object... args) {
    out.printf(Locale.ROOT, "[%6.1fs] %s%n", seconds(), String.format(Locale.ROOT, format, args));
    out.flush();
  }
}
