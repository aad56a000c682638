package dev.sparkprune.jobs.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/** The in-process evaluation stage of the run plan (eval --text), against sizes from stories260K's config.json. */
class TestRunPlan {
  @Test
  void anEvaluationIsRefusedWhenItsLargestBlockAndBatchPassTheHeap() throws IOException {
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
    // config.json: hidden 64, MLP 172, 8 heads of 8 (4 KV heads), vocab 512; every block the same.
    long hidden = 64;
    long intermediate = 172;
    long kv = 4 * 8;
    long vocab = 512;
    long blockBytes = 4 * (2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate);
    // 2 windows of 16 tokens: states in and out, the widest activation (the MLP's 172), the logits; the head as float.
    long batchBytes = 4 * 32 * (2 * hidden + intermediate + vocab) + 4 * vocab * hidden;
    RunPlan.Evaluation stage = RunPlan.evaluation(archive, Architectures.layout(archive), 2, 16);
    assertThat(stage.blockBytes()).isEqualTo(blockBytes);
    assertThat(stage.batchBytes()).isEqualTo(batchBytes);
    long needed = blockBytes + batchBytes;
    RunPlan.evaluate("Cannot evaluate m", new ExecutorShape(needed, 1), stage).checkFits();
    assertThatThrownBy(() -> RunPlan.evaluate("Cannot evaluate m", new ExecutorShape(needed - 1, 1, 1, "SPARKPRUNE_HEAP", "this JVM"), stage)
            .checkFits())
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot evaluate m: block 0 needs about " + MemoryPlan.gib(needed) + " in this JVM (" + MemoryPlan.gib(blockBytes)
            + " as float + " + MemoryPlan.gib(batchBytes) + " of a batch's activations and logits for --batch 2 x --seqlen 16), more than"
            + " its heap of " + MemoryPlan.gib(needed - 1) + " (this JVM); raise SPARKPRUNE_HEAP or lower --batch or --seqlen");
  }
}
