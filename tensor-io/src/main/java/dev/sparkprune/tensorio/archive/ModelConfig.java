package dev.sparkprune.tensorio.archive;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Optional;

/** A model's {@code config.json}, with typed access to the fields the architectures read. */
public final class ModelConfig implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String location;
  private final String text;
  private transient JsonNode root;

  private ModelConfig(String location, String text, JsonNode root) {
    this.location = location;
    this.text = text;
    this.root = root;
  }

  public static ModelConfig parse(String location, String text) {
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw new ValidationException("Invalid model config " + location + ": not valid JSON (" + e.getOriginalMessage() + ")");
    }
    ValidationException.check(root != null && root.isObject(), "Invalid model config %s: expected a JSON object", location);
    return new ModelConfig(location, text, root);
  }

  public String location() {
    return location;
  }

  /** The original text, for copying the config into output archives unchanged. */
  public String text() {
    return text;
  }

  public JsonNode json() {
    if (root == null) {
      root = parse(location, text).root;
    }
    return root;
  }

  public String modelType() {
    JsonNode type = json().get("model_type");
    ValidationException.check(
        type != null && type.isTextual(), "Invalid model config %s: no model_type field", location);
    return type.textValue();
  }

  /** The first of {@code keys} that is present, as a positive int; fails naming all of them. */
  public int requireInt(String... keys) {
    return optionalInt(keys)
        .orElseThrow(() -> new ValidationException(
            "Invalid model config " + location + ": missing " + String.join(" or ", keys)));
  }

  public Optional<Integer> optionalInt(String... keys) {
    for (String key : keys) {
      JsonNode node = json().get(key);
      if (node != null && !node.isNull()) {
        ValidationException.check(
            node.isIntegralNumber() && node.canConvertToInt() && node.intValue() > 0,
            "Invalid model config %s: %s must be a positive integer, found %s",
            location,
            key,
            node);
        return Optional.of(node.intValue());
      }
    }
    return Optional.empty();
  }

  /**
   * A count that may be zero (first_k_dense_replace, num_nextn_predict_layers): {@code
   * defaultValue} when absent or null, else a non-negative integer.
   */
  public int nonNegativeInt(String key, int defaultValue) {
    JsonNode node = json().get(key);
    if (node == null || node.isNull()) {
      return defaultValue;
    }
    ValidationException.check(
        node.isIntegralNumber() && node.canConvertToInt() && node.intValue() >= 0,
        "Invalid model config %s: %s must be a non-negative integer, found %s",
        location,
        key,
        node);
    return node.intValue();
  }

  public double doubleValue(String key, double defaultValue) {
    JsonNode node = json().get(key);
    if (node == null || node.isNull()) {
      return defaultValue;
    }
    ValidationException.check(node.isNumber(), "Invalid model config %s: %s must be a number, found %s", location, key, node);
    return node.doubleValue();
  }

  public boolean booleanValue(String key, boolean defaultValue) {
    JsonNode node = json().get(key);
    if (node == null || node.isNull()) {
      return defaultValue;
    }
    ValidationException.check(node.isBoolean(), "Invalid model config %s: %s must be true or false, found %s", location, key, node);
    return node.booleanValue();
  }

  public Optional<String> stringValue(String key) {
    JsonNode node = json().get(key);
    return node != null && node.isTextual() ? Optional.of(node.textValue()) : Optional.empty();
  }

  /**
   * A nested object as a config of its own ({@code text_config} of multimodal checkpoints), or
   * empty when the key is absent or null.
   */
  public Optional<ModelConfig> section(String key) {
    JsonNode node = json().get(key);
    if (node == null || node.isNull()) {
      return Optional.empty();
    }
    ValidationException.check(node.isObject(), "Invalid model config %s: %s must be a JSON object, found %s", location, key, node);
    return Optional.of(new ModelConfig(location + " (" + key + ")", node.toString(), node));
  }

  /** Whether the key is present, even with a null value (Gemma's null soft-cap means none). */
  public boolean has(String key) {
    return json().has(key);
  }
}
