package dev.sparkprune.jobs.spark;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Objects;

/** A run's progress lines, each stamped with the seconds since the log was made ("[  12.3s] ..."). */
public final class ProgressLog {
  private final PrintStream out;
  private final String prefix;
  private final long start = System.nanoTime();

  public ProgressLog(PrintStream out) {
    this(out, "");
  }

  /** @param job names the job in every line ("[shrink  12.3s] ..."); "" for none */
  public ProgressLog(PrintStream out, String job) {
    this.out = Objects.requireNonNull(out, "out is null");
    this.prefix = Objects.requireNonNull(job, "job is null").isEmpty() ? "[" : "[" + job + " ";
  }

  public double seconds() {
    return (System.nanoTime() - start) / 1e9;
  }

  public void line(String format, Object... args) {
    out.printf(Locale.ROOT, "%s%6.1fs] %s%n", prefix, seconds(), String.format(Locale.ROOT, format, args));
    out.flush();
  }
}
