package dev.sparkprune.scoring;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * Runs independent row ranges on a bounded number of threads. Kernels give each row the same
 * arithmetic whatever the split, so results are bit-identical for any thread count.
 */
public final class RowParallel {
  /** Work in a range, e.g. rows {@code [start, end)}. */
  @FunctionalInterface
  public interface RangeTask {
    void run(int start, int end);
  }

  private static final Map<Integer, ForkJoinPool> POOLS = new ConcurrentHashMap<>();

  private RowParallel() {}

  public static int defaultThreads() {
    return Runtime.getRuntime().availableProcessors();
  }

  /** Splits {@code [0, count)} into about 4 ranges per thread and runs them; rethrows failures. */
  public static void forEach(int count, int threads, RangeTask task) {
    if (threads < 1) {
      throw new IllegalArgumentException("Invalid thread count: " + threads);
    }
    if (threads == 1 || count < 2) {
      task.run(0, count);
      return;
    }
    int chunks = Math.min(count, threads * 4);
    ForkJoinPool pool = POOLS.computeIfAbsent(threads, RowParallel::newPool);
    ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[chunks];
    for (int chunk = 0; chunk < chunks; chunk++) {
      int start = (int) ((long) count * chunk / chunks);
      int end = (int) ((long) count * (chunk + 1) / chunks);
      tasks[chunk] = pool.submit(() -> task.run(start, end));
    }
    RuntimeException failure = null;
    for (ForkJoinTask<?> submitted : tasks) {
      try {
        submitted.join();
      } catch (RuntimeException e) {
        failure = failure == null ? e : failure;
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  private static ForkJoinPool newPool(int threads) {
    return new ForkJoinPool(
        threads,
        pool -> {
          var thread = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
          thread.setDaemon(true);
          thread.setName("sparkprune-kernel-" + thread.getPoolIndex());
          return thread;
        },
        null,
        false);
  }

}
