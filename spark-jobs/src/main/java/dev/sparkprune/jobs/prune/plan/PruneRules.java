package dev.sparkprune.jobs.prune.plan;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Per-layer rules from a job config file (JSON, or YAML for names ending in .yaml/.yml):
 *
 * <pre>
 * rules:
 *   - match: "model\\.layers\\.0\\..*"        # a regex matched against the whole tensor name
 *     skip: true                              # never prune these
 *   - match: ".*\\.mlp\\..*"
 *     method: sparsegpt                       # and/or sparsity: 0.6 | pattern: "2:4"
 * </pre>
 *
 * Every rule must match at least one prunable linear; two rules that match the same linear
 * must not set the same field to different values. A skip wins over settings from broader rules
 * ("skip block 0" beside "all o_proj at 2:4"). Fields a rule leaves out keep the command line's
 * settings.
 */
public final class PruneRules {
  private static final Set<String> RULE_KEYS = Set.of("match", "skip", "method", "sparsity", "pattern");

  private final List<Rule> rules;

  private static final class Rule {
    final int index;
    final Pattern match;
    final boolean skip;
    final PruningMethod method;
    final SparsityTarget target;

    Rule(int index, Pattern match, boolean skip, PruningMethod method, SparsityTarget target) {
      this.index = index;
      this.match = match;
      this.skip = skip;
      this.method = method;
      this.target = target;
    }

    String describe() {
      return "rule " + (index + 1) + " ('" + match.pattern() + "')";
    }
  }

  private PruneRules(List<Rule> rules) {
    this.rules = rules;
  }

  public static PruneRules load(FileIO io, String location) throws IOException {
    ValidationException.check(io.exists(location), "Cannot read --config %s: file not found", location);
    byte[] bytes = InputFiles.readAll(io.newInputFile(location), 16 << 20);
    String lower = location.toLowerCase(Locale.ROOT);
    ObjectMapper mapper = lower.endsWith(".yaml") || lower.endsWith(".yml") ? new ObjectMapper(new YAMLFactory()) : new ObjectMapper();
    JsonNode root;
    try {
      root = mapper.readTree(bytes);
    } catch (IOException e) {
      throw new ValidationException("Invalid --config " + location + ": " + e.getMessage().lines().findFirst().orElse(""));
    }
    return parse(location, root);
  }

  static PruneRules parse(String location, JsonNode root) {
    ValidationException.check(root != null && root.isObject(), "Invalid --config %s: expected an object with 'rules'", location);
    Set<String> unknown = new TreeSet<>();
    root.fieldNames().forEachRemaining(name -> {
      if (!name.equals("rules")) {
        unknown.add(name);
      }
    });
    ValidationException.check(unknown.isEmpty(), "Invalid --config %s: unknown keys %s (expected 'rules')", location, unknown);
    JsonNode array = root.path("rules");
    ValidationException.check(array.isArray(), "Invalid --config %s: 'rules' must be a list", location);
    List<Rule> rules = new ArrayList<>();
    for (int i = 0; i < array.size(); i++) {
      rules.add(rule(location, i, array.get(i)));
    }
    return new PruneRules(rules);
  }

  private static Rule rule(String location, int index, JsonNode node) {
    String where = "Invalid --config " + location + ": rule " + (index + 1);
    ValidationException.check(node.isObject(), "%s is not an object", where);
    Set<String> unknown = new TreeSet<>();
    node.fieldNames().forEachRemaining(name -> {
      if (!RULE_KEYS.contains(name)) {
        unknown.add(name);
      }
    });
    ValidationException.check(unknown.isEmpty(), "%s has unknown keys %s (allowed: %s)", where, unknown, new TreeSet<>(RULE_KEYS));
    ValidationException.check(node.path("match").isTextual(), "%s needs a 'match' regex", where);
    Pattern match;
    try {
      match = Pattern.compile(node.get("match").asText());
    } catch (PatternSyntaxException e) {
      throw new ValidationException(where + ": invalid regex '" + node.get("match").asText() + "' (" + e.getDescription() + ")");
    }
    boolean skip = node.path("skip").asBoolean(false);
    PruningMethod method = node.has("method") ? PruningMethod.parse(node.get("method").asText()) : null;
    ValidationException.check(!(node.has("sparsity") && node.has("pattern")), "%s sets both sparsity and pattern", where);
    SparsityTarget target = null;
    if (node.has("sparsity")) {
      ValidationException.check(node.get("sparsity").isNumber(), "%s: sparsity must be a number", where);
      target = SparsityTarget.unstructured(node.get("sparsity").asDouble());
    } else if (node.has("pattern")) {
      ValidationException.check(node.get("pattern").asText().contains(":"), "%s: pattern must look like 2:4", where);
      target = SparsityTarget.parse(node.get("pattern").asText());
    }
    ValidationException.check(skip || method != null || target != null, "%s sets nothing (skip, method, sparsity or pattern)", where);
    ValidationException.check(!skip || (method == null && target == null), "%s both skips and sets settings", where);
    return new Rule(index, match, skip, method, target);
  }

  /** The plan with rules applied: skipped linears removed, overrides set. */
  public List<PlannedLinear> apply(List<PlannedLinear> plan) {
    Map<Rule, Integer> matches = new HashMap<>();
    List<PlannedLinear> out = new ArrayList<>();
    for (PlannedLinear planned : plan) {
      Rule skipBy = null;
      Rule methodBy = null;
      Rule targetBy = null;
      for (Rule rule : rules) {
        if (!rule.match.matcher(planned.tensorName()).matches()) {
          continue;
        }
        matches.merge(rule, 1, Integer::sum);
        if (rule.skip) {
          skipBy = rule;
        }
        if (rule.method != null) {
          ValidationException.check(
              methodBy == null || methodBy.method == rule.method,
              "Conflicting --config rules for %s: %s sets method %s, %s sets %s",
              planned.tensorName(), methodBy == null ? "" : methodBy.describe(), methodBy == null ? "" : methodBy.method.displayName(),
              rule.describe(), rule.method.displayName());
          methodBy = rule;
        }
        if (rule.target != null) {
          ValidationException.check(
              targetBy == null || targetBy.target.equals(rule.target),
              "Conflicting --config rules for %s: %s sets %s, %s sets %s",
              planned.tensorName(), targetBy == null ? "" : targetBy.describe(), targetBy == null ? "" : targetBy.target,
              rule.describe(), rule.target);
          targetBy = rule;
        }
      }
      if (skipBy == null) {
        out.add(planned.with(
            methodBy == null ? planned.method : methodBy.method, targetBy == null ? planned.target : targetBy.target));
      }
    }
    for (Rule rule : rules) {
      ValidationException.check(matches.containsKey(rule), "Invalid --config: %s matches no prunable linear", rule.describe());
    }
    return out;
  }
}
