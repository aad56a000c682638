package dev.sparkprune.scoring.repair;

import dev.sparkprune.tensorio.shrink.KeptBlock;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * What the repair does at one kept block, a pure function of the plan and the settings (one
 * rule for {@link SequentialRepair} and for a distributed job):
 *
 * @param block the block's index in the shrunk model
 * @param source its index in the source model
 * @param targetBlock the target is the dense stream at the input of this source block (the
 *     dense model run through source blocks {@code 0 .. targetBlock - 1}): {@code source + 1},
 *     or the next kept block where this block takes a dropped run's change
 * @param refitAttention whether o_proj is refitted (first)
 * @param refitMlp whether down_proj is refitted (second, on the block with its new o_proj)
 * @param map whether the down_proj refit is ReplaceMe's folded map rather than all columns
 * @param local whether the down_proj refit's target is the dense MLP on the same MLP input
 */
public record RepairStep(int block, int source, int targetBlock, boolean refitAttention, boolean refitMlp, boolean map, boolean local)
    implements Serializable {
  /** Whether anything at this block is refitted. */
  public boolean refits() {
    return refitAttention || refitMlp;
  }

  /** One step per kept block, in order. */
  public static List<RepairStep> plan(ShrinkPlan plan, RepairSettings settings) {
    ModelShape shape = plan.source();
    List<KeptBlock> kept = plan.blocks();
    boolean preceding = settings.depth() != RepairSettings.DepthFit.NEXT;
    boolean next = settings.depth() == RepairSettings.DepthFit.NEXT || settings.depth() == RepairSettings.DepthFit.BOTH;
    boolean all = settings.scope() == RepairSettings.Scope.ALL;
    List<RepairStep> steps = new ArrayList<>();
    for (int i = 0; i < kept.size(); i++) {
      KeptBlock block = kept.get(i);
      int source = block.source();
      int nextKept = i + 1 < kept.size() ? kept.get(i + 1).source() : shape.blocks();
      int previous = i > 0 ? kept.get(i - 1).source() : -1;
      boolean precedesDrop = nextKept > source + 1;
      boolean takesDepth = (preceding && precedesDrop) || (next && source > previous + 1);
      boolean dense = !shape.isSparse(source);
      boolean headsCut = block.kvGroups().length < shape.kvHeads();
      boolean channelsCut = dense && block.mlpChannels().length < shape.intermediate();
      boolean refitMlp = dense && (all || channelsCut || takesDepth);
      // A sparse block takes a dropped run's change in its o_proj (its experts' down_projs are not refitted).
      boolean refitAttention = all || headsCut || (takesDepth && !dense);
      steps.add(new RepairStep(
          i, source, precedesDrop && preceding ? nextKept : source + 1, refitAttention, refitMlp,
          refitMlp && takesDepth && precedesDrop && settings.depth() == RepairSettings.DepthFit.PRECEDING_MAP,
          refitMlp && !takesDepth && settings.target() == RepairSettings.Target.LOCAL));
    }
    return steps;
  }
}
