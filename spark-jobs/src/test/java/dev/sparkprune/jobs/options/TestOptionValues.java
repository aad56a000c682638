package dev.sparkprune.jobs.options;

import static java.util.Map.entry;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.ValidationException;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The one precedence chain, where a bad value came from, and the rules' messages. */
class TestOptionValues {
  private static final OptionKey<Integer> SAMPLES = OptionKey.builder("samples", Parsers.POSITIVE_INTEGER).label("N").defaultValue(8)
      .fromConf().check(Parsers.atLeast(2, "must be at least 2")).description("Samples.").build();
  private static final OptionKey<String> COLOR = OptionKey.builder("color", Parsers.oneOf(entry("red", "R"), entry("green", "G"),
      entry("blue", "B"))).defaultValue("red").description("Color.").build();
  private static final OptionKey<String> NAME = OptionKey.builder("name", Parsers.TEXT).required().description("Name.").build();
  private static final OptionKey<Boolean> LOUD = OptionKey.flag("loud", "Loud.");

  private static OptionValues values(Map<String, String> given, Map<String, String> conf) {
    return new OptionValues(given, conf, Map.of("samples", "spark.sparkprune.nSamples"));
  }

  @Test
  void givenThenConfThenDeprecatedConfThenDefault() {
    assertThat(values(Map.of("samples", "5"), Map.of("spark.sparkprune.samples", "6")).get(SAMPLES)).isEqualTo(5);
    assertThat(values(Map.of(), Map.of("spark.sparkprune.samples", "6", "spark.sparkprune.nSamples", "7")).get(SAMPLES)).isEqualTo(6);
    assertThat(values(Map.of(), Map.of("spark.sparkprune.nSamples", "7")).get(SAMPLES)).isEqualTo(7);
    assertThat(values(Map.of(), Map.of()).get(SAMPLES)).isEqualTo(8);
    // A key a cluster may not set is read from the given values only.
    assertThat(values(Map.of(), Map.of("spark.sparkprune.color", "blue")).get(COLOR)).isEqualTo("R");
    assertThat(values(Map.of(), Map.of()).get(LOUD)).isFalse();
    assertThat(values(Map.of("loud", "TRUE"), Map.of()).get(LOUD)).isTrue();
    assertThat(values(Map.of(), Map.of()).value(NAME)).isEmpty();
  }

  @Test
  void aBadValueNamesWhereItCameFrom() {
    assertThatThrownBy(() -> values(Map.of("samples", "x"), Map.of()).get(SAMPLES))
        .isInstanceOf(ValidationException.class).hasMessage("Invalid --samples x: must be a positive integer");
    assertThatThrownBy(() -> values(Map.of(), Map.of("spark.sparkprune.samples", "1")).get(SAMPLES))
        .hasMessage("Invalid spark.sparkprune.samples 1: must be at least 2");
    assertThatThrownBy(() -> values(Map.of(), Map.of("spark.sparkprune.nSamples", "-3")).get(SAMPLES))
        .hasMessage("Invalid spark.sparkprune.nSamples -3: must be a positive integer");
    assertThatThrownBy(() -> values(Map.of("color", "pink"), Map.of()).get(COLOR)).hasMessage("Invalid --color pink: use red, green or blue");
    assertThatThrownBy(() -> values(Map.of("loud", "yes"), Map.of()).get(LOUD)).hasMessage("Invalid --loud yes: use true or false");
    assertThatThrownBy(() -> values(Map.of(), Map.of()).get(NAME)).hasMessage("Missing --name");
    // A checker's own message keeps only its reason: ValidationException.invalid.
    OptionKey<String> kernel = OptionKey.<String>builder("metric", text -> {
      throw ValidationException.invalid("layer metric", text, "use angular or block-influence");
    }).description("Metric.").build();
    assertThatThrownBy(() -> values(Map.of("metric", "cos"), Map.of()).get(kernel)).hasMessage("Invalid --metric cos: use angular or block-influence");
  }

