package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.sparkprune.jobs.prune.PruneKeys;
import dev.sparkprune.jobs.prune.FixedInputs;
import dev.sparkprune.jobs.prune.PruneOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The deployment files hang together: the Airflow DAG parses, the spark-operator manifests parse
 * and name a main class, jar path and discovery script the image provides, and their arguments
 * are accepted by the real command-line parser.
 */
class TestDeployFiles {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private static String python(String script, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("python3", "-c", script));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).directory(ROOT.toFile()).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).as(output).isZero();
    return output.trim();
  }

  private static boolean hasPython() {
    try {
      return new ProcessBuilder("python3", "--version").start().waitFor() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  /**
   * Parses the DAG with Python's ast and reports the operator's keywords, the DAG's params and
   * the default retries; runs the DAG's own prune_args and output_path (taken from the file, so
   * without Airflow) on the params given as argv[2] and prints the command lines they build; with
   * Airflow installed, also imports it.
   */
  private static final String CHECK_DAG = String.join("\n",
      "import ast, json, sys",
      "source = open(sys.argv[1]).read()",
      "tree = ast.parse(source, sys.argv[1])",
      "found = {'operator': {}, 'params': [], 'retries': None}",
      "for node in ast.walk(tree):",
      "    if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'SparkSubmitOperator':",
      "        found['operator'] = {k.arg: ast.unparse(k.value) for k in node.keywords}",
      "    if isinstance(node, ast.keyword) and node.arg == 'params':",
      "        found['params'] = sorted(ast.literal_eval(k) for k in node.value.keys)",
      "    if isinstance(node, ast.Dict):",
      "        for k, v in zip(node.keys, node.values):",
      "            if isinstance(k, ast.Constant) and k.value == 'retries':",
      "                found['retries'] = v.value",
      "helpers = ast.Module([n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ('output_path', 'prune_args')",
      "                      or isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', '') == 'TUNING'], [])",
      "scope = {}",
      "exec(compile(helpers, sys.argv[1], 'exec'), scope)",
      "found['args'] = [scope['prune_args'](params, '20261102') for params in json.loads(sys.argv[2])]",
      "try:",
      "    import airflow",
      "    import importlib.util",
      "    spec = importlib.util.spec_from_file_location('dag', sys.argv[1])",
      "    module = importlib.util.module_from_spec(spec)",
      "    spec.loader.exec_module(module)",
      "    found['imported'] = module.dag.dag_id",
      "except ImportError:",
      "    found['imported'] = None",
      "print(json.dumps(found))");

  @Test
  void airflowDagSubmitsTheMainClassWithTheRunsSettingsOnlyAndAnExplicitDeployMode() throws Exception {
    assumeTrue(hasPython(), "python3 is not installed (.ci/run installs it): skipping the Airflow DAG check");
    String base = "{\"model_uri\": \"hdfs:///lake/models/llama-2-7b/\", \"out_root\": \"hdfs:///lake/pruned\", \"calib_uri\": \"hdfs:///c.txt\", "
        + "\"method\": \"wanda\", \"sparsity\": \"0.5\", \"seed\": 0, \"nsamples\": null, \"seqlen\": null, \"gpus_per_task\": null}";
    String tuned = base.replace("\"nsamples\": null, \"seqlen\": null, \"gpus_per_task\": null", "\"nsamples\": 16, \"seqlen\": 512, \"gpus_per_task\": \"0.5\"");
    JsonNode dag = new ObjectMapper().readTree(python(CHECK_DAG, "deploy/airflow/sparkprune_dag.py", "[" + base + ", " + tuned + "]"));
    JsonNode operator = dag.get("operator");
    assertThat(operator.get("java_class").asText()).isEqualTo("'" + Main.class.getName() + "'");
    assertThat(operator.get("deploy_mode").asText()).isIn("'client'", "'cluster'");
    assertThat(operator.get("application_args").asText()).contains("prune_args(params, ds_nodash)");
    // Nothing the cluster's conf/spark-defaults.conf gives: no driver options or files of its own.
    assertThat(operator.has("conf")).isFalse();
    assertThat(operator.has("files")).isFalse();
    assertThat(dag.get("retries").asInt()).isPositive();
    assertThat(dag.get("params").toString()).contains("model_uri", "out_root", "method", "sparsity", "seqlen", "nsamples", "gpus_per_task");

    List<String> plain = strings(dag.get("args").get(0));
    assertThat(plain).containsExactly("prune", "--model", "hdfs:///lake/models/llama-2-7b/",
        "--out", "hdfs:///lake/pruned/llama-2-7b/20261102/wanda-0.5", "--method", "wanda", "--sparsity", "0.5", "--seed", "0",
        "--calib", "hdfs:///c.txt");
    // Tuning settings a run sets are passed; unset ones leave the site's spark.sparkprune.* in force.
    assertThat(strings(dag.get("args").get(1))).containsSubsequence("--nsamples", "16").containsSubsequence("--seqlen", "512")
        .containsSubsequence("--gpus-per-task", "0.5");
    // The real parser accepts what the DAG builds.
    picocli.CommandLine.ParseResult parsed = Main.commandLine().parseArgs(strings(dag.get("args").get(1)).toArray(String[]::new));
    PruneOptions options = PruneCommand.options(new Arguments(parsed.subcommand()), FixedInputs.NONE);
    assertThat(options.seqlen()).isEqualTo(512);
    assertThat(options.gpusPerTask()).isEqualTo(0.5);
    if (!dag.get("imported").isNull()) {
      assertThat(dag.get("imported").asText()).isEqualTo("sparkprune_daily");
    }
  }

  /** The driver's module options in conf/spark-defaults.conf are Spark's own (its launcher's JavaModuleOptions). */
  @Test
  void sparkDefaultsGiveTheDriverSparksModuleOptions() throws IOException {
    java.util.Properties defaults = new java.util.Properties();
    try (var reader = Files.newBufferedReader(ROOT.resolve("conf/spark-defaults.conf"))) {
      defaults.load(reader);
    }
    assertThat(defaults.getProperty("spark.driver.extraJavaOptions").trim())
        .isEqualTo(org.apache.spark.launcher.JavaModuleOptions.defaultModuleOptions());
  }

  /** The image's AWS SDK bundle is the one hadoop-aws of the build's Hadoop was built with (its hadoop-project pom says). */
  @Test
  void theImagesAwsSdkIsTheOneHadoopAwsWasBuiltWith() throws Exception {
    String hadoop = pomProperty("hadoop.version");
    Path project = Path.of(System.getProperty("user.home"), ".m2/repository/org/apache/hadoop/hadoop-project", hadoop,
        "hadoop-project-" + hadoop + ".pom");
    assumeTrue(Files.exists(project), project + " is not in the local Maven repository: skipping the AWS SDK version check");
    String text = Files.readString(project);
    java.util.regex.Matcher version = java.util.regex.Pattern.compile("<aws-java-sdk-v2.version>([^<]+)</aws-java-sdk-v2.version>").matcher(text);
    assertThat(version.find()).isTrue();
    assertThat(pomProperty("aws.sdk.version")).isEqualTo(version.group(1));
  }

  private static String pomProperty(String name) throws IOException {
    java.util.regex.Matcher matcher = java.util.regex.Pattern.compile("<" + java.util.regex.Pattern.quote(name) + ">([^<]+)</")
        .matcher(Files.readString(ROOT.resolve("pom.xml")));
    assertThat(matcher.find()).as(name + " in pom.xml").isTrue();
    return matcher.group(1).trim();
  }

  private static List<String> strings(JsonNode array) {
    List<String> values = new ArrayList<>();
    array.forEach(node -> values.add(node.asText()));
    return values;
  }

  /** What the image provides, from the Dockerfile: where the jar and conf/ land. */
  private static void assertImageProvides(JsonNode spec) throws IOException {
    String dockerfile = Files.readString(ROOT.resolve("deploy/docker/Dockerfile"));
    assertThat(dockerfile).contains("COPY --from=build /src/sparkprune.jar /opt/sparkprune/sparkprune.jar")
        .contains("COPY conf/ /opt/sparkprune/conf/").contains("libopenblas0-pthread");
    // DockerImageIT runs the Dockerfile's steps against the build tree.
    assertThat(spec.get("mainApplicationFile").asText()).isEqualTo("local:///opt/sparkprune/sparkprune.jar");
    assertThat(spec.get("mainClass").asText()).isEqualTo(Main.class.getName());
    String script = spec.get("sparkConf").get("spark.executor.resource.gpu.discoveryScript").asText();
    assertThat(script).startsWith("/opt/sparkprune/conf/");
    assertThat(ROOT.resolve("conf").resolve(script.substring("/opt/sparkprune/conf/".length()))).isExecutable();
    assertThat(spec.get("sparkConf").get("spark.executor.resource.gpu.vendor").asText()).isEqualTo("nvidia.com");
    assertThat(spec.get("sparkConf").get("spark.kryo.registrator").asText())
        .isEqualTo(dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator.class.getName());
  }

  @Test
  void sparkApplicationRunsAPruneOnGpuExecutors() throws IOException {
    JsonNode app = YAML.readTree(ROOT.resolve("deploy/kubernetes/sparkapplication.yaml").toFile());
    assertThat(app.get("apiVersion").asText()).isEqualTo("sparkoperator.k8s.io/v1beta2");
    assertThat(app.get("kind").asText()).isEqualTo("SparkApplication");
    JsonNode spec = app.get("spec");
    assertImageProvides(spec);
    assertThat(spec.get("executor").get("gpu").get("name").asText()).isEqualTo("nvidia.com/gpu");
    assertThat(spec.get("executor").get("gpu").get("quantity").asInt()).isEqualTo(1);
    assertThat(spec.get("sparkConf").get("spark.executor.resource.gpu.amount").asText()).isEqualTo("1");
    List<String> args = strings(spec.get("arguments"));
    assertThat(args.get(0)).isEqualTo("prune");
    // The real parser accepts the arguments; the GPU setting is one the job schedules with.
    picocli.CommandLine.ParseResult parsed = Main.commandLine().parseArgs(args.toArray(String[]::new));
    PruneOptions options = PruneCommand.options(new Arguments(parsed.subcommand()), FixedInputs.NONE);
    assertThat(options.gpusPerTask()).isEqualTo(1.0);
    assertThat(options.model()).startsWith("s3a://");
    assertThat(spec.get("restartPolicy").get("type").asText()).isEqualTo("OnFailure");
  }

  @Test
  void scheduledSparkApplicationRunsTheBatchNightlyWithoutOverlap() throws IOException {
    JsonNode app = YAML.readTree(ROOT.resolve("deploy/kubernetes/scheduledsparkapplication.yaml").toFile());
    assertThat(app.get("kind").asText()).isEqualTo("ScheduledSparkApplication");
    JsonNode spec = app.get("spec");
    assertThat(spec.get("schedule").asText()).matches("(\\S+ ){4}\\S+");
    assertThat(spec.get("concurrencyPolicy").asText()).isEqualTo("Forbid");
    JsonNode template = spec.get("template");
    assertImageProvides(template);
    assertThat(strings(template.get("arguments"))).containsExactly(
        "batch", "--manifest", "s3a://lake/sparkprune/manifest.jsonl", "--out-root", "s3a://lake/pruned");
    JsonNode conf = template.get("sparkConf");
    assertThat(conf.get(PruneKeys.GPUS_PER_TASK.confKey()).asText()).isEqualTo("1");
    // New GPU executors per profile need dynamic allocation (with shuffle tracking on Kubernetes).
    assertThat(conf.get("spark.dynamicAllocation.enabled").asText()).isEqualTo("true");
    assertThat(conf.get("spark.dynamicAllocation.shuffleTracking.enabled").asText()).isEqualTo("true");
  }
}
