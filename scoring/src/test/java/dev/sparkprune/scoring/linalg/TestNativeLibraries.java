package dev.sparkprune.scoring.linalg;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparkprune.scoring.linalg.NativeLibraries.Choice;
import dev.sparkprune.scoring.linalg.NativeLibraries.Mode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which library netlib may load, on file trees laid out as Debian lays out OpenBLAS and the
 * reference libblas3 (the alternatives symlink, the versioned file), and on this machine's own.
 */
class TestNativeLibraries {
  @TempDir Path root;

  /** The ELF bytes do not matter to the decision, only the strings the library carries. */
  private static Path library(Path file, String content) throws IOException {
    Files.createDirectories(file.getParent());
    byte[] bytes = new byte[4096];
    byte[] text = content.getBytes(StandardCharsets.ISO_8859_1);
    System.arraycopy(text, 0, bytes, 1000, text.length);
    return Files.write(file, bytes);
  }

  /** Debian: lib/libblas.so.3 -> alternatives/libblas.so.3 -> target (the alternatives link). */
  private Path debianAlternative(String name, Path target) throws IOException {
    Path lib = Files.createDirectories(root.resolve("usr/lib/x86_64-linux-gnu"));
    Path alternative = Files.createDirectories(root.resolve("etc/alternatives")).resolve(name + "-x86_64-linux-gnu");
    Files.createSymbolicLink(alternative, target);
    return Files.createSymbolicLink(lib.resolve(name), alternative);
  }

  private Choice choose(List<Path> openBlasDirectories) {
    return NativeLibraries.choose(new Properties(), "Linux", openBlasDirectories, List.of(root.resolve("usr/lib/x86_64-linux-gnu")));
  }

  private Path openBlasDirectory() throws IOException {
    Path directory = root.resolve("usr/lib/x86_64-linux-gnu/openblas-pthread");
    library(directory.resolve("libblas.so.3"), "libopenblas.so.0");
    library(directory.resolve("liblapack.so.3"), "libopenblas.so.0 libgfortran.so.5");
    return directory;
  }

  /** libblas3 3.11: blas/libblas.so.3 -> libblas.so.3.11.0, plain Fortran symbols only. */
  private Path referenceBlas() throws IOException {
    Path file = library(root.resolve("usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"), "sgemm_ dgemm_ libblas.so.3 libgfortran.so.5");
    return Files.createSymbolicLink(file.resolveSibling("libblas.so.3"), file.getFileName());
  }

  @Test
  void openBlasInItsOwnDirectoryIsLoadedByAbsolutePath() throws IOException {
    Path directory = openBlasDirectory();
    debianAlternative("libblas.so.3", referenceBlas());
    Choice choice = choose(List.of(root.resolve("usr/lib64/openblas-pthreads"), directory));
    assertThat(choice).isEqualTo(new Choice(Mode.LIBRARIES, directory.resolve("libblas.so.3").toRealPath().toString(),
        directory.resolve("liblapack.so.3").toRealPath().toString(), "OpenBLAS"));
  }

  @Test
  void theReferenceBlasBehindTheAlternativesLinkRunsJava() throws IOException {
    Path reference = referenceBlas();
    debianAlternative("libblas.so.3", reference);
    Choice choice = choose(List.of(root.resolve("usr/lib/x86_64-linux-gnu/openblas-pthread")));
    assertThat(choice.mode()).isEqualTo(Mode.JAVA);
    assertThat(choice.blasLibrary()).isEmpty();
    assertThat(choice.reason()).isEqualTo("libblas.so.3 is the reference BLAS (" + reference.toRealPath()
        + "), slower than netlib's Java code; bin/setup-native-blas installs OpenBLAS");
  }

