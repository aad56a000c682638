package dev.sparkprune.tensorio.archive;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/** One safetensors file of an archive, described from its header alone. */
public final class Shard implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String fileName;
  private final long length;
  private final int tensorCount;
  private final Map<String, String> metadata;

  public Shard(String fileName, long length, int tensorCount, Map<String, String> metadata) {
    this.fileName = Objects.requireNonNull(fileName, "fileName is null");
    this.length = length;
    this.tensorCount = tensorCount;
    this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
  }

  public String fileName() {
    return fileName;
  }

  public long length() {
    return length;
  }

  public int tensorCount() {
    return tensorCount;
  }

  /** The header's {@code __metadata__}, kept so rewritten shards can carry it over. */
  public Map<String, String> metadata() {
    return metadata;
  }
}
