package dev.sparkprune.scoring.backend;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.methods.Wanda;

/**
 * Where a task's numerics run: the dense kernels (GEMM, SYRK as {@code gramLower}, Cholesky and
 * inverse) plus the two method loops worth moving as a whole, SparseGPT's block sweep and Wanda's
 * selection. {@link CpuBackend} is the default; a CUDA backend is built with the {@code cuda}
 * Maven profile and found through {@link ComputeBackendProvider}.
 *
 * <p>Every backend must give the reference's masks: the same selection rules, ties and N:M
 * groups. Float sums may differ in the last bits between BLAS libraries, so weights after a
 * SparseGPT update agree to a tolerance, not bit for bit, across backends.
 */
public interface ComputeBackend {
  /** What runs the kernels, for logs and the report: "cpu: native OpenBLAS ...", "cuda: GPU 0 ...". */
  String description();

  /** GEMM, SYRK and the Cholesky of the inverse, as the forward pass and calibration use them. */
  LinearAlgebra linearAlgebra();

  /** SparseGPT's OBS block loop; see {@link dev.sparkprune.scoring.methods.SparseGpt}. */
  PruneResult sparseGpt(
      String layer, Weights weights, double[] hessian, SparsityTarget target, double percdamp, int blockSize, int threads);

  /** Wanda's scores and selection; see {@link Wanda}. */
  PruneResult wanda(String layer, Weights weights, float[] scalerRow, SparsityTarget target, Wanda.Group group, int threads);
}