  @Test
  void noLibraryOrADanglingAlternativeRunsJavaWithoutAskingNetlib() throws IOException {
    Choice none = choose(List.of(root.resolve("usr/lib/x86_64-linux-gnu/openblas-pthread")));
    assertThat(none).isEqualTo(Choice.java("no native BLAS installed (bin/setup-native-blas installs OpenBLAS)"));
    // The package that owned the alternative's target was removed; the links stay behind.
    debianAlternative("libblas.so.3", root.resolve("usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"));
    assertThat(choose(List.of())).isEqualTo(none);
    // The link's target comes back without its LAPACK: OpenBLAS serves BLAS, LAPACK stays Java.
    library(root.resolve("usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"), "libopenblas.so.0");
    assertThat(choose(List.of(root.resolve("usr/lib/x86_64-linux-gnu/openblas-pthread"))).reason()).isEqualTo("OpenBLAS");
    assertThat(choose(List.of(root.resolve("usr/lib/x86_64-linux-gnu/openblas-pthread"))).lapackLibrary()).isEmpty();
  }

  @Test
  void anotherOptimizedBlasBehindTheAlternativeIsLoadedWithTheLapackBesideIt() throws IOException {
    Path blis = library(root.resolve("usr/lib/x86_64-linux-gnu/blis-pthread/libblas.so.3"), "bli_sgemm bli_init");
    debianAlternative("libblas.so.3", blis);
    Choice withoutLapack = choose(List.of());
    assertThat(withoutLapack).isEqualTo(new Choice(Mode.LIBRARIES, blis.toRealPath().toString(), "", "BLIS"));
    Path lapack = library(root.resolve("usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3"), "dpotrf_ libblas.so.3");
    debianAlternative("liblapack.so.3", lapack);
    assertThat(choose(List.of())).isEqualTo(new Choice(Mode.LIBRARIES, blis.toRealPath().toString(), lapack.toRealPath().toString(), "BLIS"));
  }

  @Test
  void userSettingsAndOtherSystemsLeaveNetlibAlone() throws IOException {
    debianAlternative("libblas.so.3", referenceBlas());
    List<Path> lib = List.of(root.resolve("usr/lib/x86_64-linux-gnu"));
    Properties path = new Properties();
    path.setProperty(NativeLibraries.BLAS_PATH, "/opt/blas/libblas.so");
    assertThat(NativeLibraries.choose(path, "Linux", List.of(), lib))
        .isEqualTo(new Choice(Mode.AS_CONFIGURED, "/opt/blas/libblas.so", "", "set by -D" + NativeLibraries.BLAS_PATH));
    Properties disabled = new Properties();
    disabled.setProperty(NativeLibraries.BLAS_ALLOW, "false");
    assertThat(NativeLibraries.choose(disabled, "Linux", List.of(), lib))
        .isEqualTo(Choice.java("native BLAS disabled by -D" + NativeLibraries.BLAS_ALLOW + "=false"));
    assertThat(NativeLibraries.choose(new Properties(), "Mac OS X", List.of(), lib).mode()).isEqualTo(Mode.AS_CONFIGURED);
  }

  @Test
  void aMarkerAcrossTwoReadsIsFound() throws IOException {
    byte[] bytes = new byte[(1 << 20) + 4096];
    Arrays.fill(bytes, (byte) 'x');
    byte[] marker = "libopenblas.so.0".getBytes(StandardCharsets.ISO_8859_1);
    System.arraycopy(marker, 0, bytes, (1 << 20) - 5, marker.length);
    Path file = Files.write(root.resolve("libblas.so.3"), bytes);
    assertThat(NativeLibraries.implementation(file)).contains("OpenBLAS");
    Arrays.fill(bytes, (byte) 'x');
    assertThat(NativeLibraries.implementation(Files.write(file, bytes))).isEmpty();
    assertThat(NativeLibraries.implementation(root.resolve("absent.so"))).isEmpty();
  }

  /** This machine's real libraries where installed: Debian's OpenBLAS and reference libblas3. */
  @Test
  void installedDebianLibrariesAreRecognised() {
    Path openBlas = Path.of("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3");
    Path reference = Path.of("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3");
    assumeTrue(Files.isReadable(openBlas) || Files.isReadable(reference), "neither Debian's OpenBLAS nor libblas3 is installed: skipping");
    if (Files.isReadable(openBlas)) {
      assertThat(NativeLibraries.implementation(openBlas)).contains("OpenBLAS");
    }
    if (Files.isReadable(reference)) {
      assertThat(NativeLibraries.implementation(reference)).isEmpty();
    }
  }
}