  @Test
  void valuesMadeInCodeAreCheckedAlike() {
    assertThatThrownBy(() -> OptionValues.check(SAMPLES, 1, Sources.OPTIONS)).hasMessage("Invalid --samples 1: must be at least 2");
    OptionValues fromConf = values(Map.of(), Map.of("spark.sparkprune.samples", "4"));
    fromConf.get(SAMPLES);
    assertThatThrownBy(() -> OptionValues.check(SAMPLES, 1, fromConf)).hasMessage("Invalid spark.sparkprune.samples 1: must be at least 2");
  }

  @Test
  void defaultsAreParsedLikeValuesAndShownInTheHelp() {
    assertThat(SAMPLES.help()).isEqualTo("Samples. Default: 8");
    assertThat(SAMPLES.defaultValue()).contains(8);
    assertThat(NAME.defaultValue()).isEmpty();
    assertThat(SAMPLES.confKey()).isEqualTo("spark.sparkprune.samples");
    assertThatThrownBy(() -> OptionKey.builder("bad", Parsers.POSITIVE_INTEGER).defaultValue("none").description("Bad.").build())
        .hasMessage("must be a positive integer");
  }

  @Test
  void unknownKeysAreRefusedWithTheKnownOnes() {
    assertThatThrownBy(() -> OptionValues.checkKnown(Map.of("sample", "3"), List.of(SAMPLES, COLOR), "demo"))
        .hasMessage("Unknown demo settings [sample] (known: samples, color)");
    Set<String> known = Set.of("spark.sparkprune.samples", "spark.sparkprune.test.probe-class");
    OptionValues.checkKnownConf(Map.of("spark.sparkprune.samples", "3", "spark.sparkprune.test.fail", "x", "spark.master", "local"), known,
        "spark.sparkprune.test.");
    assertThatThrownBy(() -> OptionValues.checkKnownConf(Map.of("spark.sparkprune.sample", "3"), known, "spark.sparkprune.test."))
        .hasMessage("Unknown Spark conf key spark.sparkprune.sample: no sparkprune setting has that name "
            + "(known: spark.sparkprune.samples, spark.sparkprune.test.probe-class)");
  }

  private record Pair(int low, int high) {}

  @Test
  void rulesNameTheKeysWhereTheirValuesCameFrom() {
    OptionKey<Integer> low = OptionKey.builder("low", Parsers.INTEGER).fromConf().description("Low.").build();
    OptionKey<Integer> high = OptionKey.builder("high", Parsers.INTEGER).description("High.").build();
    Rules<Pair> rules = Rules.of(
        Rule.of("low below high", pair -> pair.low() < pair.high(),
            (pair, k) -> String.format("Invalid %s %d: not below %s %d", k.of(low), pair.low(), k.of(high), pair.high())),
        Rule.checkedBy("the kernel's own check", pair -> ValidationException.check(pair.high() < 10, "High values overflow: %d", pair.high()),
            low, high));
    rules.check(new Pair(1, 2), Sources.OPTIONS);
    assertThatThrownBy(() -> rules.check(new Pair(3, 2), Sources.OPTIONS)).hasMessage("Invalid --low 3: not below --high 2");
    OptionValues values = values(Map.of(), Map.of("spark.sparkprune.low", "3"));
    values.get(low);
    assertThatThrownBy(() -> rules.check(new Pair(3, 2), values)).hasMessage("Invalid spark.sparkprune.low 3: not below --high 2");
    assertThatThrownBy(() -> rules.check(new Pair(3, 12), Sources.OPTIONS))
        .hasMessage("Cannot combine --low and --high: High values overflow: 12");
    assertThat(rules.rules()).extracting(Rule::name).containsExactly("low below high", "the kernel's own check");
  }

  @Test
  void exclusiveKeys() {
    OptionValues values = values(Map.of("samples", "3", "color", "red"), Map.of());
    assertThatThrownBy(() -> values.checkExclusive(SAMPLES, COLOR)).hasMessage("Give either --samples or --color, not both");
    values(Map.of("samples", "3"), Map.of()).checkExclusive(SAMPLES, COLOR);
  }
}
