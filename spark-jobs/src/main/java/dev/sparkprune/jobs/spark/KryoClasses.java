package dev.sparkprune.jobs.spark;

import java.util.List;

/**
 * The classes a package caches or shuffles, for {@link SparkpruneKryoRegistrator}: each package
 * above this one lists its own (a service in {@code META-INF/services}), so the registrator names
 * no job's classes.
 */
public interface KryoClasses {
  /** Registered in this order, after those of providers whose class names sort first. */
  List<Class<?>> classes();
}
