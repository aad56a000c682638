package dev.sparkprune.tensorio.archive;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import dev.sparkprune.tensorio.quant.Quantization;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A Hugging Face model directory on any file system: {@code config.json}, either
 * {@code model.safetensors} or {@code model.safetensors.index.json} with its shards, and tokenizer
 * files. Opening reads the config, the index and each shard's header; never tensor data. Its
 * tensors are logical: a quantized weight and its scales are one {@link ArchiveTensor} under the
 * weight's name; {@link #storedTensors()} lists what the headers hold.
 */
public final class ModelArchive {
  public static final String CONFIG = "config.json";
  public static final String SINGLE_SHARD = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";
  public static final List<String> TOKENIZER_FILES =
      List.of(
          "tokenizer.json",
          "tokenizer_config.json",
          "special_tokens_map.json",
          "tokenizer.model",
          "vocab.json",
          "merges.txt",
          "added_tokens.json");

  private static final long MAX_JSON_BYTES = 64L << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  private final FileIO io;
  private final String location;
  private final ModelConfig config;
  private final Quantization quantization;
  private final List<Shard> shards;
  private final List<StoredTensor> storedTensors;
  private final Map<String, StoredTensor> storedByName;
  private final List<ArchiveTensor> tensors;
  private final Map<String, ArchiveTensor> byName;
  private final List<String> otherFiles;
  private final Optional<String> indexText;

  private ModelArchive(
      FileIO io,
      String location,
      ModelConfig config,
      Quantization quantization,
      List<Shard> shards,
      List<StoredTensor> storedTensors,
      List<String> otherFiles,
      Optional<String> indexText) {
    this.io = io;
    this.location = location;
    this.config = config;
    this.quantization = quantization;
    this.shards = List.copyOf(shards);
    this.storedTensors = List.copyOf(storedTensors);
    Map<String, StoredTensor> storedIndex = new LinkedHashMap<>();
    storedTensors.forEach(tensor -> storedIndex.put(tensor.name(), tensor));
    this.storedByName = Collections.unmodifiableMap(storedIndex);
    this.tensors = LogicalTensors.group(quantization, storedTensors, location);
    Map<String, ArchiveTensor> index = new LinkedHashMap<>();
    tensors.forEach(tensor -> index.put(tensor.name(), tensor));
    this.byName = Collections.unmodifiableMap(index);
    this.otherFiles = List.copyOf(otherFiles);
    this.indexText = indexText;
  }

