package dev.sparkprune.jobs.cluster;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Every process the real-cluster tests start, stopped by process id with the processes they
 * started (a worker's executors and drivers), youngest first: at {@link #stopAll} and, should the
 * test JVM end first, from a shutdown hook. Output of each goes to a log file.
 */
final class ClusterProcesses {
  /** A started process, its name in messages and its log. */
  record Started(String name, Process process, Path log) {
    long pid() {
      return process.pid();
    }

    String output() {
      try {
        return Files.readString(log, StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  private final List<Started> started = new ArrayList<>();
  private final Thread hook = new Thread(this::stopAll, "stop-cluster-processes");

  ClusterProcesses() {
    Runtime.getRuntime().addShutdownHook(hook);
  }

  synchronized Started start(String name, List<String> command, Map<String, String> environment, Path directory, Path log)
      throws IOException {
    ProcessBuilder builder = new ProcessBuilder(command).directory(directory.toFile()).redirectErrorStream(true)
        .redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    builder.environment().putAll(environment);
    Started process = new Started(name, builder.start(), log);
    started.add(process);
    return process;
  }

  /** Stops one process and its descendants, by id. */
  static void stop(Started process) {
    List<ProcessHandle> tree = new ArrayList<>(process.process().toHandle().descendants().toList());
    tree.add(0, process.process().toHandle());
    // Children first: a worker that is told to stop first would otherwise leave its executors to its own shutdown hook.
    for (int i = tree.size() - 1; i >= 0; i--) {
      tree.get(i).destroy();
    }
    for (ProcessHandle handle : tree) {
      try {
        handle.onExit().get(15, TimeUnit.SECONDS);
      } catch (Exception e) {
        handle.destroyForcibly();
      }
    }
  }

  /** Stops every process started here, youngest first; idempotent. */
  synchronized void stopAll() {
    for (int i = started.size() - 1; i >= 0; i--) {
      stop(started.get(i));
    }
    started.clear();
    if (Thread.currentThread() != hook) {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // The hook runs anyway.
      }
    }
  }
}
