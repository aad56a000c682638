package dev.sparkprune.jobs.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.scoring.model.ContinuationRequest;
import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * The task-file schemas {@code eval --tasks} reads, each turned into requests exactly as
 * lm-evaluation-harness's task of that name (its yaml templates and utils), zero-shot, with the
 * default target delimiter " ". A file's format is detected from the fields of its first
 * document unless {@code --task-format} names it.
 */
public enum TaskFormat {
  /** {@code activity_label}, {@code ctx_a}/{@code ctx_b} (or {@code ctx}), {@code endings}, {@code label}. */
  HELLASWAG("hellaswag", true),
  /** {@code goal}, {@code sol1}, {@code sol2}, {@code label}: "Question: goal\nAnswer:". */
  PIQA("piqa", true),
  /** {@code question}, {@code choices.text}, {@code choices.label}, {@code answerKey}. */
  ARC("arc", true),
  /** {@code sentence} with one "_", {@code option1}, {@code option2}, {@code answer} "1" or "2". */
  WINOGRANDE("winogrande", false),
  /** {@code passage}, {@code question}, {@code answer} (boolean) or {@code label} (0/1). */
  BOOLQ("boolq", false),
  /** {@code question_stem}, {@code choices.text}, {@code choices.label}, {@code answerKey}: the stem alone as context. */
  OPENBOOKQA("openbookqa", true),
  /** {@code premise}/{@code hypothesis} (SuperGLUE) or {@code sentence1}/{@code sentence2} (GLUE), {@code label} 0 = entailment. */
  RTE("rte", false),
  /** {@code context}, {@code choices} (strings), {@code label}. */
  GENERIC("generic", true);

  private static final String DELIMITER = " ";
  private static final Pattern BRACKETED = Pattern.compile("\\[.*?\\]");

  private final String id;
  private final boolean normalized;

  TaskFormat(String id, boolean normalized) {
    this.id = id;
    this.normalized = normalized;
  }

  public String id() {
    return id;
  }

  /** Whether lm-evaluation-harness reports {@code acc_norm} for this task (else {@code acc} only). */
  public boolean normalized() {
    return normalized;
  }

  public static TaskFormat named(String name) {
    for (TaskFormat format : values()) {
      if (format.id.equals(name.trim().toLowerCase(Locale.ROOT))) {
        return format;
      }
    }
    throw new ValidationException("Invalid --task-format: " + name + " (expected one of " + ids() + ")");
  }

  /** The format whose distinguishing fields the document has. */
  static TaskFormat detect(JsonNode document) {
    if (document.has("endings")) {
      return HELLASWAG;
    } else if (document.has("goal") && document.has("sol1")) {
      return PIQA;
    } else if (document.has("sentence") && document.has("option1")) {
      return WINOGRANDE;
    } else if (document.has("passage") && document.has("question")) {
      return BOOLQ;
    } else if (document.has("question_stem")) {
      return OPENBOOKQA;
    } else if ((document.has("premise") && document.has("hypothesis")) || (document.has("sentence1") && document.has("sentence2"))) {
      return RTE;
    } else if (document.has("question") && document.has("answerKey")) {
      return ARC;
    } else if (document.has("context") && document.has("choices")) {
      return GENERIC;
    }
    List<String> fields = new ArrayList<>();
    document.fieldNames().forEachRemaining(fields::add);
    throw new ValidationException(
        "Cannot detect the task format from fields " + fields + ": expected HellaSwag (endings), PIQA (goal, sol1), "
            + "WinoGrande (sentence, option1), BoolQ (passage, question), ARC (question, answerKey), OpenBookQA "
            + "(question_stem), RTE (premise, hypothesis) or generic "
            + "(context, choices, label); or pass --task-format " + ids());
  }

  static String ids() {
    List<String> ids = new ArrayList<>();
    for (TaskFormat format : values()) {
      ids.add(format.id);
    }
    return String.join("|", ids);
  }

  /** The document's requests; a missing or malformed field fails with its name. */
  TaskDocument document(int line, JsonNode doc) {
    switch (this) {
      case HELLASWAG:
        return hellaswag(line, doc);
      case PIQA:
        return shared(line, "Question: " + text(doc, "goal") + "\nAnswer:", new String[] {text(doc, "sol1"), text(doc, "sol2")}, index(doc, "label"));
      case ARC:
        return arc(line, doc);
      case WINOGRANDE:
        return winogrande(line, doc);
      case BOOLQ:
        return boolq(line, doc);
      case OPENBOOKQA:
        return openbookqa(line, doc);
      case RTE:
        return rte(line, doc);
      default:
        return shared(line, text(doc, "context"), texts(doc, "choices"), index(doc, "label"));
    }
  }

