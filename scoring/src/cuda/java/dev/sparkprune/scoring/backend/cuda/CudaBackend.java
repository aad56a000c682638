package dev.sparkprune.scoring.backend.cuda;

import static org.bytedeco.cuda.global.cublas.CUBLAS_FILL_MODE_LOWER;
import static org.bytedeco.cuda.global.cublas.CUBLAS_FILL_MODE_UPPER;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;

import dev.sparkprune.scoring.backend.ColumnSweep;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cusolver.cusolverDnContext;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.cusolver;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * The building blocks on one CUDA device through cuBLAS and cuSOLVER (JavaCPP presets), built
 * with the {@code cuda} Maven profile (every build compiles it; only that profile ships it).
 *
 * <ul>
 *   <li>GEMM (sgemm) and the gram matrix (ssyrk) for the forward pass, calibration and ADMM;
 *       problems below {@link #MIN_GPU_FLOPS} stay on the CPU, where the copies would cost more
 *       than the math;
 *   <li>the upper Cholesky factor of an inverse in double: potrf, potri, potrf of the inverse
 *       (the reference's cholesky, cholesky_inverse, cholesky(upper=True));
 *   <li>the column sweep with W resident on the device: each block's columns come to the host,
 *       where the method updates them, and the trailing update W[:, i2:] -= E F[i1:i2, i2:] runs
 *       as one sgemm on the device;
 *   <li>selection: on the CPU. A per-row top-k needs a segmented sort, which cuBLAS and cuSOLVER
 *       do not offer; the scores are computed on the host and one multiply per weight, so the
 *       CPU's radix select is as fast end to end until a device selection kernel exists.
 * </ul>
 *
 * Row-major matrices are column-major transposes, so C = A B runs as C^T = B^T A^T. Calls are
 * serialized per device: tasks that share a GPU (fractional --gpus-per-task) take turns.
 */
public final class CudaBackend implements ComputeBackend {
  /** Below this many multiply-adds a GEMM stays on the CPU. */
  static final long MIN_GPU_FLOPS = 1L << 27;

  private final int device;
  private final String name;
  private final cublasContext blas = new cublasContext();
  private final cusolverDnContext solver = new cusolverDnContext();
  private final CpuBackend host = CpuBackend.defaultInstance();
  private final LinearAlgebra cpu = host.linearAlgebra();
  private final LinearAlgebra linalg = new DeviceLinearAlgebra();

  private CudaBackend(int device, String name) {
    this.device = device;
    this.name = name;
  }

  /** Binds to a device; throws when the driver, the libraries or the device are missing. */
  static CudaBackend open(int device) {
    int[] count = new int[1];
    check(cudart.cudaGetDeviceCount(count), "cudaGetDeviceCount");
    if (device < 0 || device >= count[0]) {
      throw new IllegalStateException("CUDA device " + device + " does not exist (" + count[0] + " visible)");
    }
    check(cudart.cudaSetDevice(device), "cudaSetDevice");
    org.bytedeco.cuda.cudart.cudaDeviceProp properties = new org.bytedeco.cuda.cudart.cudaDeviceProp();
    check(cudart.cudaGetDeviceProperties(properties, device), "cudaGetDeviceProperties");
    CudaBackend backend = new CudaBackend(device, properties.name().getString());
    checkBlas(cublas.cublasCreate_v2(backend.blas), "cublasCreate");
    checkSolver(cusolver.cusolverDnCreate(backend.solver), "cusolverDnCreate");
    return backend;
  }

  @Override
  public String description() {
    return "cuda: GPU " + device + " (" + name + "), cuBLAS + cuSOLVER";
  }

  @Override
  public LinearAlgebra linearAlgebra() {
    return linalg;
  }

  @Override
  public float kthSmallest(float[] values, int from, int to, long k) {
    return host.kthSmallest(values, from, to, k);
  }

  @Override
  public void pruneLowestPerRow(int rows, int cols, RowScorer scorer, int pruned, RowSink sink, int threads) {
    host.pruneLowestPerRow(rows, cols, scorer, pruned, sink, threads);
  }

  @Override
  public void pruneLowestPerGroup(int rows, int cols, RowScorer scorer, int pruned, int groupSize, RowSink sink, int threads) {
    host.pruneLowestPerGroup(rows, cols, scorer, pruned, groupSize, sink, threads);
  }

  @Override
  public ColumnSweep openColumnSweep(float[] w, int rows, int cols, float[] factor) {
    return new DeviceColumnSweep(w, rows, cols, factor);
  }

  // ---- device memory -------------------------------------------------------------------------

  private static FloatPointer deviceFloats(long count) {
    Pointer pointer = new Pointer();
    check(cudart.cudaMalloc(pointer, Math.max(1, count) * Float.BYTES), "cudaMalloc");
    return new FloatPointer(pointer);
  }

  private static DoublePointer deviceDoubles(long count) {
    Pointer pointer = new Pointer();
    check(cudart.cudaMalloc(pointer, Math.max(1, count) * Double.BYTES), "cudaMalloc");
    return new DoublePointer(pointer);
  }

  private static IntPointer deviceInts(long count) {
    Pointer pointer = new Pointer();
    check(cudart.cudaMalloc(pointer, Math.max(1, count) * Integer.BYTES), "cudaMalloc");
    return new IntPointer(pointer);
  }

  private static void free(Pointer... pointers) {
    for (Pointer pointer : pointers) {
      if (pointer != null && !pointer.isNull()) {
        cudart.cudaFree(pointer);
      }
    }
  }

  /**
   * {@code floats} elements into a device array, as a plain Pointer: JavaCPP reads a pointer's
   * position in bytes where the parameter is void* (cudaMemcpy*), in elements where it is float*.
   */
  private static Pointer floatsInto(FloatPointer base, long floats) {
    return new Pointer(base).position(floats * Float.BYTES);
  }

  /** Host [rows x width] at hostOffset (row stride hostStride) to device (row stride deviceStride), in floats. */
  private static void upload(float[] host, int hostOffset, int hostStride, Pointer device, int rows, int width, int deviceStride) {
    try (FloatPointer staging = new FloatPointer((long) rows * width)) {
      for (int r = 0; r < rows; r++) {
        staging.position((long) r * width).put(host, hostOffset + r * hostStride, width);
      }
      staging.position(0);
      check(cudart.cudaMemcpy2D(device, (long) deviceStride * Float.BYTES, staging, (long) width * Float.BYTES,
          (long) width * Float.BYTES, rows, cudaMemcpyHostToDevice), "cudaMemcpy2D to device");
    }
  }

  private static void download(Pointer device, int deviceStride, float[] host, int hostOffset, int hostStride, int rows, int width) {
    try (FloatPointer staging = new FloatPointer((long) rows * width)) {
      check(cudart.cudaMemcpy2D(staging, (long) width * Float.BYTES, device, (long) deviceStride * Float.BYTES,
          (long) width * Float.BYTES, rows, cudaMemcpyDeviceToHost), "cudaMemcpy2D to host");
      for (int r = 0; r < rows; r++) {
        staging.position((long) r * width).get(host, hostOffset + r * hostStride, width);
      }
    }
  }

  private static void check(int status, String call) {
    if (status != 0) {
      throw new IllegalStateException(call + " failed: CUDA error " + status + " (" + cudart.cudaGetErrorString(status).getString() + ")");
    }
  }

  private static void checkBlas(int status, String call) {
    if (status != 0) {
      throw new IllegalStateException(call + " failed: cuBLAS status " + status);
    }
  }

  private static void checkSolver(int status, String call) {
    if (status != 0) {
      throw new IllegalStateException(call + " failed: cuSOLVER status " + status);
    }
  }

  // ---- kernels -------------------------------------------------------------------------------

  /** GEMM, SYRK and the Cholesky of the inverse on the device; small GEMMs on the CPU. */
  private final class DeviceLinearAlgebra implements LinearAlgebra {
    @Override
    public String description() {
      return CudaBackend.this.description();
    }

    @Override
    public void gemm(int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
        float beta, float[] c, int cOffset, int ldc) {
      if ((long) m * n * k < MIN_GPU_FLOPS) {
        cpu.gemm(m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
        return;
      }
      deviceGemm(false, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
    }

    @Override
    public void gemmTransposedB(int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset,
        int ldb, float beta, float[] c, int cOffset, int ldc) {
      if ((long) m * n * k < MIN_GPU_FLOPS) {
        cpu.gemmTransposedB(m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
        return;
      }
      deviceGemm(true, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
    }

    /** Row-major C [m x n] = alpha A [m x k] op(B) + beta C, as column-major C^T = op(B)^T A^T. */
    private void deviceGemm(boolean transposeB, int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b,
        int bOffset, int ldb, float beta, float[] c, int cOffset, int ldc) {
      int bRows = transposeB ? n : k;
      int bCols = transposeB ? k : n;
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        FloatPointer dA = null;
        FloatPointer dB = null;
        FloatPointer dC = null;
        try (FloatPointer alphaHost = new FloatPointer(alpha); FloatPointer betaHost = new FloatPointer(beta)) {
          dA = deviceFloats((long) m * k);
          dB = deviceFloats((long) bRows * bCols);
          dC = deviceFloats((long) m * n);
          upload(a, aOffset, lda, dA, m, k, k);
          upload(b, bOffset, ldb, dB, bRows, bCols, bCols);
          if (beta != 0f) {
            upload(c, cOffset, ldc, dC, m, n, n);
          }
          checkBlas(cublas.cublasSgemm_v2(blas, transposeB ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, n, m, k,
              alphaHost, dB, bCols, dA, k, betaHost, dC, n), "cublasSgemm");
          download(dC, n, c, cOffset, ldc, m, n);
        } finally {
          free(dA, dB, dC);
        }
      }
    }

    @Override
    public void gramLower(int n, int k, float[] x, int xOffset, float[] c) {
      if ((long) n * n * k / 2 < MIN_GPU_FLOPS) {
        cpu.gramLower(n, k, x, xOffset, c);
        return;
      }
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        FloatPointer dX = null;
        FloatPointer dC = null;
        try (FloatPointer one = new FloatPointer(1f); FloatPointer zero = new FloatPointer(0f)) {
          dX = deviceFloats((long) k * n);
          dC = deviceFloats((long) n * n);
          upload(x, xOffset, n, dX, k, n, n);
          // Row-major X [k x n] is column-major X^T [n x k]; C = X^T X fills column-major upper,
          // which is row-major lower.
          checkBlas(cublas.cublasSsyrk_v2(blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, n, k, one, dX, n, zero, dC, n), "cublasSsyrk");
          float[] full = new float[n * n];
          download(dC, n, full, 0, n, n, n);
          for (int i = 0; i < n; i++) {
            System.arraycopy(full, i * n, c, i * n, i + 1);
          }
        } finally {
          free(dX, dC);
        }
      }
    }

    /**
     * Column-major lower potrf of A gives L with A = L L^T; potri turns it into A^-1 (lower);
     * potrf of that gives L2 with L2 L2^T = A^-1, and L2 read row-major is U = L2^T, the upper
     * factor with U^T U = A^-1.
     */
    @Override
    public boolean upperCholeskyOfInverse(double[] a, int n) {
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        DoublePointer dA = null;
        DoublePointer work = null;
        IntPointer info = null;
        try (DoublePointer host = new DoublePointer(a); IntPointer size = new IntPointer(1); IntPointer infoHost = new IntPointer(1)) {
          dA = deviceDoubles((long) n * n);
          info = deviceInts(1);
          check(cudart.cudaMemcpy(dA, host, (long) n * n * Double.BYTES, cudaMemcpyHostToDevice), "cudaMemcpy to device");
          checkSolver(cusolver.cusolverDnDpotrf_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, n, dA, n, size), "potrf_bufferSize");
          int potrfWork = size.get();
          checkSolver(cusolver.cusolverDnDpotri_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, n, dA, n, size), "potri_bufferSize");
          int workSize = Math.max(potrfWork, size.get());
          work = deviceDoubles(workSize);
          for (int step = 0; step < 3; step++) {
            if (step == 1) {
              checkSolver(cusolver.cusolverDnDpotri(solver, CUBLAS_FILL_MODE_LOWER, n, dA, n, work, workSize, info), "potri");
            } else {
              checkSolver(cusolver.cusolverDnDpotrf(solver, CUBLAS_FILL_MODE_LOWER, n, dA, n, work, workSize, info), "potrf");
            }
            check(cudart.cudaMemcpy(infoHost, info, Integer.BYTES, cudaMemcpyDeviceToHost), "cudaMemcpy info");
            if (infoHost.get() != 0) {
              return false;
            }
          }
          check(cudart.cudaMemcpy(host, dA, (long) n * n * Double.BYTES, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
          host.get(a);
          // Row-major strict lower = column-major strict upper: potrf/potri leave A's values there.
          for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
              a[i * n + j] = 0;
            }
          }
          return true;
        } finally {
          free(dA, work, info);
        }
      }
    }
  }

  /** W and the factor F resident on the device for one sweep; E uploaded per block. */
  private final class DeviceColumnSweep implements ColumnSweep {
    private final float[] host;
    private final int rows;
    private final int columns;
    private final FloatPointer dW;
    private final FloatPointer dFactor;
    /** E's device buffer, grown to the widest block seen (the caller picks the block size). */
    private FloatPointer dE;
    private int eColumns;

    DeviceColumnSweep(float[] w, int rows, int columns, float[] factor) {
      this.host = w;
      this.rows = rows;
      this.columns = columns;
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        FloatPointer weights = deviceFloats((long) rows * columns);
        FloatPointer right;
        try {
          right = deviceFloats((long) columns * columns);
        } catch (RuntimeException e) {
          free(weights);
          throw e;
        }
        this.dW = weights;
        this.dFactor = right;
        upload(w, 0, columns, dW, rows, columns, columns);
        upload(factor, 0, columns, dFactor, columns, columns, columns);
      }
    }

    @Override
    public void readBlock(int i1, int count, float[] block) {
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        download(floatsInto(dW, i1), columns, block, 0, count, rows, count);
      }
    }

    @Override
    public void writeBlock(int i1, int count, float[] block) {
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        upload(block, 0, count, floatsInto(dW, i1), rows, count, columns);
      }
    }

    @Override
    public void updateRight(float[] e, int i1, int i2) {
      int count = i2 - i1;
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        if (count > eColumns) {
          free(dE);
          dE = null;
          dE = deviceFloats((long) rows * count);
          eColumns = count;
        }
        upload(e, 0, count, dE, rows, count, count);
        try (FloatPointer minusOne = new FloatPointer(-1f); FloatPointer one = new FloatPointer(1f)) {
          // Row-major W[:, i2:] (ld columns) -= E (ld count) F[i1:i2, i2:] (ld columns); float*
          // parameters, so positions count floats.
          checkBlas(cublas.cublasSgemm_v2(blas, CUBLAS_OP_N, CUBLAS_OP_N, columns - i2, rows, count, minusOne,
              dFactor.getPointer((long) i1 * columns + i2), columns, dE, count, one, dW.getPointer(i2), columns), "cublasSgemm");
        }
      }
    }

    @Override
    public float[] result() {
      synchronized (CudaBackend.this) {
        check(cudart.cudaSetDevice(device), "cudaSetDevice");
        download(dW, columns, host, 0, columns, rows, columns);
      }
      return host;
    }

    @Override
    public void close() {
      synchronized (CudaBackend.this) {
        free(dW, dFactor, dE);
      }
    }
  }
}
