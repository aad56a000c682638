package dev.sparkprune.scoring.backend.cuda;

import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.ComputeBackendProvider;

/** Registers {@link CudaBackend} with {@link dev.sparkprune.scoring.backend.ComputeBackends}. */
public final class CudaBackendProvider implements ComputeBackendProvider {
  @Override
  public String name() {
    return "cuda";
  }

  @Override
  public ComputeBackend open(String deviceAddress) {
    int device;
    try {
      device = Integer.parseInt(deviceAddress.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("GPU address '" + deviceAddress + "' is not a CUDA device number");
    }
    return CudaBackend.open(device);
  }
}
