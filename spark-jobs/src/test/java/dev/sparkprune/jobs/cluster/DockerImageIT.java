package dev.sparkprune.jobs.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * deploy/docker/Dockerfile's steps, run against this build tree where no container engine is at
 * hand: each stage gets a folder standing for its root file system, COPY copies from the
 * repository (less what .dockerignore excludes) or from the build stage, and every RUN line runs
 * in bash as written, its absolute paths moved under the stage's folder. Two commands are stood
 * in for: {@code apt-get} does nothing, and {@code mvn ... package}, whose build already ran
 * (this is an integration test, after package), puts this build's jars where Maven puts them and,
 * for a profile the command names, the files that profile of spark-jobs/pom.xml copies (named
 * from the pom, with their versions). What the image then holds is checked against what the
 * Kubernetes manifests and sparkprune-submit expect of it. Not checked here: the base images,
 * apt's package, Maven's downloads.
 */
class DockerImageIT {
  private static final Path ROOT = LocalReference.ROOT;
  /** An absolute path in a RUN line (after a space, '=', ':' or a quote), to move under the stage's folder. */
  private static final Pattern ABSOLUTE = Pattern.compile("(?<=^|[\\s=:\"'])/(?=[A-Za-z])");

  @TempDir Path dir;

  /** One instruction: keyword and the rest, continuation lines joined. */
  private record Instruction(String keyword, String arguments) {}

  private static List<Instruction> instructions(Path dockerfile) throws IOException {
    List<Instruction> instructions = new ArrayList<>();
    StringBuilder pending = new StringBuilder();
    for (String line : Files.readAllLines(dockerfile)) {
      if (pending.isEmpty() && (line.isBlank() || line.stripLeading().startsWith("#"))) {
        continue;
      }
      if (line.endsWith("\\")) {
        pending.append(line, 0, line.length() - 1).append(' ');
        continue;
      }
      String text = pending.append(line).toString().strip();
      pending.setLength(0);
      int space = text.indexOf(' ');
      instructions.add(new Instruction(text.substring(0, space), text.substring(space + 1).strip()));
    }
    return instructions;
  }

