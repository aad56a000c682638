package dev.sparkprune.jobs.cluster;

import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkConf;
import org.apache.spark.api.resource.ResourceDiscoveryPlugin;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.resource.ResourceRequest;

/**
 * Test discovery for machines without GPUs: the local-cluster workers run in the driver's JVM
 * and ask in turn, so the first is given GPU "0", the second GPU "1" (and so on, modulo two, for
 * later clusters in the same JVM). Executors receive their GPU from their worker.
 */
public final class FakeGpuDiscoveryPlugin implements ResourceDiscoveryPlugin {
  private static final AtomicInteger NEXT = new AtomicInteger();

  @Override
  public Optional<ResourceInformation> discoverResource(ResourceRequest request, SparkConf conf) {
    if (!request.id().resourceName().equals("gpu")) {
      return Optional.empty();
    }
    String address = String.valueOf(NEXT.getAndIncrement() % 2);
    return Optional.of(new ResourceInformation("gpu", new String[] {address}));
  }
}
