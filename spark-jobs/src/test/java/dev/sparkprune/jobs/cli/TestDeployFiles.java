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
   * the default retries; with Airflow installed, also imports it.
   */
  private static final String CHECK_DAG = String.join("\n",
      "import ast, json, sys",
      "tree = ast.parse(open(sys.argv[1]).read(), sys.argv[1])",
      "found = {'operator': [], 'params': [], 'retries': None, 'args': []}",
      "for node in ast.walk(tree):",
      "    if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'SparkSubmitOperator':",
      "        found['operator'] = sorted(k.arg for k in node.keywords)",
      "        for k in node.keywords:",
      "            if k.arg == 'application_args':",
      "                found['args'] = [e.value if isinstance(e, ast.Constant) else '<' + e.id + '>' for e in k.value.elts]",
      "    if isinstance(node, ast.keyword) and node.arg == 'params':",
      "        found['params'] = sorted(ast.literal_eval(k) for k in node.value.keys)",
      "    if isinstance(node, ast.Dict):",
      "        for k, v in zip(node.keys, node.values):",
      "            if isinstance(k, ast.Constant) and k.value == 'retries':",
      "                found['retries'] = v.value",
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
  void airflowDagParsesAndSubmitsTheMainClassWithTemplatedModelDateAndRetries() throws Exception {
    assumeTrue(hasPython(), "python3 is not installed (.ci/run installs it): skipping the Airflow DAG check");
    JsonNode dag = new ObjectMapper().readTree(python(CHECK_DAG, "deploy/airflow/sparkprune_dag.py"));
    List<String> keywords = new ArrayList<>();
    dag.get("operator").forEach(node -> keywords.add(node.asText()));
    assertThat(keywords).contains("application", "application_args", "java_class", "conn_id", "properties_file");
    assertThat(dag.get("retries").asInt()).isPositive();
    assertThat(dag.get("params").toString()).contains("model_uri", "out_root", "method", "sparsity");
    List<String> args = new ArrayList<>();
    dag.get("args").forEach(node -> args.add(node.asText()));
    assertThat(args).startsWith("prune").contains("{{ params.model_uri }}", "<OUTPUT>");
    String source = Files.readString(ROOT.resolve("deploy/airflow/sparkprune_dag.py"));
    assertThat(source).contains("java_class=\"dev.sparkprune.jobs.cli.Main\"").contains("{{ ds_nodash }}");
    if (!dag.get("imported").isNull()) {
      assertThat(dag.get("imported").asText()).isEqualTo("sparkprune_daily");
    }
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