  @Test
  void theImagesBuildStepsGiveTheJarsConfAndS3aTheManifestsUse() throws Exception {
    Path shims = Files.createDirectories(dir.resolve("shims"));
    Path shaded = onlyFile(ROOT.resolve("spark-jobs/target"), "sparkprune-\\d.*\\.jar");
    Path thin = onlyFile(ROOT.resolve("spark-jobs/target"), "sparkprune-spark-jobs-.*\\.jar");
    Map<String, List<String>> profiles = profileCopies();
    writeShims(shims, List.of(shaded, thin), profiles);

    Map<String, Path> stages = new HashMap<>();
    Map<String, String> environment = new HashMap<>();
    Path stage = null;
    Path workdir = null;
    List<String> ignored = dockerignore();
    for (Instruction instruction : instructions(ROOT.resolve("deploy/docker/Dockerfile"))) {
      String arguments = instruction.arguments();
      switch (instruction.keyword()) {
        case "ARG" -> {
          String[] parts = arguments.split("=", 2);
          environment.putIfAbsent(parts[0], parts.length > 1 ? parts[1].replaceAll("^\"|\"$", "") : "");
        }
        case "FROM" -> {
          String[] words = arguments.split("\\s+");
          String name = words.length == 3 ? words[2] : "final";
          stage = Files.createDirectories(dir.resolve("stage-" + name));
          stages.put(name, stage);
          workdir = stage;
        }
        case "WORKDIR" -> workdir = Files.createDirectories(stage.resolve(arguments.substring(1)));
        case "COPY" -> {
          String[] words = arguments.split("\\s+");
          boolean fromStage = words[0].startsWith("--from=");
          Path source = fromStage ? stages.get(words[0].substring("--from=".length())).resolve(words[1].substring(1)) : ROOT.resolve(words[0]);
          String target = words[words.length - 1];
          Path destination = target.startsWith("/") ? stage.resolve(target.substring(1)) : workdir.resolve(target);
          assertThat(source).as("COPY source of " + arguments).exists();
          copy(source, destination, target.endsWith("/"), fromStage ? List.of() : ignored);
        }
        case "RUN" -> runStep(arguments, stage, workdir, shims, environment);
        case "ENV", "USER" -> { }
        default -> throw new AssertionError("Unexpected Dockerfile instruction " + instruction.keyword());
      }
    }

    Path image = stages.get("final");
    // The shaded jar, not the thin one beside it.
    assertThat(image.resolve("opt/sparkprune/sparkprune.jar")).hasSameBinaryContentAs(shaded);
    assertThat(image.resolve("opt/sparkprune/conf/spark-defaults.conf")).hasSameTextualContentAs(ROOT.resolve("conf/spark-defaults.conf"));
    assertThat(image.resolve("opt/spark/conf/spark-defaults.conf").toRealPath()).isEqualTo(image.resolve("opt/sparkprune/conf/spark-defaults.conf").toRealPath());
    // What the spark-operator manifests and the wrapper's Kubernetes path name is in the image.
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    boolean s3a = false;
    for (String manifest : List.of("sparkapplication.yaml", "scheduledsparkapplication.yaml")) {
      String text = Files.readString(ROOT.resolve("deploy/kubernetes").resolve(manifest));
      JsonNode spec = yaml.readTree(text).path("spec");
      spec = spec.has("template") ? spec.path("template") : spec;
      assertThat(inImage(image, spec.path("mainApplicationFile").asText())).isRegularFile();
      Path script = inImage(image, "local://" + spec.path("sparkConf").path("spark.executor.resource.gpu.discoveryScript").asText());
      assertThat(Files.getPosixFilePermissions(script)).contains(java.nio.file.attribute.PosixFilePermission.OWNER_EXECUTE);
      s3a |= text.contains("s3a://");
    }
    assertThat(Files.readString(ROOT.resolve("deploy/sparkprune-submit"))).contains("local:///opt/sparkprune/sparkprune.jar");
    if (s3a) {
      // s3a:// needs hadoop-aws at Spark's Hadoop version and its AWS SDK bundle on Spark's classpath.
      assertThat(profiles).containsKey("s3a-jars");
      for (String jar : profiles.get("s3a-jars")) {
        assertThat(image.resolve("opt/spark/jars").resolve(jar)).as("s3a jar " + jar + " in /opt/spark/jars").exists();
      }
      String hadoopAws = "hadoop-aws-" + property("hadoop.version") + ".jar";
      assertThat(profiles.get("s3a-jars")).contains(hadoopAws)
          .anyMatch(jar -> jar.startsWith("bundle-"));
    }
  }

  private static Path inImage(Path image, String uri) {
    assertThat(uri).startsWith("local:///");
    return image.resolve(uri.substring("local:///".length()));
  }

  private static Path onlyFile(Path folder, String regex) throws IOException {
    try (Stream<Path> files = Files.list(folder)) {
      List<Path> matches = files.filter(path -> path.getFileName().toString().matches(regex)).toList();
      assertThat(matches).as(regex + " in " + folder + " (run after mvn package)").hasSize(1);
      return matches.get(0);
    }
  }

