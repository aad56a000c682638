package dev.sparkprune.tensorio.io;

import java.io.Closeable;
import java.io.IOException;

/** Positioned reads on an open file: no shared stream position, safe to use for row ranges. */
public interface SeekableInput extends Closeable {
  /** Reads exactly {@code length} bytes at {@code position}, or throws EOFException. */
  void readFully(long position, byte[] buffer, int offset, int length) throws IOException;
}
