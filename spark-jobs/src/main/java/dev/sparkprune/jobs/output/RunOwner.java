package dev.sparkprune.jobs.output;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The process that owns a staging folder ({@value #NAME} inside it) or a publish lock (its
 * content): host, boot, PID namespace, PID and start time. A folder or lock is left by a dead
 * run only when that is provable: the same machine since the same boot, the same PID namespace,
 * and no process with that PID, or one that started at another time (the PID was reused).
 * Anything else (another host, another container, an unreadable owner) is treated as alive.
 */
record RunOwner(String runId, String host, String bootId, String pidNamespace, long pid, long startMillis) {
  static final String NAME = "_SPARKPRUNE_RUN";
  /** An owner is a few hundred bytes; a larger file is not one. */
  private static final long MAX_BYTES = 64 << 10;
  private static final ObjectMapper JSON = new ObjectMapper();

  RunOwner {
    Objects.requireNonNull(runId, "runId is null");
    Objects.requireNonNull(host, "host is null");
    Objects.requireNonNull(bootId, "bootId is null");
    Objects.requireNonNull(pidNamespace, "pidNamespace is null");
  }

  /** This process, running {@code runId}. */
  static RunOwner current(String runId) {
    ProcessHandle self = ProcessHandle.current();
    long start = self.info().startInstant().map(Instant::toEpochMilli).orElse(-1L);
    return new RunOwner(runId, localHost(), firstLine("/proc/sys/kernel/random/boot_id"), localPidNamespace(), self.pid(), start);
  }

  byte[] toJson() {
    ObjectNode json = JSON.createObjectNode();
    json.put("tool", OutputMarker.TOOL);
    json.put("run_id", runId);
    json.put("host", host);
    json.put("boot_id", bootId);
    json.put("pid_namespace", pidNamespace);
    json.put("pid", pid);
    json.put("start_millis", startMillis);
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(json);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Writes this owner to {@code file}, replacing any earlier one. */
  void write(FileSystem fs, Path file) throws IOException {
    try (var stream = OutputMarker.raw(fs).create(file, true)) {
      stream.write(toJson());
    }
  }

  /** The owner in {@code file}; empty when it is missing, unreadable or not an owner. */
  static Optional<RunOwner> read(FileSystem fs, Path file) throws IOException {
    FileSystem raw = OutputMarker.raw(fs);
    byte[] bytes;
    try {
      FileStatus status = raw.getFileStatus(file);
      if (!status.isFile() || status.getLen() > MAX_BYTES) {
        return Optional.empty();
      }
      bytes = new byte[(int) status.getLen()];
      try (FSDataInputStream in = raw.open(file)) {
        in.readFully(0, bytes);
      }
    } catch (FileNotFoundException | java.io.EOFException e) {
      return Optional.empty();
    }
    try {
      JsonNode json = JSON.readTree(new String(bytes, StandardCharsets.UTF_8));
      if (json == null || !OutputMarker.TOOL.equals(json.path("tool").asText()) || !json.path("pid").canConvertToLong()) {
        return Optional.empty();
      }
      return Optional.of(new RunOwner(json.path("run_id").asText(), json.path("host").asText(), json.path("boot_id").asText(),
          json.path("pid_namespace").asText(), json.path("pid").asLong(), json.path("start_millis").asLong(-1)));
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /**
   * Whether this owner's process is provably gone: it ran on this machine since this boot, in
   * this PID namespace, and its PID is free now or names a process that started at another time.
   */
  boolean isProvablyDead() {
    RunOwner here = current(runId);
    if (host.isEmpty() || bootId.isEmpty() || pidNamespace.isEmpty()
        || !host.equals(here.host) || !bootId.equals(here.bootId) || !pidNamespace.equals(here.pidNamespace)) {
      return false;
    }
    if (pid == here.pid) {
      return startMillis != here.startMillis;
    }
    Optional<ProcessHandle> process = ProcessHandle.of(pid);
    if (process.isEmpty() || !process.get().isAlive()) {
      return true;
    }
    Optional<Instant> start = process.get().info().startInstant();
    return start.isPresent() && startMillis >= 0 && start.get().toEpochMilli() != startMillis;
  }

  /** The machine's name as the kernel knows it (no DNS lookup), else Java's. */
  private static String localHost() {
    String name = firstLine("/proc/sys/kernel/hostname");
    if (!name.isEmpty()) {
      return name;
    }
    try {
      return java.net.InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      return "";
    }
  }

  /** The PID namespace's identity ("pid:[4026531836]"): PIDs compare only within one. */
  private static String localPidNamespace() {
    try {
      return Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/ns/pid")).toString();
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      return "";
    }
  }

  private static String firstLine(String file) {
    try {
      return Files.readAllLines(java.nio.file.Path.of(file), StandardCharsets.UTF_8).stream().findFirst().orElse("").strip();
    } catch (IOException | SecurityException e) {
      return "";
    }
  }
}