  /** The Dockerfile's RUN line in bash, in the stage's working folder, absolute paths under the stage's root. */
  private static void runStep(String command, Path stage, Path workdir, Path shims, Map<String, String> environment) throws Exception {
    Matcher matcher = ABSOLUTE.matcher(command);
    String moved = matcher.replaceAll(Matcher.quoteReplacement(stage + "/"));
    ProcessBuilder builder = new ProcessBuilder("bash", "-euo", "pipefail", "-c", moved).directory(workdir.toFile()).redirectErrorStream(true);
    builder.environment().putAll(environment);
    builder.environment().put("PATH", shims + ":" + System.getenv("PATH"));
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(2, TimeUnit.MINUTES)).isTrue();
    assertThat(process.exitValue()).as("RUN " + command + "\n" + output).isZero();
  }

  private static void writeShims(Path shims, List<Path> jars, Map<String, List<String>> profiles) throws IOException {
    StringBuilder mvn = new StringBuilder(String.join("\n",
        "#!/usr/bin/env bash",
        "# Stands in for Maven: the build ran before this test; package puts its jars where Maven does.",
        "set -euo pipefail",
        "[[ \" $* \" == *\" package \"* ]] || exit 0",
        "mkdir -p spark-jobs/target",
        ""));
    for (Path jar : jars) {
      mvn.append("cp '").append(jar).append("' spark-jobs/target/\n");
    }
    for (Map.Entry<String, List<String>> profile : profiles.entrySet()) {
      mvn.append("profile=' -P([^ ]*,)?").append(profile.getKey()).append("(,[^ ]*)? '\n");
      mvn.append("if [[ \" $* \" =~ $profile ]]; then\n");
      mvn.append("  mkdir -p spark-jobs/target/").append(profile.getKey()).append('\n');
      for (String file : profile.getValue()) {
        mvn.append("  echo stand-in > spark-jobs/target/").append(profile.getKey()).append('/').append(file).append('\n');
      }
      mvn.append("fi\n");
    }
    writeScript(shims.resolve("mvn"), mvn.toString());
    writeScript(shims.resolve("apt-get"), "#!/usr/bin/env bash\nexit 0\n");
  }

  private static void writeScript(Path path, String text) throws IOException {
    Files.writeString(path, text, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  /**
   * spark-jobs' profiles that copy artifacts to a target folder named as the profile: the file
   * names Maven gives them (artifactId-version.jar, properties from the parent pom resolved).
   */
  private static Map<String, List<String>> profileCopies() throws Exception {
    Document pom = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(ROOT.resolve("spark-jobs/pom.xml").toFile());
    Map<String, List<String>> copies = new HashMap<>();
    NodeList profiles = pom.getElementsByTagName("profile");
    for (int i = 0; i < profiles.getLength(); i++) {
      Element profile = (Element) profiles.item(i);
      String id = text(profile, "id");
      NodeList folders = profile.getElementsByTagName("outputDirectory");
      if (folders.getLength() == 0 || !folders.item(0).getTextContent().trim().equals("${project.build.directory}/" + id)) {
        continue;
      }
      List<String> files = new ArrayList<>();
      NodeList items = profile.getElementsByTagName("artifactItem");
      for (int j = 0; j < items.getLength(); j++) {
        Element item = (Element) items.item(j);
        files.add(text(item, "artifactId") + "-" + resolve(text(item, "version")) + ".jar");
      }
      copies.put(id, files);
    }
    return copies;
  }

  private static String text(Element element, String tag) {
    return element.getElementsByTagName(tag).item(0).getTextContent().trim();
  }

  private static String resolve(String value) throws Exception {
    Matcher property = Pattern.compile("\\$\\{([^}]+)}").matcher(value);
    return property.matches() ? property(property.group(1)) : value;
  }

  static String property(String name) throws Exception {
    Document parent = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(ROOT.resolve("pom.xml").toFile());
    Element properties = (Element) parent.getElementsByTagName("properties").item(0);
    return text(properties, name);
  }

  private static List<String> dockerignore() throws IOException {
    Path file = ROOT.resolve(".dockerignore");
    return Files.exists(file) ? Files.readAllLines(file).stream().map(String::strip).filter(line -> !line.isEmpty()).toList() : List.of();
  }

  /** Copies a file or folder as COPY does (a folder's content into the target folder), skipping ignored names. */
  private static void copy(Path source, Path destination, boolean intoFolder, List<String> ignored) throws IOException {
    if (Files.isRegularFile(source)) {
      Path target = intoFolder ? destination.resolve(source.getFileName()) : destination;
      Files.createDirectories(target.getParent());
      Files.copy(source, target, java.nio.file.StandardCopyOption.COPY_ATTRIBUTES, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      return;
    }
    try (Stream<Path> files = Files.walk(source)) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Path relative = source.relativize(file);
        if (isIgnored(relative, ignored) || !Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        Path target = destination.resolve(relative.toString());
        Files.createDirectories(target.getParent());
        Files.copy(file, target, java.nio.file.StandardCopyOption.COPY_ATTRIBUTES, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
    }
  }

  private static boolean isIgnored(Path relative, List<String> ignored) {
    for (Path part : relative) {
      String name = part.toString();
      if (ignored.contains(name) || ignored.contains("**/" + name) || ignored.stream().anyMatch(glob -> glob.startsWith("*.") && name.endsWith(glob.substring(1)))) {
        return true;
      }
    }
    return false;
  }
}