  /** One context; each choice is scored as the continuation " choice". */
  private static TaskDocument shared(int line, String context, String[] choices, int gold) {
    String[] contexts = new String[choices.length];
    String[] continuations = new String[choices.length];
    for (int i = 0; i < choices.length; i++) {
      contexts[i] = context;
      continuations[i] = DELIMITER + choices[i];
    }
    return new TaskDocument(line, contexts, continuations, choices, gold);
  }

  /** lm-eval's hellaswag process_docs: "activity_label: ctx_a Ctx_b" and endings, cleaned by {@link #preprocess}. */
  private static TaskDocument hellaswag(int line, JsonNode doc) {
    String context = doc.has("ctx_a") || doc.has("ctx_b") ? text(doc, "ctx_a") + " " + capitalize(text(doc, "ctx_b")) : text(doc, "ctx");
    String query = preprocess(doc.has("activity_label") ? text(doc, "activity_label") + ": " + context : context);
    String[] endings = texts(doc, "endings");
    for (int i = 0; i < endings.length; i++) {
      endings[i] = preprocess(endings[i]);
    }
    return shared(line, query, endings, index(doc, "label"));
  }

  /** WikiHow artifacts: " [title]" becomes ". ", other [bracketed] tags go, double spaces become single. */
  static String preprocess(String text) {
    String cleaned = pythonStrip(text).replace(" [title]", ". ");
    cleaned = BRACKETED.matcher(cleaned).replaceAll("");
    return cleaned.replace("  ", " ");
  }

  /** Python's {@code str.capitalize}: the first character in title case, the rest lower case. */
  static String capitalize(String text) {
    if (text.isEmpty()) {
      return text;
    }
    int first = text.codePointAt(0);
    return new String(Character.toChars(Character.toTitleCase(first))) + text.substring(Character.charCount(first)).toLowerCase(Locale.ROOT);
  }

  /** lm-eval's arc_easy/arc_challenge: "Question: q\nAnswer:", gold = choices.label.index(answerKey). */
  private static TaskDocument arc(int line, JsonNode doc) {
    JsonNode question = doc.get("question");
    // The AI2 release nests the choices in the question ({stem, choices: [{text, label}]});
    // the Hugging Face one has question text and parallel choices.text / choices.label lists.
    boolean nested = question != null && question.isObject();
    String stem = nested ? text(question, "stem") : text(doc, "question");
    String[] texts;
    String[] labels;
    if (nested) {
      JsonNode choices = array(question, "choices");
      texts = new String[choices.size()];
      labels = new String[choices.size()];
      for (int i = 0; i < texts.length; i++) {
        texts[i] = text(choices.get(i), "text");
        labels[i] = text(choices.get(i), "label");
      }
    } else {
      JsonNode choices = labelledChoices(doc);
      texts = texts(choices, "text");
      labels = texts(choices, "label");
    }
    return shared(line, "Question: " + stem + "\nAnswer:", texts, answerIndex(labels, text(doc, "answerKey")));
  }

  /** lm-eval's openbookqa: the question stem alone, gold = choices.label.index(answerKey.lstrip()). */
  private static TaskDocument openbookqa(int line, JsonNode doc) {
    JsonNode choices = labelledChoices(doc);
    String answerKey = text(doc, "answerKey");
    int start = 0;
    while (start < answerKey.length() && ContinuationRequest.isPythonWhitespace(answerKey.codePointAt(start))) {
      start += Character.charCount(answerKey.codePointAt(start));
    }
    return shared(line, text(doc, "question_stem"), texts(choices, "text"), answerIndex(texts(choices, "label"), answerKey.substring(start)));
  }

  /** lm-eval's rte (GLUE) and sglue_rte (SuperGLUE): "s1\nQuestion: s2 True or False?\nAnswer:". */
  private static TaskDocument rte(int line, JsonNode doc) {
    boolean superGlue = doc.has("premise");
    String first = text(doc, superGlue ? "premise" : "sentence1");
    String second = text(doc, superGlue ? "hypothesis" : "sentence2");
    return shared(line, first + "\nQuestion: " + second + " True or False?\nAnswer:", new String[] {"True", "False"}, index(doc, "label"));
  }

  /** The Hugging Face layout of lettered choices: {@code choices: {text: [...], label: [...]}}. */
  private static JsonNode labelledChoices(JsonNode doc) {
    JsonNode choices = doc.get("choices");
    ValidationException.check(choices != null && choices.isObject(), "Invalid field 'choices': expected an object with 'text' and 'label' lists");
    int texts = array(choices, "text").size();
    int labels = array(choices, "label").size();
    ValidationException.check(texts == labels, "Invalid field 'choices': %d texts but %d labels", texts, labels);
    return choices;
  }

