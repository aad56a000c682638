package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.backend.ComputeBackend;

/**
 * A step after a method's mask, from the same inputs: a mask refinement (DSnoT, {@link Dsnot#step})
 * or a weight update on the mask (ADMM, {@link Admm#step}). Both start from the dense weights in
 * the inputs and the previous step's mask.
 */
@FunctionalInterface
public interface PostStep {
  PruneResult apply(LinearInputs inputs, PruneResult previous, SparsityTarget target, ComputeBackend backend, int threads);
}
