package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.backend.ComputeBackend;

/**
 * A pruning method for one linear: (inputs, target) -> (mask, weights), computed with the
 * backend's building blocks. Magnitude, Wanda, RIA and SparseGPT are pruners (see
 * {@link PruningMethod}); so is gradual ADMM, which chooses its own mask. Steps after the mask
 * (DSnoT, the ADMM update) are {@link PostStep}s chained with {@link #then}.
 */
@FunctionalInterface
public interface Pruner {
  /** The linear's mask and its weights after pruning: pruned entries exactly zero, kept ones the input's or updated. */
  PruneResult prune(LinearInputs inputs, SparsityTarget target, ComputeBackend backend, int threads);

  /** This pruner, then {@code step} on its result. */
  default Pruner then(PostStep step) {
    return (inputs, target, backend, threads) -> step.apply(inputs, prune(inputs, target, backend, threads), target, backend, threads);
  }
}
