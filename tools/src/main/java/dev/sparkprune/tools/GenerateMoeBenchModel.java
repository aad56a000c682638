package dev.sparkprune.tools;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes a generated Qwen3-MoE archive (BF16, seed 1) with a byte-level tokenizer for the
 * expert-parallel benchmark: {@code java -cp ... GenerateMoeBenchModel DIR [LAYERS [EXPERTS [HIDDEN [MOE_INTERMEDIATE]]]]},
 * by default 4 blocks of 256 experts of 3 x 512 x 512 (805 MB of experts per block as float),
 * hidden 512, 8 heads of 64 (4 KV heads), top-8, vocab 512. Not a test.
 */
public final class GenerateMoeBenchModel {
  private GenerateMoeBenchModel() {}

  public static void main(String[] args) throws Exception {
    Path directory = Path.of(args[0]);
    int layers = args.length > 1 ? Integer.parseInt(args[1]) : 4;
    int experts = args.length > 2 ? Integer.parseInt(args[2]) : 256;
    int hidden = args.length > 3 ? Integer.parseInt(args[3]) : 512;
    int intermediate = args.length > 4 ? Integer.parseInt(args[4]) : 512;
    Files.createDirectories(directory);
    LocalFileIO io = new LocalFileIO();
    SyntheticArchive.builder(SyntheticArchive.qwen3MoeConfig(hidden, layers, 8, 4, hidden / 8, experts, 8, intermediate, 512))
        .dtype(DType.BF16).seed(1).build().write(io, directory.toString());
    SyntheticArchive.writeByteLevelTokenizer(io, directory.toString());
  }
}
