package dev.sparkprune.tensorio.io;

import java.io.IOException;
import java.io.OutputStream;

/** A file to write once, sequentially. Creating it fails if it already exists. */
public interface OutputFile {
  String location();

  OutputStream create() throws IOException;
}
