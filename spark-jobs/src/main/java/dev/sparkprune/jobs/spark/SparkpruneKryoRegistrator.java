package dev.sparkprune.jobs.spark;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.serializers.JavaSerializer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;
import org.apache.spark.serializer.KryoRegistrator;

/**
 * Registers the classes the jobs cache and shuffle (chunks of hidden states, statistics, masks,
 * plan rows), so Kryo writes class ids instead of names: the modules' value types here, then each
 * job package's {@link KryoClasses}, providers in class-name order so that the driver and every
 * executor (one jar) number them alike. Set with
 * {@code spark.kryo.registrator=dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator}.
 */
public class SparkpruneKryoRegistrator implements KryoRegistrator {
  @Override
  public void registerClasses(Kryo kryo) {
    kryo.register(java.util.LinkedHashMap.class);
    kryo.register(dev.sparkprune.scoring.model.HiddenStates.class);
    kryo.register(dev.sparkprune.scoring.model.HiddenStates[].class);
    kryo.register(dev.sparkprune.scoring.stats.CalibrationStatistics.class);
    kryo.register(dev.sparkprune.scoring.stats.CalibrationStatistics.HessianStorage.class);
    kryo.register(dev.sparkprune.scoring.allocation.ScoreHistogram.class);
    kryo.register(dev.sparkprune.scoring.SparsityTarget.class);
    kryo.register(dev.sparkprune.scoring.methods.PruningMethod.class);
    kryo.register(dev.sparkprune.tensorio.mask.Mask.class);
    kryo.register(dev.sparkprune.tensorio.arch.Linear.class);
    kryo.register(dev.sparkprune.tensorio.arch.Expert.class);
    kryo.register(dev.sparkprune.tensorio.DType.class);
    kryo.register(int[][].class);
    kryo.register(float[].class);
    kryo.register(double[].class);
    kryo.register(long[].class);
    kryo.register(byte[].class);
    // Records have no field offsets for Kryo 4's FieldSerializer: Java serialization, which records support.
    kryo.register(dev.sparkprune.tensorio.quant.QuantizationError.class, new JavaSerializer());
    kryo.register(dev.sparkprune.tensorio.quant.Requantization.class, new JavaSerializer());
    List<KryoClasses> providers = new ArrayList<>();
    ServiceLoader.load(KryoClasses.class, SparkpruneKryoRegistrator.class.getClassLoader()).forEach(providers::add);
    providers.sort(Comparator.comparing(provider -> provider.getClass().getName()));
    for (KryoClasses provider : providers) {
      provider.classes().forEach(kryo::register);
    }
  }
}
