package dev.sparkprune.jobs.prune.output;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.parquet.format.ColumnChunk;
import org.apache.parquet.format.ColumnMetaData;
import org.apache.parquet.format.Encoding;
import org.apache.parquet.format.FileMetaData;
import org.apache.parquet.format.RowGroup;
import org.apache.parquet.format.Util;
import org.apache.parquet.io.OutputFile;
import org.apache.parquet.io.PositionOutputStream;

/**
 * Parquet files whose bytes depend only on their content. parquet-java collects each column
 * chunk's encodings in a {@code HashSet} of enum constants, whose order follows the constants'
 * identity hash codes and so changes from one JVM to the next: two runs writing the same masks
 * wrote footers listing e.g. {@code [PLAIN, BIT_PACKED]} and {@code [BIT_PACKED, PLAIN]}. This
 * rewrites the footer with every encodings list in the format's numeric order, which leaves the
 * data pages, and the footer's length, as they were.
 */
final class CanonicalFooter {
  private static final byte[] MAGIC = "PAR1".getBytes(StandardCharsets.US_ASCII);

  private CanonicalFooter() {}

  /** The file with its footer's encodings lists sorted; the same array when they already are. */
  static byte[] sortEncodings(byte[] file) throws IOException {
    int tail = MAGIC.length + Integer.BYTES;
    if (file.length < MAGIC.length + tail || !Arrays.equals(file, file.length - MAGIC.length, file.length, MAGIC, 0, MAGIC.length)) {
      throw new IOException("Not a Parquet file: no PAR1 footer magic");
    }
    int length = ByteBuffer.wrap(file, file.length - tail, Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN).getInt();
    int start = file.length - tail - length;
    if (length <= 0 || start < MAGIC.length) {
      throw new IOException("Not a Parquet file: footer length " + length + " outside the file");
    }
    FileMetaData metadata = Util.readFileMetaData(new ByteArrayInputStream(file, start, length));
    boolean changed = false;
    for (RowGroup group : metadata.getRow_groups()) {
      for (ColumnChunk chunk : group.getColumns()) {
        ColumnMetaData column = chunk.getMeta_data();
        if (column != null && column.getEncodings() != null) {
          List<Encoding> sorted = new ArrayList<>(column.getEncodings());
          sorted.sort(Comparator.comparingInt(Encoding::getValue));
          if (!sorted.equals(column.getEncodings())) {
            column.setEncodings(sorted);
            changed = true;
          }
        }
      }
    }
    if (!changed) {
      return file;
    }
    ByteArrayOutputStream footer = new ByteArrayOutputStream(length);
    Util.writeFileMetaData(metadata, footer);
    ByteArrayOutputStream out = new ByteArrayOutputStream(start + footer.size() + tail);
    out.write(file, 0, start);
    footer.writeTo(out);
    out.write(ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN).putInt(footer.size()).array());
    out.write(MAGIC);
    return out.toByteArray();
  }

  /** A Parquet output kept in memory, so that its footer can be rewritten before the file is written. */
  static final class Buffer implements OutputFile {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    @Override
    public PositionOutputStream create(long blockSizeHint) {
      return stream();
    }

    @Override
    public PositionOutputStream createOrOverwrite(long blockSizeHint) {
      bytes.reset();
      return stream();
    }

    @Override
    public boolean supportsBlockSize() {
      return false;
    }

    @Override
    public long defaultBlockSize() {
      return 0;
    }

    byte[] toByteArray() {
      return bytes.toByteArray();
    }

    private PositionOutputStream stream() {
      return new PositionOutputStream() {
        @Override
        public long getPos() {
          return bytes.size();
        }

        @Override
        public void write(int b) {
          bytes.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) {
          bytes.write(b, off, len);
        }
      };
    }
  }
}
