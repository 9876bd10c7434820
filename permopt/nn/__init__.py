"""Everything that touches PyTorch: inspect a model, its search space, mask, export (with folded
permutations), count, measure latency, re-estimate BatchNorm, distil the dense model into the pruned one."""
from .batchnorm import recalibrate_bn
from .distill import distill
from .count import Counts, count
from .export import ExportResult, export, grouped_module
from .inspect import LayerInfo, ModelInfo, inspect
from .mask import BlockMask, apply_masks, is_masked, remove_masks
from .latency import LatencySetup, LatencyTable
from .modules import ChannelIndex, GroupedLinear
from .model_space import layer_scores, search_space

__all__ = ["recalibrate_bn", "distill", "inspect", "LayerInfo", "ModelInfo", "apply_masks", "remove_masks", "is_masked", "BlockMask",
           "export", "ExportResult", "grouped_module", "count", "Counts", "ChannelIndex", "GroupedLinear",
           "LatencySetup", "LatencyTable", "search_space", "layer_scores"]
