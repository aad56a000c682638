package dev.sparkprune.tensorio.io;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;

/** Whole-file reads of small files (configs, manifests, reports), with a size cap checked first. */
public final class InputFiles {
  private InputFiles() {}

  /** The file's bytes; fails before allocating if it is larger than {@code maxBytes}. */
  public static byte[] readAll(InputFile file, long maxBytes) throws IOException {
    long length = file.length();
    ValidationException.check(
        length <= maxBytes && length <= Integer.MAX_VALUE - 16,
        "Cannot read %s: %d bytes is over the %d-byte limit for this kind of file",
        file.location(),
        length,
        maxBytes);
    byte[] bytes = new byte[(int) length];
    try (SeekableInput input = file.open()) {
      input.readFully(0, bytes, 0, bytes.length);
    }
    return bytes;
  }
}
