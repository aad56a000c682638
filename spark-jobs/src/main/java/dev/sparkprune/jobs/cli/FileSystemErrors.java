package dev.sparkprune.jobs.cli;

import java.net.UnknownHostException;
import java.util.Optional;
import org.apache.hadoop.fs.UnsupportedFileSystemException;

/**
 * Failures to reach a file system that are the user's to fix, said in one line: a host name
 * that does not resolve ({@code hdfs://nohost}), a URI scheme no file system serves, and a file
 * system whose classes are not on the class path ({@code s3a://} without hadoop-aws).
 */
final class FileSystemErrors {
  private static final String S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem";

  private FileSystemErrors() {}

  /** The one-line explanation of {@code error}, if it is one of these. */
  static Optional<String> explain(Throwable error) {
    for (Throwable cause = error; cause != null; cause = cause.getCause()) {
      if (cause instanceof UnknownHostException) {
        return Optional.of("Cannot reach host " + cause.getMessage() + ": unknown host; check the host name in the URI (and the DNS of this machine)");
      }
      if (cause instanceof UnsupportedFileSystemException) {
        return Optional.of("Cannot open the path: " + cause.getMessage() + "; use a local path or a URI such as file://, hdfs:// or s3a://");
      }
      if (cause instanceof ClassNotFoundException && cause.getMessage() != null && cause.getMessage().contains(S3A_CLASS)) {
        return Optional.of(s3aMissing());
      }
    }
    return Optional.empty();
  }

  /** How to add s3a, for the Hadoop version on the class path. */
  static String s3aMissing() {
    String hadoop = org.apache.hadoop.util.VersionInfo.getVersion();
    return "Cannot open s3a:// paths: the s3a file system (hadoop-aws) is not on the class path; run bin/sparkprune with "
        + "SPARKPRUNE_CLASSPATH=/path/to/hadoop-aws-" + hadoop + ".jar:/path/to/bundle-<version>.jar (the AWS SDK bundle that hadoop-aws "
        + hadoop + " depends on), or on a cluster spark-submit --packages org.apache.hadoop:hadoop-aws:" + hadoop;
  }
}
