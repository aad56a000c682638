package dev.sparkprune.jobs.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A multiple-choice set built from TinyStories (generic task format): the context is the first
 * sentences of a paragraph (up to three), the choices are its true next sentence and three
 * sentences of other paragraphs, in an order drawn from the seed. Deterministic: the same text,
 * count and seed give the same file. {@code main(text, out, count)} writes it for the README's
 * figures.
 */
final class NextSentenceSet {
  static final int CHOICES = 4;

  private NextSentenceSet() {}

  /** One JSON line per document: {"context", "choices", "label"}. */
  static List<String> build(String text, int count, long seed) {
    List<String[]> paragraphs = new ArrayList<>();
    List<String> sentences = new ArrayList<>();
    for (String paragraph : text.split("\n\n")) {
      String[] parts = paragraph.strip().split("(?<=[.!?])\\s+");
      if (parts.length >= 3 && Arrays.stream(parts).allMatch(part -> part.length() <= 160)) {
        paragraphs.add(parts);
      }
    }
    for (String[] paragraph : paragraphs) {
      sentences.addAll(Arrays.asList(paragraph));
    }
    ObjectMapper json = new ObjectMapper();
    SplittableRandom random = new SplittableRandom(seed);
    List<String> lines = new ArrayList<>();
    for (int p = 0; p < paragraphs.size() && lines.size() < count; p++) {
      String[] paragraph = paragraphs.get(p);
      int shown = Math.min(3, paragraph.length - 1);
      String truth = paragraph[shown];
      List<String> choices = new ArrayList<>();
      while (choices.size() < CHOICES - 1) {
        String candidate = sentences.get(random.nextInt(sentences.size()));
        if (!Arrays.asList(paragraph).contains(candidate) && !choices.contains(candidate)) {
          choices.add(candidate);
        }
      }
      int label = random.nextInt(CHOICES);
      choices.add(label, truth);
      ObjectNode document = json.createObjectNode();
      document.put("context", String.join(" ", Arrays.copyOf(paragraph, shown)));
      choices.forEach(document.putArray("choices")::add);
      document.put("label", label);
      lines.add(document.toString());
    }
    return lines;
  }

  static Path write(Path text, Path out, int count) throws IOException {
    return Files.write(out, build(Files.readString(text, StandardCharsets.UTF_8), count, 0), StandardCharsets.UTF_8);
  }

  public static void main(String[] args) throws IOException {
    write(Path.of(args[0]), Path.of(args[1]), Integer.parseInt(args[2]));
  }
}
