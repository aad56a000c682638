package dev.sparkprune.tensorio.io;

import java.io.IOException;

/** A file to read: its location, its length, and positioned-read handles on it. */
public interface InputFile {
  String location();

  long length() throws IOException;

  SeekableInput open() throws IOException;
}
