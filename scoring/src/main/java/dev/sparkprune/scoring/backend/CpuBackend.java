package dev.sparkprune.scoring.backend;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.methods.SparseGpt;
import dev.sparkprune.scoring.methods.Wanda;

/** The kernels in this module on BLAS/LAPACK through netlib: native OpenBLAS where it loads, Java otherwise. */
public final class CpuBackend implements ComputeBackend {
  private static volatile CpuBackend defaultInstance;

  private final LinearAlgebra linalg;

  public CpuBackend(LinearAlgebra linalg) {
    this.linalg = linalg;
  }

  /** On {@link NetlibLinearAlgebra#defaultInstance()}. */
  public static CpuBackend defaultInstance() {
    if (defaultInstance == null) {
      defaultInstance = new CpuBackend(NetlibLinearAlgebra.defaultInstance());
    }
    return defaultInstance;
  }

  @Override
  public String description() {
    return "cpu: " + linalg.description();
  }

  @Override
  public LinearAlgebra linearAlgebra() {
    return linalg;
  }

  @Override
  public PruneResult sparseGpt(
      String layer, Weights weights, double[] hessian, SparsityTarget target, double percdamp, int blockSize, int threads) {
    return SparseGpt.prune(layer, weights, hessian, target, percdamp, blockSize, linalg, threads);
  }

  @Override
  public PruneResult wanda(String layer, Weights weights, float[] scalerRow, SparsityTarget target, Wanda.Group group, int threads) {
    return Wanda.prune(layer, weights, scalerRow, target, group, threads);
  }
}
