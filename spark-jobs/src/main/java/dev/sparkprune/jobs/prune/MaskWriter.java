package dev.sparkprune.jobs.prune;

import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Writes masks as Parquet (zstd) under the staging folder, partitioned by block, one record per
 * (tensor, row range). Executors write; the bits never reach the driver.
 */
final class MaskWriter {
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

  private final SparkSession spark;
  private final String location;

  MaskWriter(SparkSession spark, String location) {
    this.spark = spark;
    this.location = location;
  }

  void append(JavaRDD<LinearResult> scored) {
    spark.createDataFrame(scored.flatMap(new PruneFunctions.MaskRows()), SCHEMA)
        .write()
        .mode(SaveMode.Append)
        .option("compression", "zstd")
        .partitionBy("block")
        .parquet(location);
  }
}
