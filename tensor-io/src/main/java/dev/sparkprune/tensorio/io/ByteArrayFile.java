package dev.sparkprune.tensorio.io;

import java.io.EOFException;

/** An in-memory file, for formats that travel as bytes (serialized statistics, tests). */
public final class ByteArrayFile implements InputFile {
  private final String location;
  private final byte[] bytes;

  public ByteArrayFile(String location, byte[] bytes) {
    this.location = location;
    this.bytes = bytes;
  }

  @Override
  public String location() {
    return location;
  }

  @Override
  public long length() {
    return bytes.length;
  }

  @Override
  public SeekableInput open() {
    return new SeekableInput() {
      @Override
      public void readFully(long position, byte[] buffer, int offset, int length) throws EOFException {
        if (position < 0 || position + length > bytes.length) {
          throw new EOFException("Read of " + length + " bytes at " + position + " past the end of " + location);
        }
        System.arraycopy(bytes, (int) position, buffer, offset, length);
      }

      @Override
      public void close() {}
    };
  }
}
