package dev.sparkprune.tensorio.shrink;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.StoredTensor;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.Shard;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A source archive rewritten by a {@link ShrinkPlan}: which tensors survive under which name and
 * slice, the new config and shard index, and each shard's bytes. Shards keep their source names
 * and hold the surviving tensors of their source shard in source order (a shard left empty is
 * not written); sliced tensors are copied byte for byte in the source dtype, except those given
 * {@link TensorReplacements} (a repair's refitted weights), which are encoded from floats in the
 * same dtype and shape.
 */
public final class ShrunkArchive {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** Source rows read at once when slicing. */
  private static final int READ_CHUNK_BYTES = 4 << 20;

  private final ModelArchive archive;
  private final ShrinkPlan plan;
  private final Map<String, List<TensorSlice>> slicesByShard;
  private final TensorReplacements replacements;

  public ShrunkArchive(ModelArchive archive, ShrinkPlan plan) {
    this(archive, plan, TensorReplacements.NONE);
  }

  /** Every replaced name must be a surviving tensor of a float dtype the writer encodes. */
  public ShrunkArchive(ModelArchive archive, ShrinkPlan plan, TensorReplacements replacements) {
    this.archive = archive;
    this.plan = plan;
    this.replacements = java.util.Objects.requireNonNull(replacements, "replacements is null");
    TensorRenaming renaming = new TensorRenaming(plan);
    Map<String, List<TensorSlice>> byShard = new LinkedHashMap<>();
    // Stored tensors, so a quantized weight's scales travel with it under the same renaming.
    for (StoredTensor tensor : archive.storedTensors()) {
      renaming.slice(tensor.info()).ifPresent(slice -> byShard.computeIfAbsent(tensor.shard(), key -> new ArrayList<>()).add(slice));
    }
    this.slicesByShard = byShard;
    checkQuantizedSlices(archive, byShard);
    Map<String, TensorSlice> byTarget = new java.util.HashMap<>();
    byShard.values().forEach(slices -> slices.forEach(slice -> byTarget.put(slice.target(), slice)));
    for (String name : replacements.names()) {
      TensorSlice slice = byTarget.get(name);
      ValidationException.check(slice != null, "Cannot replace tensor %s: the shrunk archive has no tensor of that name", name);
      ValidationException.check(
          slice.source().dtype().isFloatEncodable(), "Cannot replace tensor %s: its dtype %s cannot be written from floats", name,
          slice.source().dtype());
    }
  }

  /**
   * A quantized weight survives whole (its scales with it), or an MXFP4 expert tensor loses whole
   * experts from codes and scales alike; anything else would cut through quantization blocks.
   */
  private static void checkQuantizedSlices(ModelArchive archive, Map<String, List<TensorSlice>> byShard) {
    Map<String, TensorSlice> bySource = new LinkedHashMap<>();
    byShard.values().forEach(slices -> slices.forEach(slice -> bySource.put(slice.source().name(), slice)));
    for (ArchiveTensor tensor : archive.tensors()) {
      if (!tensor.isQuantized()) {
        continue;
      }
      TensorSlice data = bySource.get(tensor.data().name());
      TensorSlice scales = bySource.get(tensor.scales().orElseThrow().name());
      ValidationException.check(
          (data == null) == (scales == null),
          "Cannot shrink %s: quantized tensor '%s' would lose its data or its scales but not both", archive.location(), tensor.name());
      if (data == null) {
        continue;
      }
      boolean wholeExperts = tensor.storage() == ArchiveTensor.Storage.MXFP4
          && data.columns().length == 0
          && scales.columns().length == 0
          && java.util.Arrays.equals(data.rows(), scales.rows());
      ValidationException.check(
          data.isWhole() && scales.isWhole() || wholeExperts,
          "Cannot shrink %s: '%s' is stored %s and the plan cuts inside it; sparkprune removes whole quantized tensors "
              + "or whole MXFP4 experts only (dequantize the model to BF16 for structured shrinking)",
          archive.location(), tensor.name(), tensor.storageLabel());
    }
  }

  public TensorReplacements replacements() {
    return replacements;
  }

  public ShrinkPlan plan() {
    return plan;
  }

  /** Output shard file names, in source order; a source shard whose tensors all go is left out. */
  public List<String> shards() {
    return List.copyOf(slicesByShard.keySet());
  }

  public List<TensorSlice> slices(String shard) {
    return slicesByShard.getOrDefault(shard, List.of());
  }

  public long parameters() {
    long total = 0;
    for (List<TensorSlice> slices : slicesByShard.values()) {
      for (TensorSlice slice : slices) {
        total += TensorInfo.numel(slice.shape());
      }
    }
    return total;
  }

  public String configText() {
    return ShrunkConfig.rewrite(archive.config(), plan);
  }

  /** The rebuilt model.safetensors.index.json (sorted weight_map, total_size recomputed), for sharded archives. */
  public String indexText() {
    ObjectNode root = JSON.createObjectNode();
    ObjectNode metadata = root.putObject("metadata");
    archive.indexText().ifPresent(text -> copyIndexMetadata(archive.location(), text, metadata));
    long totalSize = 0;
    Map<String, String> weightMap = new TreeMap<>();
    for (Map.Entry<String, List<TensorSlice>> entry : slicesByShard.entrySet()) {
      for (TensorSlice slice : entry.getValue()) {
        weightMap.put(slice.target(), entry.getKey());
        totalSize += slice.byteLength();
      }
    }
    metadata.put("total_size", totalSize);
    ObjectNode map = root.putObject("weight_map");
    weightMap.forEach(map::put);
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void copyIndexMetadata(String location, String text, ObjectNode metadata) {
    try {
      JsonNode source = JSON.readTree(text).get("metadata");
      if (source != null && source.isObject()) {
        source.properties().forEach(entry -> metadata.set(entry.getKey(), entry.getValue()));
      }
    } catch (JsonProcessingException e) {
      throw new ValidationException("Invalid shard index of " + location + ": " + e.getOriginalMessage());
    }
  }

  /** Writes one output shard (with its source shard's {@code __metadata__}) to {@code out}; closes it. */
  public void writeShard(String shard, OutputStream out) throws IOException {
    List<TensorSlice> slices = slices(shard);
    ValidationException.check(!slices.isEmpty(), "Cannot write shard %s: no tensor of it survives the shrink", shard);
    List<TensorSpec> specs = new ArrayList<>();
    slices.forEach(slice -> specs.add(slice.spec()));
    try (SafetensorsReader reader = archive.openShard(shard);
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, reader.metadata())) {
      OutputStream sink = writer.dataStream();
      for (TensorSlice slice : slices) {
        if (replacements.names().contains(slice.target())) {
          float[] values = replacements.values(slice.target());
          long expected = TensorInfo.numel(slice.shape());
          ValidationException.check(
              values.length == expected, "Cannot replace tensor %s: %d values for shape %s (%d)", slice.target(), values.length,
              java.util.Arrays.toString(slice.shape()), expected);
          writer.writeFloats(values, 0, values.length);
        } else if (slice.isWhole()) {
          reader.copyRaw(slice.source(), sink);
        } else {
          copySlice(reader, slice, sink);
        }
      }
    }
  }

  /** Copies the kept rows (and within them the kept columns) in chunks of consecutive source rows. */
  private static void copySlice(SafetensorsReader reader, TensorSlice slice, OutputStream out) throws IOException {
    TensorInfo source = slice.source();
    int element = source.dtype().byteSize();
    long rowBytes = source.rowLength() * element;
    int[] rows = slice.rows().length > 0 ? slice.rows() : ShrinkPlan.range((int) source.rows());
    int[] columns = slice.columns();
    int chunkRows = (int) Math.max(1, READ_CHUNK_BYTES / Math.max(1, rowBytes));
    byte[] picked = new byte[columns.length * element];
    for (int i = 0; i < rows.length; ) {
      int first = rows[i];
      int count = (int) Math.min(chunkRows, source.rows() - first);
      byte[] chunk = reader.readRawRows(source, first, count);
      for (; i < rows.length && rows[i] < first + count; i++) {
        int offset = (int) ((rows[i] - first) * rowBytes);
        if (columns.length == 0) {
          out.write(chunk, offset, (int) rowBytes);
        } else {
          for (int c = 0; c < columns.length; c++) {
            System.arraycopy(chunk, offset + columns[c] * element, picked, c * element, element);
          }
          out.write(picked, 0, picked.length);
        }
      }
    }
  }

  /**
   * Writes the whole shrunk archive into {@code directory} (one process): shards, config, index,
   * tokenizer and other small files. Weight files of other formats are never copied.
   */
  public void writeTo(FileIO io, String directory) throws IOException {
    for (String shard : shards()) {
      try (OutputStream out = new BufferedOutputStream(io.newOutputFile(io.resolve(directory, shard)).create(), 1 << 20)) {
        writeShard(shard, out);
      }
    }
    for (Map.Entry<String, byte[]> file : smallFiles().entrySet()) {
      try (OutputStream out = io.newOutputFile(io.resolve(directory, file.getKey())).create()) {
        out.write(file.getValue());
      }
    }
  }

  /** Config, index (when sharded) and the source's other non-weight files (tokenizer, generation config), by name. */
  public Map<String, byte[]> smallFiles() throws IOException {
    Map<String, byte[]> files = new LinkedHashMap<>();
    for (String file : archive.otherFiles()) {
      if (!ModelArchive.isWeightFile(file) && !file.equals(ModelArchive.CONFIG)) {
        files.put(file, InputFiles.readAll(archive.io().newInputFile(archive.io().resolve(archive.location(), file)), 256L << 20));
      }
    }
    files.put(ModelArchive.CONFIG, configText().getBytes(StandardCharsets.UTF_8));
    if (archive.isSharded()) {
      files.put(ModelArchive.INDEX, indexText().getBytes(StandardCharsets.UTF_8));
    }
    return files;
  }

  /** Source shard headers, for callers that report what was written. */
  public List<Shard> sourceShards() {
    return archive.shards();
  }
}
