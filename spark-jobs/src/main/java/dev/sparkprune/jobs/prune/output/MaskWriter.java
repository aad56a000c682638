package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.hadoop.util.HadoopOutputFile;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Types;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;

/**
 * Writes masks as Parquet (zstd) under the staging folder, in the layout of a table partitioned
 * by block ({@code block=N/}), one record per (tensor, row range). The scoring tasks write them
 * with parquet-java as they finish, one file per task and block, so the bits never reach the
 * driver and a block's scoring stays one Spark job: no Spark SQL write (its per-write planning,
 * commit protocol and, on a local file system, a chmod process per file and folder cost more
 * than scoring a small block).
 *
 * <p>Retries: a file is named by the scoring stage's number in the run and the task's partition,
 * never by attempt, and written under a hidden temporary name, then renamed over any earlier
 * attempt's file; a retried attempt writes the same bytes. Readers (Spark SQL, DuckDB,
 * parquet-java) skip the hidden names; {@link #removeLeftovers} deletes those an attempt killed
 * mid-write left behind.
 */
public final class MaskWriter {
  /** The records' columns; {@code block} is the partition folder's. */
  static final MessageType SCHEMA = Types.buildMessage()
      .required(PrimitiveTypeName.BINARY).as(LogicalTypeAnnotation.stringType()).named("tensor")
      .required(PrimitiveTypeName.BINARY).as(LogicalTypeAnnotation.stringType()).named("linear")
      .required(PrimitiveTypeName.INT32).named("row_start")
      .required(PrimitiveTypeName.INT32).named("rows")
      .required(PrimitiveTypeName.INT32).named("cols")
      .required(PrimitiveTypeName.INT64).named("kept")
      .required(PrimitiveTypeName.BINARY).named("bits")
      .named("spark_schema");

  /** Rows of one Parquet mask record: bounds a record to 1024 rows' packed bits. */
  static final int ROWS_PER_RECORD = 1024;

  private static final String TEMPORARY = ".tmp-";

  private final JobContext context;
  private final String location;
  /** Scoring stages of this run so far: names each stage's files apart. */
  private int stages;

  public MaskWriter(JobContext context, String location) {
    this.context = context;
    this.location = location;
  }

  /**
   * The scoring stage's results, each task writing its linears' masks before it returns their
   * summaries (figures only, no mask bits).
   */
  public JavaRDD<LinearResult> writeStage(JavaRDD<LinearResult> scored) {
    return scored.mapPartitions(new WriteTaskMasks(context, location, stages++), true);
  }

  /** Deletes temporary files of attempts that died mid-write (a live attempt renames its own). */
  public void removeLeftovers() throws IOException {
    Path root = new Path(location);
    FileSystem fs = root.getFileSystem(context.io().conf());
    if (!fs.exists(root)) {
      return;
    }
    for (FileStatus block : fs.listStatus(root)) {
      if (block.isDirectory()) {
        for (FileStatus file : fs.listStatus(block.getPath(), path -> path.getName().contains(TEMPORARY))) {
          fs.delete(file.getPath(), false);
        }
      }
    }
  }

  /** The file of a scoring stage's task in a block's folder. */
  static String fileName(int stage, int task) {
    return String.format(Locale.ROOT, "part-%05d-%05d.zstd.parquet", stage, task);
  }

  /** A task's side: writes the masks of its linears, one file per block, and returns the summaries. */
  private static final class WriteTaskMasks implements FlatMapFunction<Iterator<LinearResult>, LinearResult> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final String location;
    private final int stage;

    WriteTaskMasks(JobContext context, String location, int stage) {
      this.context = context;
      this.location = location;
      this.stage = stage;
    }

    @Override
    public Iterator<LinearResult> call(Iterator<LinearResult> results) throws IOException {
      List<LinearResult> summaries = new ArrayList<>();
      Map<Integer, BlockFile> files = new TreeMap<>();
      TaskContext task = TaskContext.get();
      int partition = task == null ? 0 : task.partitionId();
      String attempt = task == null ? "0" : task.attemptNumber() + "-" + task.taskAttemptId();
      Configuration conf = context.io().conf();
      try {
        while (results.hasNext()) {
          LinearResult result = results.next();
          BlockFile file = files.get(result.block);
          if (file == null) {
            file = BlockFile.open(conf, new Path(location, "block=" + result.block), fileName(stage, partition), attempt);
            files.put(result.block, file);
          }
          file.write(result);
          summaries.add(result.summary());
        }
        for (BlockFile file : files.values()) {
          file.commit();
        }
      } finally {
        for (BlockFile file : files.values()) {
          file.abortIfOpen();
        }
      }
      context.probe("masks");
      return summaries.iterator();
    }
  }

  /** One block's mask file of a task: written under a temporary name, then renamed. */
  private static final class BlockFile {
    private final FileSystem fs;
    private final Path temporary;
    private final Path target;
    private final SimpleGroupFactory groups = new SimpleGroupFactory(SCHEMA);
    private ParquetWriter<Group> writer;

    private BlockFile(FileSystem fs, Path temporary, Path target, ParquetWriter<Group> writer) {
      this.fs = fs;
      this.temporary = temporary;
      this.target = target;
      this.writer = writer;
    }

    static BlockFile open(Configuration conf, Path directory, String name, String attempt) throws IOException {
      FileSystem fs = directory.getFileSystem(conf);
      Path temporary = new Path(directory, "." + name + TEMPORARY + attempt);
      ParquetWriter<Group> writer = ExampleParquetWriter.builder(HadoopOutputFile.fromPath(temporary, conf))
          .withConf(conf)
          .withType(SCHEMA)
          .withCompressionCodec(CompressionCodecName.ZSTD)
          .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
          .build();
      return new BlockFile(fs, temporary, new Path(directory, name), writer);
    }

    /** A linear's mask as records of at most {@link #ROWS_PER_RECORD} rows each. */
    void write(LinearResult result) throws IOException {
      Mask mask = result.mask;
      for (int start = 0; start < mask.rows(); start += ROWS_PER_RECORD) {
        int count = Math.min(ROWS_PER_RECORD, mask.rows() - start);
        byte[] bits = mask.bits(start, count);
        long kept = 0;
        for (byte b : bits) {
          kept += Integer.bitCount(b & 0xFF);
        }
        writer.write(groups.newGroup()
            .append("tensor", result.tensor)
            .append("linear", result.linear)
            .append("row_start", start)
            .append("rows", count)
            .append("cols", mask.cols())
            .append("kept", kept)
            .append("bits", Binary.fromConstantByteArray(bits)));
      }
    }

    /** Closes the file and renames it over an earlier attempt's. */
    void commit() throws IOException {
      writer.close();
      writer = null;
      fs.delete(target, false);
      if (!fs.rename(temporary, target)) {
        throw new IOException("Cannot rename " + temporary + " to " + target);
      }
    }

    void abortIfOpen() {
      if (writer == null) {
        return;
      }
      try {
        writer.close();
      } catch (IOException | RuntimeException e) {
        // The attempt already failed; its own error is the one to report.
      }
      writer = null;
      try {
        fs.delete(temporary, false);
      } catch (IOException e) {
        // Left for removeLeftovers.
      }
    }
  }
}
