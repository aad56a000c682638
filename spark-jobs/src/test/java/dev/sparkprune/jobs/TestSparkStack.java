package dev.sparkprune.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.SharedData;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;

/**
 * The build's dependency versions (Jackson via the BOM, Hadoop client, Parquet) must be the ones
 * Spark runs with: a mismatched jackson-databind fails SparkSession start or the first query.
 */
class TestSparkStack extends SparkTestBase {

  @Test
  void sparkRunsAJobWithTheProjectsClasspath() {
    assertThat(spark.range(0, 1000, 1, 4).selectExpr("sum(id)").first().getLong(0)).isEqualTo(499_500L);
    assertThat(ObjectMapper.class.getPackage().getImplementationVersion()).startsWith("2.21.");
  }

  @Test
  void sparkReadsTheSharedC4ParquetSample() {
    String path = SharedData.path("data/c4/c4_validation_2k.parquet").toString();
    Dataset<Row> c4 = spark.read().parquet(path);
    assertThat(c4.columns()).contains("text");
    assertThat(c4.count()).isEqualTo(2000L);
  }
}
