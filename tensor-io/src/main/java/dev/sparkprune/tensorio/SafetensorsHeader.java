package dev.sparkprune.tensorio;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parsed and validated JSON header of a safetensors file. Every offset and length is checked
 * against the data section before anything is read: the file is untrusted input.
 */
public final class SafetensorsHeader {
  public static final String METADATA_KEY = "__metadata__";

  private static final ObjectMapper STRICT_JSON =
      new ObjectMapper(
          JsonFactory.builder()
              .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION)
              .streamReadConstraints(
                  StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build())
              .build());

  private final List<TensorInfo> tensors;
  private final Map<String, TensorInfo> byName;
  private final Map<String, String> metadata;

  private SafetensorsHeader(List<TensorInfo> tensors, Map<String, String> metadata) {
    this.tensors = Collections.unmodifiableList(tensors);
    Map<String, TensorInfo> index = new LinkedHashMap<>();
    for (TensorInfo tensor : tensors) {
      index.put(tensor.name(), tensor);
    }
    this.byName = Collections.unmodifiableMap(index);
    this.metadata = Collections.unmodifiableMap(metadata);
  }

  /** Tensors in file order (by data offset). */
  public List<TensorInfo> tensors() {
    return tensors;
  }

  public Map<String, TensorInfo> byName() {
    return byName;
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * Parses header JSON of a file at {@code location} whose data section holds {@code dataLength}
   * bytes. Rejects duplicate names, unknown dtypes, sizes that disagree with shapes, and offsets
   * that overlap, leave holes or run past the data.
   */
  public static SafetensorsHeader parse(String location, byte[] json, long dataLength) {
    try {
      return parse(location, new java.io.ByteArrayInputStream(json), dataLength);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /**
   * As {@link #parse(String, byte[], long)}, streaming: the header is read entry by entry and
   * only the tensors' descriptions are kept, never the JSON text or a tree of all of it, so
   * memory is what the tensor list takes. IOExceptions are those of {@code json}.
   */
  public static SafetensorsHeader parse(String location, java.io.InputStream json, long dataLength) throws IOException {
    List<TensorInfo> tensors = new ArrayList<>();
    Map<String, String> metadata = new LinkedHashMap<>();
    try (JsonParser parser = STRICT_JSON.createParser(json)) {
      ValidationException.check(
          parser.nextToken() == JsonToken.START_OBJECT, "Invalid safetensors header in %s: expected a JSON object", location);
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String name = parser.currentName();
        parser.nextToken();
        // One entry's tree at a time: a tensor's dtype, shape and offsets, or the metadata.
        JsonNode value = parser.readValueAsTree();
        if (METADATA_KEY.equals(name)) {
          readMetadata(location, value, metadata);
        } else {
          tensors.add(readTensor(location, name, value, dataLength));
        }
      }
      ValidationException.check(
          parser.nextToken() == null, "Invalid safetensors header in %s: trailing data after the JSON object", location);
    } catch (JsonProcessingException e) {
      throw new ValidationException(
          "Invalid safetensors header in " + location + ": not valid JSON (" + e.getOriginalMessage() + ")");
    }
    tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
    checkCoverage(location, tensors, dataLength);
    return new SafetensorsHeader(tensors, metadata);
  }

  private static void readMetadata(String location, JsonNode node, Map<String, String> metadata) {
    ValidationException.check(
        node.isObject(), "Invalid safetensors header in %s: __metadata__ must be an object of strings", location);
    for (Map.Entry<String, JsonNode> entry : node.properties()) {
      ValidationException.check(
          entry.getValue().isTextual(),
          "Invalid safetensors header in %s: __metadata__ value for '%s' is not a string",
          location,
          entry.getKey());
      metadata.put(entry.getKey(), entry.getValue().textValue());
    }
  }

  private static TensorInfo readTensor(String location, String name, JsonNode node, long dataLength) {
    ValidationException.check(!name.isEmpty(), "Invalid safetensors header in %s: empty tensor name", location);
    ValidationException.check(
        node.isObject(), "Invalid safetensors header in %s: entry for tensor '%s' is not an object", location, name);
    JsonNode dtypeNode = node.get("dtype");
    ValidationException.check(
        dtypeNode != null && dtypeNode.isTextual(),
        "Invalid safetensors header in %s: tensor '%s' has no dtype",
        location,
        name);
    DType dtype;
    try {
      dtype = DType.parse(dtypeNode.textValue());
    } catch (ValidationException e) {
      throw new ValidationException("Invalid safetensors header in " + location + ": tensor '" + name + "': " + e.getMessage());
    }
    long[] shape = readLongs(location, name, "shape", node.get("shape"), -1);
    long[] offsets = readLongs(location, name, "data_offsets", node.get("data_offsets"), 2);
    long begin = offsets[0];
    long end = offsets[1];
    ValidationException.check(
        begin <= end, "Invalid safetensors header in %s: tensor '%s' has data_offsets [%d, %d] with begin after end", location, name, begin, end);

    long expectedBytes;
    try {
      expectedBytes = Math.multiplyExact(TensorInfo.numel(shape), dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new ValidationException(
          "Invalid safetensors header in " + location + ": tensor '" + name + "' shape overflows a 64-bit size");
    }
    ValidationException.check(
        end - begin == expectedBytes,
        "Invalid safetensors header in %s: tensor '%s' %s%s needs %d bytes but data_offsets [%d, %d] span %d",
        location,
        name,
        dtype,
        new TensorInfo(name, dtype, shape, 0, 0).shapeString(),
        expectedBytes,
        begin,
        end,
        end - begin);
    ValidationException.check(
        end <= dataLength,
        "Invalid safetensors header in %s: tensor '%s' data_offsets [%d, %d] run past the data section (%d bytes); the file may be truncated",
        location,
        name,
        begin,
        end,
        dataLength);
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  private static long[] readLongs(String location, String name, String key, JsonNode node, int requiredLength) {
    ValidationException.check(
        node != null && node.isArray(), "Invalid safetensors header in %s: tensor '%s' has no %s array", location, name, key);
    ValidationException.check(
        requiredLength < 0 || node.size() == requiredLength,
        "Invalid safetensors header in %s: tensor '%s' %s must have %d entries, found %d",
        location,
        name,
        key,
        requiredLength,
        node.size());
    ValidationException.check(
        node.size() <= 64, "Invalid safetensors header in %s: tensor '%s' has %d dimensions", location, name, node.size());
    long[] values = new long[node.size()];
    for (int i = 0; i < values.length; i++) {
      JsonNode value = node.get(i);
      ValidationException.check(
          value.isIntegralNumber() && value.canConvertToLong() && value.longValue() >= 0,
          "Invalid safetensors header in %s: tensor '%s' %s[%d] is not a non-negative integer: %s",
          location,
          name,
          key,
          i,
          value);
      values[i] = value.longValue();
    }
    return values;
  }

  private static void checkCoverage(String location, List<TensorInfo> tensors, long dataLength) {
    long covered = 0;
    for (TensorInfo tensor : tensors) {
      ValidationException.check(
          tensor.begin() >= covered,
          "Invalid safetensors header in %s: tensor '%s' data_offsets [%d, %d] overlap the previous tensor, which ends at %d",
          location,
          tensor.name(),
          tensor.begin(),
          tensor.end(),
          covered);
      ValidationException.check(
          tensor.begin() == covered,
          "Invalid safetensors header in %s: bytes [%d, %d) before tensor '%s' belong to no tensor",
          location,
          covered,
          tensor.begin(),
          tensor.name());
      covered = tensor.end();
    }
    ValidationException.check(
        covered == dataLength,
        "Invalid safetensors header in %s: tensors cover %d bytes but the data section holds %d",
        location,
        covered,
        dataLength);
  }
}
