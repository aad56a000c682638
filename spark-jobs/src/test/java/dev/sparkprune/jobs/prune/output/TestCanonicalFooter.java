package dev.sparkprune.jobs.prune.output;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.format.ColumnChunk;
import org.apache.parquet.format.Encoding;
import org.apache.parquet.format.FileMetaData;
import org.apache.parquet.format.RowGroup;
import org.apache.parquet.format.Util;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.api.Binary;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mask files' footers list each column chunk's encodings in the format's numeric order, whatever
 * order parquet-java's HashSet gave them in this JVM: a footer with every list in another order (as
 * another JVM may write it) becomes the same bytes, and the file reads back the same records.
 */
class TestCanonicalFooter {
  @TempDir Path dir;

  /** A mask file as MaskWriter writes it: repeated tensor names (dictionary pages) and packed bits. */
  private static byte[] maskFile() throws IOException {
    CanonicalFooter.Buffer buffer = new CanonicalFooter.Buffer();
    SimpleGroupFactory groups = new SimpleGroupFactory(MaskWriter.SCHEMA);
    try (ParquetWriter<Group> writer = ExampleParquetWriter.builder(buffer).withConf(new Configuration()).withType(MaskWriter.SCHEMA)
        .withCompressionCodec(CompressionCodecName.ZSTD).build()) {
      for (int row = 0; row < 3; row++) {
        writer.write(groups.newGroup().append("tensor", "model.layers.0.mlp.up_proj.weight").append("linear", "mlp.up_proj")
            .append("row_start", row * 1024).append("rows", 1024).append("cols", 64).append("kept", 32L * 1024)
            .append("bits", Binary.fromConstantByteArray(new byte[] {(byte) row, 0x55, (byte) 0xAA})));
      }
    }
    return buffer.toByteArray();
  }

  private static int footerStart(byte[] file) {
    int length = ByteBuffer.wrap(file, file.length - 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
    return file.length - 8 - length;
  }

  private static FileMetaData footer(byte[] file) throws IOException {
    int start = footerStart(file);
    return Util.readFileMetaData(new ByteArrayInputStream(file, start, file.length - 8 - start));
  }

  /**
   * The same file with every encodings list in descending numeric order: an order a JVM with other
   * identity hash codes may write, and never the canonical (ascending) one where a list has two or
   * more entries. (Reversing the written list was not enough: where this JVM's HashSet happened to
   * give descending lists, the reversal was already canonical.)
   */
  private static byte[] descending(byte[] file) throws IOException {
    FileMetaData metadata = footer(file);
    for (RowGroup group : metadata.getRow_groups()) {
      for (ColumnChunk chunk : group.getColumns()) {
        List<Encoding> encodings = new ArrayList<>(chunk.getMeta_data().getEncodings());
        encodings.sort(Comparator.comparingInt(Encoding::getValue).reversed());
        chunk.getMeta_data().setEncodings(encodings);
      }
    }
    ByteArrayOutputStream footer = new ByteArrayOutputStream();
    Util.writeFileMetaData(metadata, footer);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int start = footerStart(file);
    out.write(file, 0, start);
    footer.writeTo(out);
    out.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(footer.size()).array());
    out.write(new byte[] {'P', 'A', 'R', '1'});
    return out.toByteArray();
  }

  @Test
  void anyOrderOfTheEncodingsListsGivesTheSameBytes() throws IOException {
    byte[] written = maskFile();
    byte[] scrambled = descending(written);
    // parquet-java lists several encodings per chunk (levels, dictionary, plain): the order is the problem.
    assertThat(footer(written).getRow_groups().get(0).getColumns()).anyMatch(chunk -> chunk.getMeta_data().getEncodings().size() > 1);
    assertThat(scrambled).isNotEqualTo(CanonicalFooter.sortEncodings(written));

    byte[] canonical = CanonicalFooter.sortEncodings(scrambled);
    assertThat(canonical).isEqualTo(CanonicalFooter.sortEncodings(written));
    for (ColumnChunk chunk : footer(canonical).getRow_groups().get(0).getColumns()) {
      int[] values = chunk.getMeta_data().getEncodings().stream().mapToInt(Encoding::getValue).toArray();
      int[] sorted = values.clone();
      Arrays.sort(sorted);
      assertThat(values).isEqualTo(sorted);
    }
    // Only the footer changed; the data pages are the writer's.
    int start = footerStart(written);
    assertThat(Arrays.copyOf(canonical, start)).isEqualTo(Arrays.copyOf(written, start));
    assertThat(CanonicalFooter.sortEncodings(canonical)).isSameAs(canonical);
    assertThat(records(canonical)).isEqualTo(records(written));
  }

  private List<String> records(byte[] file) throws IOException {
    Path path = Files.write(Files.createTempFile(dir, "mask", ".parquet"), file);
    List<String> records = new ArrayList<>();
    try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), new org.apache.hadoop.fs.Path(path.toUri())).build()) {
      for (Group group = reader.read(); group != null; group = reader.read()) {
        records.add(group.toString());
      }
    }
    assertThat(records).hasSize(3);
    return records;
  }

  @Test
  void refusesWhatIsNotAParquetFile() {
    assertThatThrownBy(() -> CanonicalFooter.sortEncodings("not parquet at all".getBytes(java.nio.charset.StandardCharsets.US_ASCII)))
        .isInstanceOf(IOException.class).hasMessageContaining("PAR1");
  }
}
