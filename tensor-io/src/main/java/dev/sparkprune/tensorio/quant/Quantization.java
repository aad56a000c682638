package dev.sparkprune.tensorio.quant;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A checkpoint's {@code quantization_config}, validated when the archive opens, before any
 * work: which release format its quantized tensors use and which modules stay unquantized.
 * Accepted: none; {@code fp8} with {@code fmt} e4m3, {@code weight_block_size} [128, 128],
 * dynamic activations and float or {@code ue8m0} scales (DeepSeek-V3/V3.1/R1, Kimi-K2,
 * GLM-4.5-FP8, Qwen3-FP8); {@code mxfp4} (gpt-oss). Anything else is refused with one line.
 */
public final class Quantization implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final ObjectMapper JSON = new ObjectMapper();

  public static final String CONFIG_KEY = "quantization_config";
  /** The key transformers reads for modules kept unquantized. */
  public static final String MODULES_TO_NOT_CONVERT = "modules_to_not_convert";
  /** vLLM's name for the same list; read as well, and written where the source has it. */
  public static final String IGNORED_LAYERS = "ignored_layers";
  /** The only FP8 block size implemented: every FP8 block-scaled release uses it. */
  public static final int FP8_BLOCK = 128;
  /** Values per E8M0 scale in MXFP4. */
  public static final int MX_BLOCK = 32;

  /** The release formats sparkprune reads and writes. */
  public enum Method {
    NONE,
    FP8,
    MXFP4
  }

  /** How FP8 block scales are chosen when re-quantizing. */
  public enum ScaleFormat {
    /** weight_scale_inv = amax / 448 in float32 (DeepSeek-V3/R1's release rule). */
    FLOAT,
    /** weight_scale_inv = 2^ceil(log2(amax / 448)) ({@code scale_fmt: ue8m0}, DeepSeek-V3.1). */
    UE8M0
  }

  private final Method method;
  private final ScaleFormat scaleFormat;
  private final List<String> notConverted;
  private transient List<Pattern> patterns;

  private Quantization(Method method, ScaleFormat scaleFormat, List<String> notConverted) {
    this.method = method;
    this.scaleFormat = scaleFormat;
    this.notConverted = List.copyOf(notConverted);
  }

  public static Quantization none() {
    return new Quantization(Method.NONE, ScaleFormat.FLOAT, List.of());
  }

  /**
   * Reads and checks the {@code quantization_config} of a config.json root read from {@code where};
   * an absent or null entry means unquantized.
   */
  public static Quantization parse(JsonNode config, String where) {
    JsonNode node = config.get(CONFIG_KEY);
    if (node == null || node.isNull()) {
      return none();
    }
    ValidationException.check(node.isObject(), "Invalid %s in %s: expected a JSON object, found %s", CONFIG_KEY, where, node);
    JsonNode methodNode = node.get("quant_method");
    ValidationException.check(
        methodNode != null && methodNode.isTextual(), "Invalid %s in %s: no quant_method", CONFIG_KEY, where);
    List<String> notConverted = notConverted(node, where);
    switch (methodNode.textValue()) {
      case "fp8":
        return new Quantization(Method.FP8, fp8ScaleFormat(node, where), notConverted);
      case "mxfp4":
        return new Quantization(Method.MXFP4, ScaleFormat.FLOAT, notConverted);
      default:
        throw new ValidationException(String.format(
            "Unsupported %s.quant_method '%s' in %s: sparkprune reads fp8 (F8_E4M3 weights with 128x128 block scales, as "
                + "DeepSeek-V3, Kimi-K2, GLM-4.5-FP8 and Qwen3-FP8 ship) and mxfp4 (gpt-oss); dequantize the model to BF16 first",
            CONFIG_KEY, methodNode.textValue(), where));
    }
  }

  private static ScaleFormat fp8ScaleFormat(JsonNode node, String where) {
    JsonNode fmt = node.get("fmt");
    ValidationException.check(
        fmt == null || fmt.isNull() || "e4m3".equals(fmt.asText()),
        "Unsupported %s.fmt %s in %s: fp8 archives are read as F8_E4M3 (fmt e4m3) only",
        CONFIG_KEY, fmt, where);
    JsonNode block = node.get("weight_block_size");
    ValidationException.check(
        block != null && !block.isNull(),
        "Unsupported %s in %s: fp8 without weight_block_size (per-tensor scales); sparkprune reads 128x128 block scales only",
        CONFIG_KEY, where);
    ValidationException.check(
        block.isArray() && block.size() == 2 && block.get(0).isInt() && block.get(1).isInt()
            && block.get(0).intValue() == FP8_BLOCK && block.get(1).intValue() == FP8_BLOCK,
        "Unsupported %s.weight_block_size %s in %s: sparkprune reads [%d, %d] blocks only (every FP8 block-scaled release uses them)",
        CONFIG_KEY, block, where, FP8_BLOCK, FP8_BLOCK);
    JsonNode activations = node.get("activation_scheme");
    ValidationException.check(
        activations == null || activations.isNull() || "dynamic".equals(activations.asText()),
        "Unsupported %s.activation_scheme %s in %s: only dynamic activation scaling is supported (static scales would not follow the pruned weights)",
        CONFIG_KEY, activations, where);
    JsonNode scaleFormat = node.get("scale_fmt");
    if (scaleFormat == null || scaleFormat.isNull()) {
      return ScaleFormat.FLOAT;
    }
    ValidationException.check(
        "ue8m0".equals(scaleFormat.asText()),
        "Unsupported %s.scale_fmt %s in %s: sparkprune writes float scales (no scale_fmt) or ue8m0 power-of-two scales",
        CONFIG_KEY, scaleFormat, where);
    return ScaleFormat.UE8M0;
  }

  private static List<String> notConverted(JsonNode node, String where) {
    Set<String> modules = new LinkedHashSet<>();
    for (String key : List.of(MODULES_TO_NOT_CONVERT, IGNORED_LAYERS)) {
      JsonNode list = node.get(key);
      if (list == null || list.isNull()) {
        continue;
      }
      ValidationException.check(list.isArray(), "Invalid %s.%s in %s: expected a list of module names, found %s", CONFIG_KEY, key, where, list);
      for (JsonNode entry : list) {
        ValidationException.check(
            entry.isTextual() && !entry.textValue().isEmpty(),
            "Invalid %s.%s in %s: entry %s is not a module name", CONFIG_KEY, key, where, entry);
        compile(entry.textValue(), key, where);
        modules.add(entry.textValue());
      }
    }
    return new ArrayList<>(modules);
  }

  private static Pattern compile(String module, String key, String where) {
    try {
      return Pattern.compile(module);
    } catch (PatternSyntaxException e) {
      throw new ValidationException(String.format(
          "Invalid %s.%s entry '%s' in %s: not a valid pattern (%s)", CONFIG_KEY, key, module, where, e.getDescription()));
    }
  }

  public Method method() {
    return method;
  }

  public boolean isQuantized() {
    return method != Method.NONE;
  }

  public ScaleFormat scaleFormat() {
    return scaleFormat;
  }

  /** {@code modules_to_not_convert} and {@code ignored_layers} together, in file order. */
  public List<String> notConverted() {
    return notConverted;
  }

  /**
   * Whether the config keeps {@code module} unquantized, matching as transformers does: an entry
   * matches a module name that starts with it as a regular expression, or that ends with it.
   */
  public boolean isNotConverted(String module) {
    if (patterns == null) {
      List<Pattern> compiled = new ArrayList<>();
      notConverted.forEach(entry -> compiled.add(Pattern.compile(entry)));
      patterns = compiled;
    }
    for (int i = 0; i < notConverted.size(); i++) {
      if (patterns.get(i).matcher(module).lookingAt() || module.endsWith(notConverted.get(i))) {
        return true;
      }
    }
    return false;
  }

  /** The module a parameter belongs to: its name without the last component. */
  public static String moduleOf(String parameter) {
    int dot = parameter.lastIndexOf('.');
    return dot < 0 ? parameter : parameter.substring(0, dot);
  }

  /**
   * {@code configText} with {@code modules} appended to {@code modules_to_not_convert} (and to
   * {@code ignored_layers} where the source has that list), for tensors written in BF16 instead
   * of the release format. Exact module names are listed: they match in every transformers
   * version's rule (substring, prefix or regular expression).
   */
  public static String withNotConverted(String configText, Collection<String> modules) {
    try {
      JsonNode root = JSON.readTree(configText);
      ValidationException.check(
          root != null && root.isObject() && root.get(CONFIG_KEY) != null && root.get(CONFIG_KEY).isObject(),
          "Cannot list modules as not converted: the config has no %s", CONFIG_KEY);
      ObjectNode quantization = (ObjectNode) root.get(CONFIG_KEY);
      append(quantization, MODULES_TO_NOT_CONVERT, modules);
      if (quantization.hasNonNull(IGNORED_LAYERS)) {
        append(quantization, IGNORED_LAYERS, modules);
      }
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void append(ObjectNode quantization, String key, Collection<String> modules) {
    Set<String> merged = new LinkedHashSet<>();
    JsonNode existing = quantization.get(key);
    if (existing != null && existing.isArray()) {
      existing.forEach(entry -> merged.add(entry.asText()));
    }
    merged.addAll(modules);
    ArrayNode list = quantization.putArray(key);
    merged.forEach(list::add);
  }

  @Override
  public String toString() {
    return switch (method) {
      case NONE -> "none";
      case FP8 -> "fp8 (F8_E4M3, 128x128 blocks, " + (scaleFormat == ScaleFormat.UE8M0 ? "ue8m0" : "float") + " scales)";
      case MXFP4 -> "mxfp4 (E2M1, E8M0 scale per 32 values)";
    };
  }

}
