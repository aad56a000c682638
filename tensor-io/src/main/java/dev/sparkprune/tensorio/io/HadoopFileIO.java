package dev.sparkprune.tensorio.io;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Every Hadoop URI (file://, hdfs://, s3a://, abfs://). Reads open with the random read policy so
 * object stores fetch only the requested byte ranges instead of streaming whole shards.
 */
public final class HadoopFileIO implements FileIO {
  private static final String READ_POLICY = "fs.option.openfile.read.policy";

  private final Configuration conf;

  public HadoopFileIO(Configuration conf) {
    this.conf = Objects.requireNonNull(conf, "conf is null");
  }

  public Configuration conf() {
    return conf;
  }

  @Override
  public InputFile newInputFile(String location) {
    Path path = new Path(location);
    return new InputFile() {
      private FileStatus status;

      @Override
      public String location() {
        return location;
      }

      @Override
      public long length() throws IOException {
        return status().getLen();
      }

      @Override
      public SeekableInput open() throws IOException {
        FileSystem fs = fileSystem(path);
        FSDataInputStream stream;
        try {
          stream = fs.openFile(path).opt(READ_POLICY, "random").withFileStatus(status()).build().get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("Interrupted opening " + location, e);
        } catch (java.util.concurrent.ExecutionException e) {
          throw e.getCause() instanceof IOException ? (IOException) e.getCause() : new IOException(e.getCause());
        }
        return new StreamInput(stream);
      }

      private FileStatus status() throws IOException {
        if (status == null) {
          status = fileSystem(path).getFileStatus(path);
        }
        return status;
      }
    };
  }

  @Override
  public OutputFile newOutputFile(String location) {
    Path path = new Path(location);
    return new OutputFile() {
      @Override
      public String location() {
        return location;
      }

      @Override
      public OutputStream create() throws IOException {
        return fileSystem(path).create(path, false);
      }
    };
  }

  @Override
  public boolean exists(String location) throws IOException {
    Path path = new Path(location);
    return fileSystem(path).exists(path);
  }

  @Override
  public boolean delete(String location) throws IOException {
    Path path = new Path(location);
    return fileSystem(path).delete(path, false);
  }

  @Override
  public List<String> listFiles(String directory) throws IOException {
    Path path = new Path(directory);
    FileSystem fs = fileSystem(path);
    FileStatus status = fs.getFileStatus(path);
    if (!status.isDirectory()) {
      throw new FileNotFoundException("Not a directory: " + directory);
    }
    List<String> names = new ArrayList<>();
    for (FileStatus child : fs.listStatus(path)) {
      if (child.isFile()) {
        names.add(child.getPath().getName());
      }
    }
    names.sort(null);
    return names;
  }

  /** The file system for a path; local files skip the checksum layer (no .crc side files). */
  public FileSystem fileSystem(Path path) {
    try {
      FileSystem fs = path.getFileSystem(conf);
      return fs instanceof LocalFileSystem ? ((LocalFileSystem) fs).getRawFileSystem() : fs;
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot open file system for " + path, e);
    }
  }

  private static final class StreamInput implements SeekableInput {
    private final FSDataInputStream stream;

    StreamInput(FSDataInputStream stream) {
      this.stream = stream;
    }

    @Override
    public void readFully(long position, byte[] buffer, int offset, int length) throws IOException {
      stream.readFully(position, buffer, offset, length);
    }

    @Override
    public void close() throws IOException {
      stream.close();
    }
  }
}
