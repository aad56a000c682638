package dev.sparkprune.tensorio.arch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Refuses, from config.json and the tensor names alone, what a forward pass would compute
 * wrongly or could not allocate: activations and rope settings it does not implement, and a
 * block count that disagrees with the archive. Every architecture goes through these checks in
 * {@link Architectures#layout} before its blueprint is built, so a huge {@code
 * num_hidden_layers} fails here instead of allocating per-block lists.
 */
final class ForwardChecks {
  /** The rope_scaling types the forward passes' rotary embedding implements. */
  static final Set<String> ROPE_SCALING_TYPES = Set.of("default", "linear", "llama3", "longrope", "yarn");
  /** Block indices longer than this many digits are not block indices (and would overflow). */
  private static final int MAX_INDEX_DIGITS = 9;

  private ForwardChecks() {}

  static void checkSettings(Architecture architecture, String modelType, ModelConfig decoder) {
    for (Map.Entry<String, Set<String>> entry : architecture.activations().entrySet()) {
      JsonNode value = decoder.json().get(entry.getKey());
      if (value != null && !value.isNull()) {
        ValidationException.check(
            value.isTextual() && entry.getValue().contains(value.textValue()),
            "Cannot run model_type %s: %s %s in %s is not implemented; its forward pass computes %s",
            modelType,
            entry.getKey(),
            value,
            decoder.location(),
            new TreeSet<>(entry.getValue()));
      }
    }
    // optionalInt refuses zero, negative and non-integral values, naming the key.
    for (String key : new String[] {"max_position_embeddings", "n_positions", "original_max_position_embeddings"}) {
      decoder.optionalInt(key);
    }
    checkNormEpsilon(decoder);
    if (architecture.rotary()) {
      checkRope(modelType, decoder);
    }
  }

  /** Epsilon keys of the norms: a negative one makes the square root of a small variance NaN, blamed later on an activation. */
  private static final String[] NORM_EPSILON_KEYS = {"rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"};

  private static void checkNormEpsilon(ModelConfig decoder) {
    for (String key : NORM_EPSILON_KEYS) {
      JsonNode value = decoder.json().get(key);
      if (value != null && !value.isNull()) {
        ValidationException.check(value.isNumber() && Double.isFinite(value.doubleValue()) && value.doubleValue() >= 0,
            "Invalid model config %s: %s must be a non-negative number, found %s", decoder.location(), key, value);
      }
    }
  }

  private static void checkRope(String modelType, ModelConfig decoder) {
    for (String key : new String[] {"rope_theta", "rotary_emb_base"}) {
      double theta = decoder.doubleValue(key, 10000.0);
      ValidationException.check(
          theta > 0 && Double.isFinite(theta), "Invalid model config %s: %s must be a positive number, found %s", decoder.location(), key, decoder.json().get(key));
    }
    double partial = decoder.doubleValue("partial_rotary_factor", 1.0);
    ValidationException.check(
        partial > 0 && partial <= 1,
        "Invalid model config %s: partial_rotary_factor must be in (0, 1], found %s",
        decoder.location(),
        decoder.json().get("partial_rotary_factor"));
    JsonNode scaling = decoder.json().get("rope_scaling");
    if (scaling == null || scaling.isNull()) {
      return;
    }
    ValidationException.check(
        scaling.isObject(), "Invalid model config %s: rope_scaling must be an object or null, found %s", decoder.location(), scaling);
    String type = ropeScalingType(decoder);
    ValidationException.check(
        ROPE_SCALING_TYPES.contains(type),
        "Cannot run model_type %s: rope_scaling type '%s' in %s is not implemented; sparkprune implements %s",
        modelType,
        type,
        decoder.location(),
        new TreeSet<>(ROPE_SCALING_TYPES));
    if (type.equals("longrope")) {
      checkLongrope(decoder, scaling);
    }
    if (type.equals("yarn")) {
      checkYarn(decoder, scaling);
    }
    JsonNode factor = scaling.get("factor");
    ValidationException.check(
        factor == null || factor.isNull() || (factor.isNumber() && factor.doubleValue() > 0),
        "Invalid model config %s: rope_scaling.factor must be a positive number, found %s",
        decoder.location(),
        factor);
    // As transformers' rope validation: these types raise on a missing key instead of inventing defaults.
    for (String key : new TreeSet<>(REQUIRED_ROPE_KEYS.getOrDefault(type, Set.of()))) {
      JsonNode value = scaling.get(key);
      ValidationException.check(
          value != null && value.isNumber() && value.doubleValue() > 0,
          "Invalid model config %s: rope_scaling of type '%s' needs %s, a positive number, found %s; its keys are %s",
          decoder.location(), type, key, value, new TreeSet<>(REQUIRED_ROPE_KEYS.get(type)));
    }
  }

  /**
   * The keys each rope_scaling type requires (transformers' {@code _validate_*_rope_parameters}
   * raise a KeyError without them). llama3's original_max_position_embeddings may be left out:
   * transformers then takes the config's own, else max_position_embeddings, and so does Rope.
   */
  private static final Map<String, Set<String>> REQUIRED_ROPE_KEYS = Map.of(
      "linear", Set.of("factor"),
      "llama3", Set.of("factor", "low_freq_factor", "high_freq_factor"));

