package dev.sparkprune.tools;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes {@code bench forward}'s generated Llama (hidden 1024, 8 blocks, 16 heads, 4 KV heads,
 * MLP 2816, vocab 32000, BF16) with a byte-level tokenizer, so the shrink CLI can run on it and
 * {@code bench forward --model} can compare the two. Not a test: {@code java -cp ... GenerateBenchModel DIR}.
 */
public final class GenerateBenchModel {
  private GenerateBenchModel() {}

  public static void main(String[] args) throws Exception {
    Path directory = Path.of(args[0]);
    Files.createDirectories(directory);
    LocalFileIO io = new LocalFileIO();
    SyntheticArchive.builder(SyntheticArchive.llamaConfig(1024, 8, 16, 4, 2816, 32000)).dtype(DType.BF16).seed(1).build()
        .write(io, directory.toString());
    SyntheticArchive.writeByteLevelTokenizer(io, directory.toString());
  }
}