  private static int answerIndex(String[] labels, String answerKey) {
    int gold = List.of(labels).indexOf(answerKey);
    ValidationException.check(gold >= 0, "Invalid answerKey '%s': not among choices.label %s", answerKey, List.of(labels));
    return gold;
  }

  /**
   * lm-eval's winogrande (partial scoring): choice i's context is the sentence up to the blank
   * with option i in it; the continuation, the same for both, is the rest after the blank.
   */
  private static TaskDocument winogrande(int line, JsonNode doc) {
    String sentence = text(doc, "sentence");
    int blank = sentence.indexOf('_');
    ValidationException.check(blank >= 0, "Invalid field 'sentence': it has no '_' blank");
    String[] options = {text(doc, "option1"), text(doc, "option2")};
    String continuation = DELIMITER + pythonStrip(sentence.substring(blank + 1));
    String[] contexts = new String[2];
    for (int i = 0; i < 2; i++) {
      contexts[i] = sentence.substring(0, blank) + options[i];
    }
    JsonNode answer = doc.get("answer");
    ValidationException.check(answer != null && !answer.isNull(), "Missing field 'answer'");
    String key = answer.asText();
    ValidationException.check(key.equals("1") || key.equals("2"), "Invalid answer '%s': expected \"1\" or \"2\"", key);
    return new TaskDocument(line, contexts, new String[] {continuation, continuation}, contexts.clone(), key.equals("1") ? 0 : 1);
  }

  /** lm-eval's boolq (super_glue): "passage\nQuestion: question?\nAnswer:" with choices no/yes. */
  private static TaskDocument boolq(int line, JsonNode doc) {
    int gold;
    JsonNode answer = doc.get("answer");
    if (answer != null && !answer.isNull()) {
      ValidationException.check(answer.isBoolean(), "Invalid field 'answer': %s (expected true or false)", answer);
      gold = answer.booleanValue() ? 1 : 0;
    } else {
      gold = index(doc, "label");
    }
    String context = text(doc, "passage") + "\nQuestion: " + text(doc, "question") + "?\nAnswer:";
    return shared(line, context, new String[] {"no", "yes"}, gold);
  }

  private static String text(JsonNode doc, String field) {
    JsonNode value = doc.get(field);
    ValidationException.check(value != null && !value.isNull(), "Missing field '%s'", field);
    ValidationException.check(value.isTextual(), "Invalid field '%s': %s (expected a string)", field, value);
    return value.textValue();
  }

  private static JsonNode array(JsonNode doc, String field) {
    JsonNode value = doc.get(field);
    ValidationException.check(value != null && !value.isNull(), "Missing field '%s'", field);
    ValidationException.check(value.isArray() && value.size() > 0, "Invalid field '%s': expected a non-empty list", field);
    return value;
  }

  private static String[] texts(JsonNode doc, String field) {
    JsonNode values = array(doc, field);
    String[] texts = new String[values.size()];
    Iterator<JsonNode> items = values.elements();
    for (int i = 0; items.hasNext(); i++) {
      JsonNode item = items.next();
      ValidationException.check(item.isTextual(), "Invalid field '%s': item %d is %s (expected a string)", field, i, item);
      texts[i] = item.textValue();
    }
    return texts;
  }

  /** A label as an integer or a string of digits (Hugging Face stores HellaSwag's as "0".."3"). */
  private static int index(JsonNode doc, String field) {
    JsonNode value = doc.get(field);
    ValidationException.check(value != null && !value.isNull(), "Missing field '%s'", field);
    if (value.isIntegralNumber() && value.canConvertToInt()) {
      return value.intValue();
    }
    ValidationException.check(
        value.isTextual() && value.textValue().matches("[0-9]{1,9}"), "Invalid field '%s': %s (expected an integer label)", field, value);
    return Integer.parseInt(value.textValue());
  }

  /** Python's {@code str.strip()}. */
  private static String pythonStrip(String text) {
    int start = 0;
    int end = text.length();
    while (start < end && ContinuationRequest.isPythonWhitespace(text.codePointAt(start))) {
      start += Character.charCount(text.codePointAt(start));
    }
    while (end > start && ContinuationRequest.isPythonWhitespace(text.codePointBefore(end))) {
      end -= Character.charCount(text.codePointBefore(end));
    }
    return text.substring(start, end);
  }
}
