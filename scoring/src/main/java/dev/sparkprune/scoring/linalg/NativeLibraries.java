package dev.sparkprune.scoring.linalg;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;

/**
 * Decides, before dev.ludovic.netlib looks for itself, which native BLAS and LAPACK it may load.
 * Left alone, netlib dlopens whatever {@code libblas.so.3} resolves to: Debian's reference
 * {@code libblas3} (pulled in by numpy or R) runs sgemm ~15x slower than netlib's own Java code,
 * and where no library exists its JNI stub prints "JNI_OnLoad ... failed" lines on stderr. So
 * netlib loads only a library recognised as optimized, by absolute path; otherwise it runs Java.
 */
final class NativeLibraries {
  static final String BLAS_PATH = "dev.ludovic.netlib.blas.nativeLibPath";
  static final String BLAS_NAME = "dev.ludovic.netlib.blas.nativeLib";
  static final String BLAS_ALLOW = "dev.ludovic.netlib.blas.allowNative";
  static final String LAPACK_PATH = "dev.ludovic.netlib.lapack.nativeLibPath";
  static final String LAPACK_ALLOW = "dev.ludovic.netlib.lapack.allowNative";

  /** Debian/Ubuntu and Red Hat homes of OpenBLAS's libblas.so.3 and liblapack.so.3, tried first. */
  static final List<Path> OPENBLAS_DIRECTORIES = List.of(
      Path.of("/usr/lib/x86_64-linux-gnu/openblas-pthread"),
      Path.of("/usr/lib/aarch64-linux-gnu/openblas-pthread"),
      Path.of("/usr/lib64/openblas-pthreads"),
      Path.of("/usr/lib/openblas-pthread"));

  /** Where the dynamic linker finds libblas.so.3 on common distributions (after LD_LIBRARY_PATH). */
  private static final List<Path> SYSTEM_DIRECTORIES = List.of(
      Path.of("/usr/lib/x86_64-linux-gnu"), Path.of("/lib/x86_64-linux-gnu"),
      Path.of("/usr/lib/aarch64-linux-gnu"), Path.of("/lib/aarch64-linux-gnu"),
      Path.of("/usr/lib64"), Path.of("/lib64"), Path.of("/usr/local/lib"), Path.of("/usr/lib"), Path.of("/lib"));

  /**
   * Strings only an optimized BLAS carries (its own symbols, or the wrapper's dependency on it);
   * the reference BLAS exports the plain Fortran names only.
   */
  private static final List<Marker> MARKERS = List.of(
      new Marker("openblas", "OpenBLAS"), new Marker("bli_", "BLIS"), new Marker("mkl_", "MKL"),
      new Marker("ATL_", "ATLAS"), new Marker("armpl", "Arm PL"));

  /** Markers sit in the dynamic symbol tables near the start; never scan a huge file whole. */
  private static final long SCAN_LIMIT = 64L << 20;

  /** Longer than any marker: the bytes carried from one read to the next. */
  private static final int CARRY = 16;

  /** A string in a library's bytes and the implementation it identifies. */
  private record Marker(String text, String implementation) {}

  /** Who picks the library: the user or netlib's own search; a path chosen here; or nobody (Java). */
  enum Mode { AS_CONFIGURED, LIBRARIES, JAVA }

  /** The decision; library paths are empty where that library stays Java. */
  record Choice(Mode mode, String blasLibrary, String lapackLibrary, String reason) {
    Choice {
      requireNonNull(mode, "mode is null");
      requireNonNull(blasLibrary, "blasLibrary is null");
      requireNonNull(lapackLibrary, "lapackLibrary is null");
      requireNonNull(reason, "reason is null");
    }

    static Choice java(String reason) {
      return new Choice(Mode.JAVA, "", "", reason);
    }
  }

  private NativeLibraries() {}

  /** The choice for this JVM: its system properties, OS and LD_LIBRARY_PATH. */
  static Choice chooseForThisMachine() {
    List<Path> directories = new ArrayList<>();
    String ldLibraryPath = System.getenv("LD_LIBRARY_PATH");
    if (ldLibraryPath != null) {
      for (String entry : ldLibraryPath.split(":")) {
        if (!entry.isBlank()) {
          directories.add(Path.of(entry));
        }
      }
    }
    directories.addAll(SYSTEM_DIRECTORIES);
    return choose(System.getProperties(), System.getProperty("os.name", ""), OPENBLAS_DIRECTORIES, directories);
  }