  public static ModelArchive open(FileIO io, String location) throws IOException {
    String directory = location.endsWith("/") ? location.substring(0, location.length() - 1) : location;
    refusePickleFile(directory);
    ValidationException.check(
        !directory.endsWith(".safetensors"),
        "Cannot open model archive %s: give the archive directory (with config.json), not a safetensors file",
        directory);
    List<String> files;
    try {
      files = io.listFiles(directory);
    } catch (FileNotFoundException e) {
      throw new ValidationException("Cannot open model archive " + directory + ": directory not found");
    }
    boolean hasIndex = files.contains(INDEX);
    boolean hasSingle = files.contains(SINGLE_SHARD);
    if (!hasIndex && !hasSingle) {
      List<String> pickles = files.stream().filter(ModelArchive::isPickle).toList();
      ValidationException.check(pickles.isEmpty(), "%s", pickleMessage(directory, pickles));
      throw new ValidationException(
          "Cannot open model archive " + directory + ": no " + SINGLE_SHARD + " or " + INDEX + " (found " + files + ")");
    }
    ValidationException.check(
        files.contains(CONFIG), "Cannot open model archive %s: no %s", directory, CONFIG);
    ModelConfig config = ModelConfig.parse(io.resolve(directory, CONFIG), readText(io, io.resolve(directory, CONFIG)));
    // Checked before any shard is read: an unsupported format fails here, with one line.
    Quantization quantization = Quantization.parse(config.json(), config.location());

    Map<String, List<String>> expectedByShard = new LinkedHashMap<>();
    Optional<String> indexText = Optional.empty();
    if (hasIndex) {
      String text = readText(io, io.resolve(directory, INDEX));
      indexText = Optional.of(text);
      expectedByShard = parseIndex(io.resolve(directory, INDEX), text);
      for (String shard : expectedByShard.keySet()) {
        ValidationException.check(
            files.contains(shard),
            "Cannot open model archive %s: shard '%s' named by %s is missing",
            directory,
            shard,
            INDEX);
      }
    } else {
      expectedByShard.put(SINGLE_SHARD, null);
    }

    List<Shard> shards = new ArrayList<>();
    List<StoredTensor> tensors = new ArrayList<>();
    Map<String, String> seen = new LinkedHashMap<>();
    for (Map.Entry<String, List<String>> entry : expectedByShard.entrySet()) {
      String shardName = entry.getKey();
      try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(io.resolve(directory, shardName)))) {
        for (TensorInfo tensor : reader.tensors()) {
          String previous = seen.putIfAbsent(tensor.name(), shardName);
          ValidationException.check(
              previous == null,
              "Invalid model archive %s: duplicate tensor '%s' in %s and %s",
              directory,
              tensor.name(),
              previous,
              shardName);
          tensors.add(new StoredTensor(tensor, shardName, reader.dataStart()));
        }
        if (entry.getValue() != null) {
          // A tensor the index does not map would be dropped by loaders that go by the index, and by the copied index here.
          Set<String> mapped = new java.util.HashSet<>(entry.getValue());
          for (TensorInfo tensor : reader.tensors()) {
            ValidationException.check(
                mapped.contains(tensor.name()),
                "Invalid model archive %s: shard %s holds tensor '%s', which %s does not map; add it to weight_map",
                directory,
                shardName,
                tensor.name(),
                INDEX);
          }
          for (String name : entry.getValue()) {
            ValidationException.check(
                reader.contains(name),
                "Invalid model archive %s: %s maps tensor '%s' to %s, which does not contain it",
                directory,
                INDEX,
                name,
                shardName);
          }
        }
        shards.add(new Shard(shardName, reader.fileLength(), reader.tensors().size(), reader.metadata()));
      }
    }
    Set<String> dataFiles = new LinkedHashSet<>(expectedByShard.keySet());
    dataFiles.add(INDEX);
    List<String> otherFiles = files.stream().filter(name -> !dataFiles.contains(name)).toList();
    return new ModelArchive(io, directory, config, quantization, shards, tensors, otherFiles, indexText);
  }

  private static Map<String, List<String>> parseIndex(String location, String text) {
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw new ValidationException("Invalid shard index " + location + ": not valid JSON (" + e.getOriginalMessage() + ")");
    }
    JsonNode weightMap = root == null ? null : root.get("weight_map");
    ValidationException.check(
        weightMap != null && weightMap.isObject(), "Invalid shard index %s: no weight_map object", location);
    Map<String, List<String>> byShard = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> entry : weightMap.properties()) {
      JsonNode shard = entry.getValue();
      ValidationException.check(
          shard.isTextual() && isPlainFileName(shard.textValue()),
          "Invalid shard index %s: tensor '%s' maps to %s, not a file name in the archive",
          location,
          entry.getKey(),
          shard);
      byShard.computeIfAbsent(shard.textValue(), key -> new ArrayList<>()).add(entry.getKey());
    }
    ValidationException.check(!byShard.isEmpty(), "Invalid shard index %s: weight_map is empty", location);
    return byShard;
  }

  private static boolean isPlainFileName(String name) {
    return !name.isEmpty() && !name.contains("/") && !name.contains("\\") && !name.equals("..") && !name.equals(".")
        && name.endsWith(".safetensors");
  }

  private static String readText(FileIO io, String location) throws IOException {
    return new String(InputFiles.readAll(io.newInputFile(location), MAX_JSON_BYTES), StandardCharsets.UTF_8);
  }

  /**
   * Whether a file holds weights in some format (pickles, safetensors, TF/Flax/GGUF/ONNX): what
   * must never be copied unchanged next to pruned safetensors.
   */
  public static boolean isWeightFile(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    return isPickle(name)
        || lower.endsWith(".bin")
        || lower.endsWith(".safetensors")
        || lower.endsWith(".h5")
        || lower.endsWith(".msgpack")
        || lower.endsWith(".gguf")
        || lower.endsWith(".onnx")
        || lower.endsWith(".index.json");
  }

  static boolean isPickle(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    return lower.endsWith(".bin") && lower.startsWith("pytorch_model")
        || lower.equals("pytorch_model.bin.index.json")
        || lower.endsWith(".pt")
        || lower.endsWith(".pth")
        || lower.endsWith(".ckpt")
        || lower.endsWith(".pkl");
  }

  private static void refusePickleFile(String location) {
    String name = location.substring(location.lastIndexOf('/') + 1);
    ValidationException.check(!isPickle(name) && !name.endsWith(".bin"), "%s", pickleMessage(location, List.of(name)));
  }

  private static String pickleMessage(String location, List<String> files) {
    return "Cannot open model archive "
        + location
        + ": it holds pickle checkpoints "
        + files
        + " and no safetensors. Pickle files can execute arbitrary code when loaded, so sparkprune never reads them; "
        + "convert the model to safetensors first (in Python: AutoModelForCausalLM.from_pretrained(path)"
        + ".save_pretrained(out, safe_serialization=True)) and point sparkprune at the output directory.";
  }

  public FileIO io() {
    return io;
  }

  public String location() {
    return location;
  }

  public ModelConfig config() {
    return config;
  }

  /** The validated {@code quantization_config}; {@link Quantization#none()} for plain archives. */
  public Quantization quantization() {
    return quantization;
  }

  public boolean isSharded() {
    return indexText.isPresent();
  }

  /** The original index JSON when the archive is sharded. */
  public Optional<String> indexText() {
    return indexText;
  }

  public List<Shard> shards() {
    return shards;
  }

  /** Every logical tensor, shard by shard, in the file order of its data. */
  public List<ArchiveTensor> tensors() {
    return tensors;
  }

  /** Every tensor as the headers store it (quantized weights and their scales apart), in file order. */
  public List<StoredTensor> storedTensors() {
    return storedTensors;
  }

  public Optional<StoredTensor> findStoredTensor(String name) {
    return Optional.ofNullable(storedByName.get(name));
  }

  /** Logical names, shapes and data dtypes, as architectures check them. */
  public Map<String, TensorInfo> tensorInfos() {
    Map<String, TensorInfo> infos = new LinkedHashMap<>();
    tensors.forEach(tensor -> infos.put(tensor.name(), tensor.info()));
    return infos;
  }

  public Optional<ArchiveTensor> findTensor(String name) {
    return Optional.ofNullable(byName.get(name));
  }

  public ArchiveTensor tensor(String name) {
    ArchiveTensor tensor = byName.get(name);
    ValidationException.check(tensor != null, "Cannot find tensor '%s' in model archive %s", name, location);
    return tensor;
  }

  /** Files other than config-independent weights: config, tokenizer, generation config, README. */
  public List<String> otherFiles() {
    return otherFiles;
  }

  public List<String> tokenizerFiles() {
    return otherFiles.stream().filter(TOKENIZER_FILES::contains).toList();
  }

  public String shardLocation(String shard) {
    return io.resolve(location, shard);
  }

  /** Opens a shard for positioned reads; the caller closes it. */
  public SafetensorsReader openShard(String shard) throws IOException {
    return SafetensorsReader.open(io.newInputFile(shardLocation(shard)));
  }

  /** Logical parameters: an MXFP4 tensor counts its values, not its packed bytes. */
  public long totalParameters() {
    return tensors.stream().mapToLong(ArchiveTensor::numel).sum();
  }
}
