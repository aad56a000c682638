package dev.sparkprune.tensorio.io;

import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Local files through NIO, for callers without Hadoop (scoring tests, small tools). */
public final class LocalFileIO implements FileIO {

  @Override
  public InputFile newInputFile(String location) {
    Path path = toPath(location);
    return new InputFile() {
      @Override
      public String location() {
        return location;
      }

      @Override
      public long length() throws IOException {
        return Files.size(path);
      }

      @Override
      public SeekableInput open() throws IOException {
        return new ChannelInput(FileChannel.open(path, StandardOpenOption.READ));
      }
    };
  }

  @Override
  public OutputFile newOutputFile(String location) {
    Path path = toPath(location);
    return new OutputFile() {
      @Override
      public String location() {
        return location;
      }

      @Override
      public OutputStream create() throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
          Files.createDirectories(parent);
        }
        return Files.newOutputStream(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      }
    };
  }

  @Override
  public boolean exists(String location) {
    return Files.exists(toPath(location));
  }

  @Override
  public boolean delete(String location) throws IOException {
    return Files.deleteIfExists(toPath(location));
  }

  @Override
  public List<String> listFiles(String directory) throws IOException {
    List<String> names = new ArrayList<>();
    try (Stream<Path> children = Files.list(toPath(directory))) {
      children.filter(Files::isRegularFile).forEach(child -> names.add(child.getFileName().toString()));
    }
    names.sort(null);
    return names;
  }

  private static Path toPath(String location) {
    return location.startsWith("file:") ? Paths.get(URI.create(location)) : Paths.get(location);
  }

  private static final class ChannelInput implements SeekableInput {
    private final FileChannel channel;

    ChannelInput(FileChannel channel) {
      this.channel = channel;
    }

    @Override
    public void readFully(long position, byte[] buffer, int offset, int length) throws IOException {
      ByteBuffer target = ByteBuffer.wrap(buffer, offset, length);
      long at = position;
      while (target.hasRemaining()) {
        int read = channel.read(target, at);
        if (read < 0) {
          throw new EOFException("Unexpected end of file at byte " + at);
        }
        at += read;
      }
    }

    @Override
    public void close() throws IOException {
      channel.close();
    }
  }
}
