package dev.sparkprune.tensorio.tokenizer;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * tokenizer.json read in one streaming pass: the model's vocabulary and merges (Gemma-3: 262k
 * tokens, 515k merges, 33 MB) go straight into lists instead of a tree of a million JSON nodes;
 * every other part is kept as a small tree.
 */
record TokenizerJson(ObjectNode root, ObjectNode model, List<String> vocabTokens, List<Integer> vocabIds, List<String> mergeLefts, List<String> mergeRights) {
  /** Vocabulary keys are field names: interning 262k of them would cost more than the parse. */
  private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .build());

  static TokenizerJson parse(String location, String text) {
    try (JsonParser parser = JSON.getFactory().createParser(text)) {
      parser.setCodec(JSON);
      expect(location, parser.nextToken() == JsonToken.START_OBJECT, "expected a JSON object");
      ObjectNode root = JSON.createObjectNode();
      ObjectNode model = JSON.createObjectNode();
      TokenizerJson parsed = new TokenizerJson(root, model, new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String name = parser.currentName();
        JsonToken value = parser.nextToken();
        if (name.equals("model") && value == JsonToken.START_OBJECT) {
          parsed.readModel(location, parser);
          root.set("model", model);
        } else {
          root.set(name, parser.readValueAsTree());
        }
      }
      return parsed;
    } catch (JsonProcessingException e) {
      throw new ValidationException("Invalid " + location + ": not valid JSON (" + e.getOriginalMessage() + ")");
    } catch (IOException e) {
      throw new ValidationException("Invalid " + location + ": " + e.getMessage());
    }
  }

  private void readModel(String location, JsonParser parser) throws IOException {
    while (parser.nextToken() == JsonToken.FIELD_NAME) {
      String name = parser.currentName();
      JsonToken value = parser.nextToken();
      if (name.equals("vocab") && value == JsonToken.START_OBJECT) {
        while (parser.nextToken() == JsonToken.FIELD_NAME) {
          String token = parser.currentName();
          JsonToken id = parser.nextToken();
          expect(location, id == JsonToken.VALUE_NUMBER_INT && parser.getNumberType() == JsonParser.NumberType.INT,
              "model.vocab id " + parser.getText() + " of '" + token + "' must be an integer");
          vocabTokens.add(token);
          vocabIds.add(parser.getIntValue());
        }
        model.put("vocab_size", vocabTokens.size());
      } else if (name.equals("merges") && value == JsonToken.START_ARRAY) {
        readMerges(location, parser);
        model.put("merges_size", mergeLefts.size());
      } else {
        model.set(name, parser.readValueAsTree());
      }
    }
  }

  /** Merges as "left right" strings (older files) or [left, right] pairs. */
  private void readMerges(String location, JsonParser parser) throws IOException {
    for (JsonToken token = parser.nextToken(); token != JsonToken.END_ARRAY; token = parser.nextToken()) {
      if (token == JsonToken.VALUE_STRING) {
        String text = parser.getText();
        int space = text.indexOf(' ', 1);
        expect(location, space > 0, "merge '" + text + "' is not two symbols separated by a space");
        mergeLefts.add(text.substring(0, space));
        mergeRights.add(text.substring(space + 1));
      } else {
        expect(location, token == JsonToken.START_ARRAY && parser.nextToken() == JsonToken.VALUE_STRING, "a merge must be a string or [left, right]");
        String left = parser.getText();
        expect(location, parser.nextToken() == JsonToken.VALUE_STRING, "a merge must be a string or [left, right]");
        mergeLefts.add(left);
        mergeRights.add(parser.getText());
        expect(location, parser.nextToken() == JsonToken.END_ARRAY, "a merge must be a string or [left, right]");
      }
    }
  }

  private static void expect(String location, boolean condition, String what) {
    if (!condition) {
      throw new ValidationException("Invalid " + location + ": " + what);
    }
  }

  JsonNode path(String field) {
    return root.path(field);
  }
}
