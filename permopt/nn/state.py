"""Loading a state dict into a model, with every problem named: an unreadable file, something
that is not a state dict, missing or unexpected keys, mismatched shapes."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def load_state(model: nn.Module, state: dict | str | Path, what: str, target: str = "the model") -> None:
    """Load ``state`` (a state dict, or the path of one saved with ``torch.save``, read with
    ``weights_only``) into ``model`` strictly. Errors are ValueErrors starting with ``what`` (the
    argument or file, as the caller names it) and saying it does not fit ``target``."""
    if not isinstance(state, dict):
        try:
            state = torch.load(state, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ValueError(f"{what}: no such file") from None
        except Exception as e:  # torch raises many kinds on a corrupt or foreign file
            raise ValueError(f"{what} is not a readable state dict ({type(e).__name__}: {e})") from None
        if not isinstance(state, dict):
            raise ValueError(f"{what} holds a {type(state).__name__}, not a state dict (save model.state_dict())")
    own = set(model.state_dict())
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise ValueError(f"{what} does not fit {target}: missing keys {missing}, unexpected keys {unexpected}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # shapes: torch lists each mismatch on its own line
        raise ValueError(f"{what} does not fit {target}: "
                         + "; ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip())) from None