  /** rope_scaling's {@code rope_type} (or the older {@code type}); empty without rope_scaling. */
  static String ropeScalingType(ModelConfig decoder) {
    JsonNode scaling = decoder.json().path("rope_scaling");
    return scaling.path("rope_type").asText(scaling.path("type").asText(""));
  }

  /**
   * yarn's settings (transformers' _compute_yarn_parameters): optional positive numbers, an
   * original context that a factor-less config divides max_position_embeddings by, and a
   * boolean truncate.
   */
  private static void checkYarn(ModelConfig decoder, JsonNode scaling) {
    for (String key : new String[] {"beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor"}) {
      JsonNode value = scaling.get(key);
      ValidationException.check(
          value == null || value.isNull() || (value.isNumber() && value.doubleValue() >= 0 && Double.isFinite(value.doubleValue())),
          "Invalid model config %s: rope_scaling.%s must be a non-negative number, found %s",
          decoder.location(),
          key,
          value);
    }
    JsonNode original = scaling.get("original_max_position_embeddings");
    ValidationException.check(
        original == null || original.isNull() || (original.isIntegralNumber() && original.canConvertToInt() && original.intValue() > 0),
        "Invalid model config %s: rope_scaling.original_max_position_embeddings must be a positive integer, found %s",
        decoder.location(),
        original);
    JsonNode truncate = scaling.get("truncate");
    ValidationException.check(
        truncate == null || truncate.isNull() || truncate.isBoolean(),
        "Invalid model config %s: rope_scaling.truncate must be true or false, found %s",
        decoder.location(),
        truncate);
  }

  /** longrope's factor lists must hold one positive number per rotated pair: head_dim * partial_rotary_factor / 2. */
  private static void checkLongrope(ModelConfig decoder, JsonNode scaling) {
    int hidden = decoder.requireInt("hidden_size");
    int headDim = decoder.optionalInt("head_dim").orElse(hidden / decoder.requireInt("num_attention_heads"));
    int pairs = (int) (headDim * decoder.doubleValue("partial_rotary_factor", 1.0)) / 2;
    for (String key : new String[] {"short_factor", "long_factor"}) {
      JsonNode factors = scaling.get(key);
      ValidationException.check(
          factors != null && factors.isArray() && factors.size() == pairs,
          "Invalid model config %s: rope_scaling.%s must be a list of %d numbers (rotary dimensions / 2), found %s",
          decoder.location(),
          key,
          pairs,
          factors);
      for (JsonNode value : factors) {
        ValidationException.check(
            value.isNumber() && value.doubleValue() > 0,
            "Invalid model config %s: rope_scaling.%s holds %s; every factor must be a positive number",
            decoder.location(),
            key,
            value);
      }
    }
  }

  /**
   * The declared block count, plus the architecture's multi-token-prediction layers, must equal
   * the archive's: blocks named {@code blocksPrefix + b + "."} for b in [0, n). Counted from
   * names before anything per-block is built.
   */
  static void checkBlockCount(Architecture architecture, ModelConfig decoder, Iterable<String> tensorNames, String blocksPrefix, String archiveLocation) {
    String[] keys = architecture.blockCountKeys().toArray(new String[0]);
    int declared = decoder.requireInt(keys);
    int mtp = architecture.mtpBlocks(decoder);
    int found = 0;
    for (String name : tensorNames) {
      if (name.startsWith(blocksPrefix)) {
        int end = name.indexOf('.', blocksPrefix.length());
        String digits = end < 0 ? "" : name.substring(blocksPrefix.length(), end);
        if (!digits.isEmpty() && digits.length() <= MAX_INDEX_DIGITS && digits.chars().allMatch(Character::isDigit)) {
          found = Math.max(found, Integer.parseInt(digits) + 1);
        }
      }
    }
    String key = keys[0];
    for (String candidate : keys) {
      if (decoder.optionalInt(candidate).isPresent()) {
        key = candidate;
        break;
      }
    }
    // No block at all is not a count to fix in config.json: the archive is not this architecture's (or is empty).
    ValidationException.check(
        found > 0,
        "Invalid model archive %s: it holds no decoder blocks (no tensors named %sN.*) although %s in %s is %d; is it a %s model?",
        archiveLocation,
        blocksPrefix,
        key,
        decoder.location(),
        declared,
        decoder.modelType());
    if (mtp > 0 && found == declared) {
      throw new ValidationException(String.format(
          "Invalid model archive %s: config %s declares num_nextn_predict_layers %d but the archive has no multi-token-prediction"
              + " layer (%s%d.*); set num_nextn_predict_layers to 0",
          archiveLocation, decoder.location(), mtp, blocksPrefix, declared));
    }
    ValidationException.check(
        (long) declared + mtp == found,
        "Invalid model config %s: %s is %d%s but archive %s holds %s; set %s to %d",
        decoder.location(),
        key,
        declared,
        mtp > 0 ? " (plus num_nextn_predict_layers " + mtp + ")" : "",
        archiveLocation,
        found + " blocks (" + blocksPrefix + "0 to " + blocksPrefix + (found - 1) + ")",
        key,
        Math.max(0, found - mtp));
  }
}
