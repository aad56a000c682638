package dev.sparkprune.jobs.prune;

/**
 * The registrator's name before release 0.2, so that cluster confs naming it keep working.
 *
 * @deprecated set {@code spark.kryo.registrator=dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator}
 */
@Deprecated
public final class SparkpruneKryoRegistrator extends dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator {}