  /**
   * User settings win; off Linux netlib searches as it always did. On Linux: OpenBLAS's own
   * directory first, then the first libblas.so.3 on the library path, used only when optimized.
   */
  static Choice choose(Properties properties, String osName, List<Path> openBlasDirectories, List<Path> libraryDirectories) {
    for (String key : List.of(BLAS_PATH, BLAS_NAME)) {
      if (properties.getProperty(key) != null) {
        return new Choice(Mode.AS_CONFIGURED, properties.getProperty(key), "", "set by -D" + key);
      }
    }
    if ("false".equalsIgnoreCase(properties.getProperty(BLAS_ALLOW, "true"))) {
      return Choice.java("native BLAS disabled by -D" + BLAS_ALLOW + "=false");
    }
    if (!osName.startsWith("Linux")) {
      return new Choice(Mode.AS_CONFIGURED, "", "", "netlib's own search on " + osName);
    }
    for (Path directory : openBlasDirectories) {
      Optional<Path> blas = find(List.of(directory), "libblas.so.3");
      Optional<Path> lapack = find(List.of(directory), "liblapack.so.3");
      if (blas.isPresent() && lapack.isPresent() && implementation(blas.get()).isPresent()) {
        return new Choice(Mode.LIBRARIES, blas.get().toString(), lapack.get().toString(), implementation(blas.get()).get());
      }
    }
    Optional<Path> blas = find(libraryDirectories, "libblas.so.3");
    if (blas.isEmpty()) {
      return Choice.java("no native BLAS installed (bin/setup-native-blas installs OpenBLAS)");
    }
    Optional<String> implementation = implementation(blas.get());
    if (implementation.isEmpty()) {
      return Choice.java("libblas.so.3 is the reference BLAS (" + blas.get()
          + "), slower than netlib's Java code; bin/setup-native-blas installs OpenBLAS");
    }
    // An optimized BLAS behind libblas.so.3 also serves the LAPACK beside it, whichever that is.
    String lapack = find(libraryDirectories, "liblapack.so.3").map(Path::toString).orElse("");
    return new Choice(Mode.LIBRARIES, blas.get().toString(), lapack, implementation.get());
  }

  /** Sets netlib's properties for the choice; never overrides one the user set. */
  static void apply(Choice choice) {
    switch (choice.mode()) {
      case AS_CONFIGURED -> { }
      case LIBRARIES -> {
        setIfAbsent(BLAS_PATH, choice.blasLibrary());
        if (choice.lapackLibrary().isEmpty()) {
          setIfAbsent(LAPACK_ALLOW, "false");
        } else {
          setIfAbsent(LAPACK_PATH, choice.lapackLibrary());
        }
      }
      case JAVA -> {
        setIfAbsent(BLAS_ALLOW, "false");
        setIfAbsent(LAPACK_ALLOW, "false");
      }
    }
  }

  private static void setIfAbsent(String key, String value) {
    if (System.getProperty(key) == null && System.getProperty(key.replace("nativeLibPath", "nativeLib")) == null) {
      System.setProperty(key, value);
    }
  }

  /** The first readable {@code name} in the directories, symlinks resolved (a dangling link is absent). */
  static Optional<Path> find(List<Path> directories, String name) {
    for (Path directory : directories) {
      Path candidate = directory.resolve(name);
      if (Files.isReadable(candidate)) {
        try {
          return Optional.of(candidate.toRealPath());
        } catch (IOException e) {
          continue; // Vanished or unreadable link: as if absent.
        }
      }
    }
    return Optional.empty();
  }

  /** The optimized implementation the library names, or empty for the reference BLAS (or unreadable). */
  static Optional<String> implementation(Path library) {
    byte[] buffer = new byte[1 << 20];
    long scanned = 0;
    try (InputStream in = Files.newInputStream(library)) {
      int carried = 0;
      int read;
      while (scanned < SCAN_LIMIT && (read = in.read(buffer, carried, buffer.length - carried)) > 0) {
        int end = carried + read;
        // Latin-1 maps bytes one to one, so byte offsets and string offsets agree.
        String window = new String(buffer, 0, end, StandardCharsets.ISO_8859_1);
        for (Marker marker : MARKERS) {
          if (window.contains(marker.text())) {
            return Optional.of(marker.implementation());
          }
        }
        scanned += read;
        // Carry the tail so a marker split across two reads is still seen.
        carried = Math.min(CARRY, end);
        System.arraycopy(buffer, end - carried, buffer, 0, carried);
      }
    } catch (IOException e) {
      return Optional.empty();
    }
    return Optional.empty();
  }
}
