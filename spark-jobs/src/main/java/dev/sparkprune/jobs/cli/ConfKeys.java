package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.gpu.NvidiaSmiDiscoveryPlugin;
import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.options.OptionValues;
import dev.sparkprune.jobs.prune.PruneKeys;
import dev.sparkprune.jobs.shrink.ShrinkKeys;
import dev.sparkprune.jobs.spark.FaultProbe;
import java.util.Set;
import java.util.TreeSet;
import org.apache.spark.SparkConf;

/**
 * Every {@code spark.sparkprune.*} conf key something reads, so that a typo such as
 * {@code spark.sparkprune.nsample} is refused with the list instead of ignored. A cluster conf
 * serves every command, so each command accepts every command's keys.
 */
final class ConfKeys {
  private ConfKeys() {}

  /** The known conf keys: the commands' tuning keys, their deprecated spellings, the GPU plugin's, the test probe's class. */
  @SuppressWarnings("deprecation")
  static Set<String> known() {
    Set<String> known = new TreeSet<>();
    for (var keys : java.util.List.of(PruneKeys.ALL, ShrinkKeys.ALL)) {
      for (OptionKey<?> key : keys) {
        if (key.fromConf()) {
          known.add(key.confKey());
        }
      }
    }
    known.addAll(PruneKeys.DEPRECATED_CONF.values());
    known.add(NvidiaSmiDiscoveryPlugin.COMMAND);
    known.add(NvidiaSmiDiscoveryPlugin.DEPRECATED_COMMAND);
    known.add(FaultProbe.CLASS_KEY);
    return known;
  }

  /** Refuses unknown {@code spark.sparkprune.*} keys of the conf spark-submit passes; the probe's own settings are its business. */
  static void checkKnown(SparkConf conf) {
    OptionValues.checkKnownConf(OptionValues.confEntries(conf), known(), FaultProbe.SETTINGS_PREFIX);
  }
}
