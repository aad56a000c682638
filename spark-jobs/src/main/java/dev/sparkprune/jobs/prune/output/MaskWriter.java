package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.jobs.prune.score.LinearResult;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Writes masks as Parquet (zstd) under the staging folder, partitioned by block, one record per
 * (tensor, row range). Executors write; the bits never reach the driver.
 */
public final class MaskWriter {
  static final StructType SCHEMA =
      new StructType(
          new StructField[] {
            DataTypes.createStructField("tensor", DataTypes.StringType, false),
            DataTypes.createStructField("linear", DataTypes.StringType, false),
            DataTypes.createStructField("row_start", DataTypes.IntegerType, false),
            DataTypes.createStructField("rows", DataTypes.IntegerType, false),
            DataTypes.createStructField("cols", DataTypes.IntegerType, false),
            DataTypes.createStructField("kept", DataTypes.LongType, false),
            DataTypes.createStructField("bits", DataTypes.BinaryType, false),
            DataTypes.createStructField("block", DataTypes.IntegerType, false)
          });

  /** Rows of one Parquet mask record: bounds a record to 1024 rows' packed bits. */
  static final int ROWS_PER_RECORD = 1024;

  private final SparkSession spark;
  private final String location;

  public MaskWriter(SparkSession spark, String location) {
    this.spark = spark;
    this.location = location;
  }

  public void append(JavaRDD<LinearResult> scored) {
    spark.createDataFrame(scored.flatMap(new MaskRows()), SCHEMA)
        .write()
        .mode(SaveMode.Append)
        .option("compression", "zstd")
        .partitionBy("block")
        .parquet(location);
  }

  /** A linear's mask as Parquet rows of at most {@link #ROWS_PER_RECORD} rows each. */
  private static final class MaskRows implements FlatMapFunction<LinearResult, Row> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Row> call(LinearResult result) {
      Mask mask = result.mask;
      List<Row> rows = new ArrayList<>();
      for (int start = 0; start < mask.rows(); start += ROWS_PER_RECORD) {
        int count = Math.min(ROWS_PER_RECORD, mask.rows() - start);
        byte[] bits = mask.bits(start, count);
        long kept = 0;
        for (byte b : bits) {
          kept += Integer.bitCount(b & 0xFF);
        }
        rows.add(RowFactory.create(result.tensor, result.linear, start, count, mask.cols(), kept, bits, result.block));
      }
      return rows.iterator();
    }
  }
}
