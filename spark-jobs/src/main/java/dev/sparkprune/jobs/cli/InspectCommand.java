package dev.sparkprune.jobs.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.jobs.prune.PruneKeys;
import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.plan.BlockPlan;
import dev.sparkprune.jobs.plan.CalibrationShape;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.plan.ExpertGroup;
import dev.sparkprune.jobs.plan.ExpertPlan;
import dev.sparkprune.jobs.plan.PlanSettings;
import dev.sparkprune.jobs.plan.RunPlan;
import dev.sparkprune.jobs.plan.MemoryPlan;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Block;
import dev.sparkprune.tensorio.arch.Expert;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.arch.TensorRole;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.Shard;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import picocli.CommandLine.Model.CommandSpec;

/** {@code sparkprune inspect}: what an archive holds and what would be pruned, from headers only. */
final class InspectCommand implements Subcommand {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final CommandSpec spec;

  InspectCommand() {
    spec = Specs.command(this, "inspect", "Describe a model archive from its headers: architecture, blocks, linears, dtypes, shards.");
    spec.addOption(Specs.flag("json", "Machine-readable JSON instead of the table."));
    spec.addOption(Specs.flag("plan", "The memory plan of a prune run instead: bytes per block, task and executor; fits or not."));
    spec.addOption(Specs.option("method", "M", "With --plan: the pruning method planned. Default: sparsegpt (the largest statistics)."));
    spec.addOption(Specs.option("nsamples", "N", "With --plan: calibration sequences. Default: " + PruneKeys.NSAMPLES_DEFAULT));
    spec.addOption(Specs.option("seqlen", "T", "With --plan: tokens per sequence. Default: " + PruneKeys.SEQLEN_DEFAULT));
    spec.addOption(Specs.option("scoring-task-mb", "MB", "With --plan: float-weight MB per scoring task. Default: "
        + PruneKeys.SCORING_TASK_MB_DEFAULT));
    spec.addOption(Specs.option("executor-memory", "SIZE", "With --plan: executor heap (4g, 512m). Default: the Spark conf's."));
    spec.addOption(Specs.option("executor-cores", "N", "With --plan: tasks per executor. Default: 1"));
    spec.addOption(Specs.option("executors", "N", "With --plan: executors. Default: 1"));
    spec.addOption(Specs.option("expert-task-mb", "MB", "With --plan: MB of experts + statistics per expert task. Default: 1/4 task heap."));
    Specs.positional(spec, "ARCHIVE", "The model archive (local path or Hadoop URI).");
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  @Override
  public int run(Arguments line, PrintStream out) throws IOException {
    String location = line.positionals().get(0);
    ModelArchive archive = ModelArchive.open(new HadoopFileIO(new Configuration()), location);
    ModelLayout layout = Architectures.layout(archive);
    if (line.flag("plan")) {
      RunPlan plan = plan(archive, layout, line);
      if (line.flag("json")) {
        out.println(JSON.writeValueAsString(planJson(plan)));
      } else {
        printPlan(archive, plan, out);
      }
      return Main.EXIT_OK;
    }
    if (line.flag("json")) {
      out.println(JSON.writeValueAsString(toJson(archive, layout)));
    } else {
      printTable(archive, layout, out);
    }
    return Main.EXIT_OK;
  }

  private static MemoryPlan.Settings planSettings(Arguments line) {
    PruningMethod method = line.value("method").map(PruningMethod::parse).orElse(PruningMethod.SPARSEGPT);
    return new MemoryPlan.Settings(line.positiveInt("nsamples", PruneKeys.NSAMPLES_DEFAULT), line.positiveInt("seqlen", PruneKeys.SEQLEN_DEFAULT),
        method, (long) line.positiveInt("scoring-task-mb", PruneKeys.SCORING_TASK_MB_DEFAULT) << 20);
  }

  private static ExecutorShape executor(Arguments line) {
    if (line.value("executor-memory").isEmpty()) {
      ExecutorShape conf = SparkExecutors.of(null, new SparkConf());
      return conf.withCounts(line.positiveInt("executor-cores", conf.cores()), line.positiveInt("executors", Math.max(1, conf.executors())));
    }
    return ExecutorShape.given(line.value("executor-memory").get(), line.positiveInt("executor-cores", 1), line.positiveInt("executors", 1));
  }

  /**
   * The run plan of a prune of this archive with the given settings, as {@code prune} checks it:
   * the calibration cache, the expert groups (a method that calibrates), the blocks and scoring.
   * Calibration partitions: one per task slot of the executors.
   */
  static RunPlan plan(ModelArchive archive, ModelLayout layout, Arguments line) {
    MemoryPlan.Settings settings = planSettings(line);
    ExecutorShape executor = executor(line);
    int partitions = executor.cores() * Math.max(1, executor.executors());
    boolean calibrates = settings.method().needsCalibration();
    Optional<RunPlan.Cache> cache = calibrates
        ? Optional.of(RunPlan.cache(archive, layout, new CalibrationSettings("", settings.nsamples(), settings.seqlen(), 0, 0), partitions))
        : Optional.empty();
    Optional<ExpertPlan> experts = Optional.empty();
    if (calibrates) {
      long budget = (long) line.positiveInt("expert-task-mb", Integer.MAX_VALUE) << 20;
      experts = Optional.of(ExpertPlan.of(layout, archive.config(), new PlanSettings(
          new CalibrationShape(settings.nsamples(), settings.seqlen(), executor.cores()), RunPlan.statistics(settings.method()),
          InputHook.ExpertInputs.ROUTED, line.value("expert-task-mb").isPresent() ? budget : 0, executor)));
    }
    return RunPlan.prune("Does not fit", executor, cache, experts, MemoryPlan.of(archive, layout, settings, executor));
  }

  static void printPlan(ModelArchive archive, RunPlan runPlan, PrintStream out) {
    MemoryPlan plan = runPlan.blocks().orElseThrow();
    MemoryPlan.Settings settings = plan.settings();
    ExecutorShape executor = runPlan.executor();
    out.println("Model archive  " + archive.location());
    out.printf(Locale.ROOT, "Settings       %s, nsamples %d, seqlen %d, scoring tasks of %s%n", settings.method().displayName(),
        settings.nsamples(), settings.seqlen(), TextTable.bytes(settings.scoringTaskBytes()));
    out.printf(Locale.ROOT, "Executors      %d x %d core(s), %s usable of %s (%s)%n", Math.max(1, executor.executors()), executor.cores(),
        TextTable.bytes(executor.usableBytes()), TextTable.bytes(executor.memoryBytes()), executor.source());
    runPlan.cache().ifPresent(cache -> out.printf(Locale.ROOT, "Calibration    %s of cached hidden states in all; a task holds %s%n",
        TextTable.bytes(cache.memory().cachedBytes()), TextTable.bytes(cache.memory().taskBytes())));
    runPlan.experts().ifPresent(experts -> out.printf(Locale.ROOT, "Expert tasks   groups of at most %s of experts + statistics"
        + " (--expert-task-mb); %d of %d blocks expert-parallel%n", TextTable.bytes(experts.budget()),
        experts.blocks().stream().filter(BlockPlan::sharded).count(), experts.blocks().size()));
    // A sharded block's calibration tasks are the expert plan's: attention, one expert group with its routed tokens, combine.
    TextTable table = new TextTable("block", "stored", "as float", "calibration task", "calibration executor",
        "statistics shuffle", "scoring tasks", "scoring task", "largest linear", "calibration");
    for (MemoryPlan.BlockPlan block : plan.blocks()) {
      Optional<BlockPlan> sharded = runPlan.sharded(block.block()) ? Optional.of(runPlan.experts().get().block(block.block())) : Optional.empty();
      table.row(block.block(), TextTable.bytes(block.storedBytes()), TextTable.bytes(block.floatBytes()),
          TextTable.bytes(sharded.map(BlockPlan::maxTaskBytes).orElse(block.calibrationTaskBytes())),
          TextTable.bytes(sharded.map(b -> executor.cores() * b.maxTaskBytes()).orElse(block.calibrationExecutorBytes())),
          TextTable.bytes(block.shuffleBytes() + sharded.map(BlockPlan::shuffleBytes).orElse(0L)), block.scoringTasks(),
          TextTable.bytes(block.scoringTaskBytes()), block.largestLinear(),
          sharded.map(b -> b.groups().size() + " expert groups").orElse("whole block"));
    }
    table.print(out);
    List<BlockPlan> shardedBlocks = runPlan.experts().map(e -> e.blocks().stream().filter(BlockPlan::sharded).toList()).orElse(List.of());
    if (!shardedBlocks.isEmpty()) {
      out.println("Expert-parallel blocks, bytes per task (attention per calibration partition, expert group, combine) and shuffled:");
      TextTable experts = new TextTable("block", "expert groups", "experts per group", "largest group", "attention task", "expert task",
          "combine task", "routed tokens out", "expert outputs back", "statistics");
      for (BlockPlan block : shardedBlocks) {
        int fewest = block.groups().stream().mapToInt(ExpertGroup::size).min().orElse(0);
        int most = block.groups().stream().mapToInt(ExpertGroup::size).max().orElse(0);
        experts.row(block.block(), block.groups().size(), fewest == most ? String.valueOf(most) : fewest + "-" + most,
            TextTable.bytes(block.groups().stream().mapToLong(ExpertGroup::bytes).max().orElse(0)), TextTable.bytes(block.attentionTaskBytes()),
            TextTable.bytes(block.expertTaskBytes()), TextTable.bytes(block.combineTaskBytes()), TextTable.bytes(block.dispatchBytes()),
            TextTable.bytes(block.returnBytes()), TextTable.bytes(block.statisticsBytes()));
      }
      experts.print(out);
    }
    Optional<String> refusal = runPlan.refusal();
    out.println(refusal.orElse("Fits           every block's calibration and scoring fit one executor (estimates; see README, The memory plan)"));
  }

  static ObjectNode planJson(RunPlan runPlan) {
    MemoryPlan plan = runPlan.blocks().orElseThrow();
    ObjectNode root = JSON.createObjectNode();
    MemoryPlan.Settings settings = plan.settings();
    root.put("method", settings.method().name().toLowerCase(Locale.ROOT));
    root.put("nsamples", settings.nsamples());
    root.put("seqlen", settings.seqlen());
    root.put("scoring_task_bytes", settings.scoringTaskBytes());
    root.put("executor_memory_bytes", runPlan.executor().memoryBytes());
    root.put("executor_usable_bytes", runPlan.executor().usableBytes());
    root.put("executor_cores", runPlan.executor().cores());
    root.put("executors", Math.max(1, runPlan.executor().executors()));
    runPlan.cache().ifPresent(cache -> {
      root.put("calibration_cached_bytes", cache.memory().cachedBytes());
      root.put("calibration_cache_task_bytes", cache.memory().taskBytes());
    });
    runPlan.experts().ifPresent(experts -> root.put("expert_task_budget_bytes", experts.budget()));
    ArrayNode blocks = root.putArray("blocks");
    for (MemoryPlan.BlockPlan block : plan.blocks()) {
      ObjectNode node = blocks.addObject();
      node.put("block", block.block());
      node.put("stored_bytes", block.storedBytes());
      node.put("float_bytes", block.floatBytes());
      node.put("activation_bytes", block.activationBytes());
      node.put("statistics_bytes", block.statisticsBytes());
      node.put("calibration_task_bytes", block.calibrationTaskBytes());
      node.put("calibration_executor_bytes", block.calibrationExecutorBytes());
      node.put("shuffle_bytes", block.shuffleBytes());
      node.put("scoring_tasks", block.scoringTasks());
      node.put("scoring_task_bytes", block.scoringTaskBytes());
      node.put("largest_linear", block.largestLinear());
      if (runPlan.sharded(block.block())) {
        // The block's calibration as it runs: expert-parallel, no task holding it whole (calibration_task_bytes is the whole block's).
        BlockPlan sharded = runPlan.experts().get().block(block.block());
        ObjectNode parallel = node.putObject("expert_parallel");
        parallel.put("attention_task_bytes", sharded.attentionTaskBytes());
        parallel.put("expert_task_bytes", sharded.expertTaskBytes());
        parallel.put("combine_task_bytes", sharded.combineTaskBytes());
        parallel.put("dispatch_bytes", sharded.dispatchBytes());
        parallel.put("return_bytes", sharded.returnBytes());
        parallel.put("statistics_bytes", sharded.statisticsBytes());
        ArrayNode groups = parallel.putArray("groups");
        for (ExpertGroup group : sharded.groups()) {
          groups.addObject().put("first", group.first()).put("end", group.end()).put("bytes", group.bytes());
        }
      }
    }
    Optional<String> refusal = runPlan.refusal();
    root.put("fits", refusal.isEmpty());
    refusal.ifPresent(reason -> root.put("reason", reason));
    return root;
  }

  static void printTable(ModelArchive archive, ModelLayout layout, PrintStream out) {
    List<Linear> linears = layout.linears();
    out.println("Model archive  " + archive.location());
    out.println("Architecture   " + layout.modelType() + architectureClass(archive));
    out.println("Blocks         " + layout.blocks().size());
    out.println(
        "Linears        "
            + linears.size()
            + " prunable"
            + (layout.blocks().isEmpty() ? "" : " (" + layout.blocks().get(0).linears().size() + " per block)"));
    out.println(
        String.format(
            Locale.ROOT,
            "Parameters     %s total, %s prunable (%.2f%%)",
            TextTable.count(layout.totalParameters()),
            TextTable.count(layout.prunableParameters()),
            100.0 * layout.prunableParameters() / Math.max(1, layout.totalParameters())));
    boolean experts = hasExperts(layout);
    MixtureOfExperts.of(archive.config()).ifPresent(moe -> out.println("Experts        " + expertSummary(moe, layout)));
    long mtp = layout.roles().values().stream().filter(role -> role == TensorRole.MTP).count();
    if (mtp > 0) {
      out.println("MTP layers     " + archive.config().json().path("num_nextn_predict_layers").asInt()
          + " (multi-token prediction after the blocks: not run, not pruned, copied; shrink drops them)");
    }
    Map<String, long[]> dtypes = dtypeCounts(archive);
    StringBuilder dtypeLine = new StringBuilder();
    dtypes.forEach(
        (dtype, counts) ->
            dtypeLine
                .append(dtypeLine.length() == 0 ? "" : "; ")
                .append(dtype)
                .append(' ')
                .append(TextTable.count(counts[0]))
                .append(" tensors, ")
                .append(TextTable.count(counts[1]))
                .append(" parameters"));
    out.println("Dtypes         " + dtypeLine);
    out.println("Shards         " + archive.shards().size() + (archive.isSharded() ? " (indexed)" : ""));
    for (Shard shard : archive.shards()) {
      out.println(
          "               " + shard.fileName() + "  " + TextTable.bytes(shard.length()) + ", " + shard.tensorCount() + " tensors");
    }
    out.println("Tokenizer      " + (archive.tokenizerFiles().isEmpty() ? "(none)" : String.join(", ", archive.tokenizerFiles())));
    out.println();
    // Dense models keep their table as it was; MoE models get an expert column.
    TextTable table = experts
        ? new TextTable("block", "expert", "linear", "out x in", "input group", "dtype", "parameters", "tensor")
        : new TextTable("block", "linear", "out x in", "input group", "dtype", "parameters", "tensor");
    for (Linear linear : linears) {
      ArchiveTensor tensor = archive.tensor(linear.storedTensorName());
      List<Object> cells = new java.util.ArrayList<>(List.of(
          linear.block(),
          linear.name(),
          linear.outFeatures() + " x " + linear.inFeatures() + (linear.storedTransposed() ? " (stored in x out)" : ""),
          linear.inputGroup(),
          tensor.storageLabel(),
          TextTable.count(linear.parameters()),
          linear.tensorName()));
      if (experts) {
        cells.add(1, linear.expert().map(Expert::label).orElse("-"));
      }
      table.row(cells.toArray());
    }
    table.print(out);
    out.println();
    Map<TensorRole, long[]> others = new TreeMap<>();
    for (Map.Entry<String, TensorRole> entry : layout.roles().entrySet()) {
      if (entry.getValue() != TensorRole.LINEAR) {
        long[] counts = others.computeIfAbsent(entry.getValue(), role -> new long[2]);
        counts[0]++;
        counts[1] += archive.tensor(entry.getKey()).numel();
      }
    }
    StringBuilder notPruned = new StringBuilder();
    others.forEach(
        (role, counts) ->
            notPruned
                .append(notPruned.length() == 0 ? "" : ", ")
                .append(role.name().toLowerCase(Locale.ROOT))
                .append(' ')
                .append(counts[0])
                .append(" (")
                .append(TextTable.count(counts[1]))
                .append(" parameters)"));
    out.println("Not pruned     " + (notPruned.length() == 0 ? "(none)" : notPruned));
  }

  private static boolean hasExperts(ModelLayout layout) {
    return layout.linears().stream().anyMatch(linear -> linear.expert().isPresent());
  }

  /** "8 routed per MoE block, top-2 renormalised; MoE blocks [0, 1, 2] (3 of 3); routers 3; ...". */
  private static String expertSummary(MixtureOfExperts moe, ModelLayout layout) {
    List<Integer> moeBlocks = moeBlocks(moe, layout);
    String routing;
    switch (moe.scoring()) {
      case SIGMOID_GROUP_LIMITED:
        routing = String.format(Locale.ROOT, "; sigmoid scores, top-%d of %d groups (n_group), routed_scaling_factor %s",
            moe.topKGroups(), moe.groups(), moe.scalingFactor());
        break;
      case TOP_K_SOFTMAX:
        routing = "; softmax over the top-k logits; fused expert tensors (each expert's gate, up and down pruned in place)";
        break;
      default:
        routing = "";
    }
    String shared = !moe.hasSharedExpert() ? ""
        : moe.hasSharedExpertGate() ? "; one shared expert per MoE block (sigmoid-gated)"
        : "; shared experts per MoE block (width " + moe.sharedIntermediate() + ", always on)";
    return String.format(
        Locale.ROOT,
        "%d routed per MoE block, top-%d%s%s; MoE blocks %s (%d of %d); routers %d%s",
        moe.experts(),
        moe.topK(),
        moe.normalizeTopK() ? " renormalised" : "",
        routing,
        moeBlocks,
        moeBlocks.size(),
        layout.blocks().size(),
        layout.roles().values().stream().filter(role -> role == TensorRole.ROUTER).count(),
        shared);
  }

  private static List<Integer> moeBlocks(MixtureOfExperts moe, ModelLayout layout) {
    List<Integer> blocks = new java.util.ArrayList<>();
    for (Block block : layout.blocks()) {
      if (moe.isSparse(block.index())) {
        blocks.add(block.index());
      }
    }
    return blocks;
  }

  private static String architectureClass(ModelArchive archive) {
    var architectures = archive.config().json().get("architectures");
    if (architectures != null && architectures.isArray() && architectures.size() > 0) {
      return " (" + architectures.get(0).asText() + ")";
    }
    return "";
  }

  /** Logical tensors and parameters by storage: a dtype, or a quantized format with its scales. */
  private static Map<String, long[]> dtypeCounts(ModelArchive archive) {
    Map<String, long[]> counts = new TreeMap<>();
    for (ArchiveTensor tensor : archive.tensors()) {
      long[] count = counts.computeIfAbsent(tensor.storageLabel(), storage -> new long[2]);
      count[0]++;
      count[1] += tensor.numel();
    }
    return counts;
  }

  static ObjectNode toJson(ModelArchive archive, ModelLayout layout) {
    ObjectNode root = JSON.createObjectNode();
    root.put("location", archive.location());
    root.put("model_type", layout.modelType());
    root.put("blocks", layout.blocks().size());
    ObjectNode parameters = root.putObject("parameters");
    parameters.put("total", layout.totalParameters());
    parameters.put("prunable", layout.prunableParameters());
    ObjectNode dtypes = root.putObject("dtypes");
    dtypeCounts(archive).forEach((storage, counts) -> {
      ObjectNode entry = dtypes.putObject(storage);
      entry.put("tensors", counts[0]);
      entry.put("parameters", counts[1]);
    });
    ArrayNode shards = root.putArray("shards");
    for (Shard shard : archive.shards()) {
      shards.addObject().put("file", shard.fileName()).put("bytes", shard.length()).put("tensors", shard.tensorCount());
    }
    ArrayNode tokenizer = root.putArray("tokenizer_files");
    archive.tokenizerFiles().forEach(tokenizer::add);
    MixtureOfExperts.of(archive.config()).ifPresent(moe -> {
      ObjectNode experts = root.putObject("experts");
      experts.put("routed_per_block", moe.experts());
      experts.put("top_k", moe.topK());
      experts.put("normalize_top_k", moe.normalizeTopK());
      experts.put("shared_expert", moe.hasSharedExpert());
      experts.put("scoring", moe.scoring().name().toLowerCase(Locale.ROOT));
      experts.put("groups", moe.groups());
      experts.put("top_k_groups", moe.topKGroups());
      experts.put("routed_scaling_factor", moe.scalingFactor());
      experts.put("fused", moe.fused());
      ArrayNode blocks = experts.putArray("moe_blocks");
      moeBlocks(moe, layout).forEach(blocks::add);
    });
    root.put("mtp_layers", layout.roles().values().stream().anyMatch(role -> role == TensorRole.MTP)
        ? archive.config().json().path("num_nextn_predict_layers").asInt() : 0);
    ArrayNode linears = root.putArray("linears");
    for (Linear linear : layout.linears()) {
      ArchiveTensor tensor = archive.tensor(linear.storedTensorName());
      ObjectNode entry = linears.addObject();
      entry.put("block", linear.block());
      entry.put("linear", linear.name());
      entry.put("tensor", linear.tensorName());
      entry.put("out_features", linear.outFeatures());
      entry.put("in_features", linear.inFeatures());
      entry.put("stored_transposed", linear.storedTransposed());
      entry.put("input_group", linear.inputGroup());
      entry.put("dtype", tensor.dtype().name());
      entry.put("storage", tensor.storageLabel());
      entry.put("shard", tensor.shard());
      linear.biasName().ifPresent(bias -> entry.put("bias", bias));
      linear.expert().ifPresent(expert -> {
        if (expert.shared()) {
          entry.put("expert", "shared");
        } else {
          entry.put("expert", expert.index());
        }
      });
    }
    ArrayNode other = root.putArray("not_pruned");
    for (Map.Entry<String, TensorRole> entry : layout.roles().entrySet()) {
      if (entry.getValue() != TensorRole.LINEAR) {
        ArchiveTensor tensor = archive.tensor(entry.getKey());
        ObjectNode node = other.addObject();
        node.put("tensor", entry.getKey());
        node.put("role", entry.getValue().name().toLowerCase(Locale.ROOT));
        node.put("dtype", tensor.dtype().name());
        ArrayNode shape = node.putArray("shape");
        for (long dim : tensor.shape()) {
          shape.add(dim);
        }
      }
    }
    return root;
  }
}
