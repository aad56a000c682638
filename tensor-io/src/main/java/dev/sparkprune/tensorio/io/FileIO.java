package dev.sparkprune.tensorio.io;

import java.io.IOException;
import java.util.List;

/**
 * The file system seam of tensor-io. {@link HadoopFileIO} serves every Hadoop URI (file://,
 * hdfs://, s3a://); {@link LocalFileIO} serves plain local paths without Hadoop on the classpath.
 */
public interface FileIO {
  InputFile newInputFile(String location);

  OutputFile newOutputFile(String location);

  boolean exists(String location) throws IOException;

  /** Deletes a file if it exists; returns whether something was deleted. */
  boolean delete(String location) throws IOException;

  /** Names (not paths) of the plain files directly inside a directory, sorted. */
  List<String> listFiles(String directory) throws IOException;

  /** Joins a directory location and a child name. */
  default String resolve(String directory, String name) {
    return directory.endsWith("/") ? directory + name : directory + "/" + name;
  }
}
