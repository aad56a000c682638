package dev.sparkprune.tensorio;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * The read-only data beside the checkout ({@code ../shared}): a real model, texts and golden
 * fixtures. Tests that need it skip with a clear message where it is absent.
 */
public final class SharedData {
  private SharedData() {}

  public static Path root() {
    String configured = System.getProperty("sparkprune.shared.dir");
    Path root = configured != null ? Paths.get(configured) : Paths.get("..", "shared");
    assumeTrue(
        Files.isDirectory(root.resolve("data")),
        () -> "../shared is absent (looked in " + root.toAbsolutePath() + "): skipping a test that needs shared data");
    return root.toAbsolutePath().normalize();
  }

  public static Path path(String relative) {
    Path path = root().resolve(relative);
    assumeTrue(Files.exists(path), () -> path + " is absent: skipping a test that needs it");
    return path;
  }

  public static Path stories260K() {
    return path("data/stories260K");
  }
}
