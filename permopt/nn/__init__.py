"""Applying solutions to PyTorch models: inspect, mask, export (with folded permutations), count."""
from .calibrate import recalibrate_bn
from .count import Counts, count
from .export import ExportResult, export, grouped_module
from .inspect import LayerInfo, ModelInfo, inspect
from .mask import BlockMask, apply_masks, is_masked, remove_masks
from .modules import ChannelIndex, GroupedLinear

__all__ = ["recalibrate_bn", "inspect", "LayerInfo", "ModelInfo", "apply_masks", "remove_masks", "is_masked", "BlockMask",
           "export", "ExportResult", "grouped_module", "count", "Counts", "ChannelIndex", "GroupedLinear"]
