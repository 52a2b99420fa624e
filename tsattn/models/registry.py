"""The networks tsattn can save and load, by name.

A model bundle names its network with one of these keys, never with an import path: loading a bundle looks
the name up here and nowhere else, so a bundle can only ever build one of these classes.
"""

from __future__ import annotations

from torch import nn

from tsattn.errors import TsattnError
from tsattn.models.attention_seq2seq import AttentionSeq2Seq
from tsattn.models.baselines import DLinear, LastValue, RLinear, SeasonalNaive
from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
from tsattn.models.segrnn import SegRNN
from tsattn.models.transformer import TransformerForecaster

# Keys match the model config names (conf/model/<name>.yaml).
NETWORKS: dict[str, type[nn.Module]] = {
    "lstm_seq2seq": LSTMSeq2Seq,
    "attention_seq2seq": AttentionSeq2Seq,
    "transformer": TransformerForecaster,
    "linear": DLinear,
    "rlinear": RLinear,
    "segrnn": SegRNN,
    "last_value": LastValue,
    "seasonal_naive": SeasonalNaive,
}


def network_class(name: object) -> type[nn.Module]:
    """The class registered under `name`; anything else is a TsattnError (nothing is imported)."""
    if isinstance(name, str) and name in NETWORKS:
        return NETWORKS[name]
    raise TsattnError(f"unknown network {str(name)[:80]!r}; a tsattn model is one of: {', '.join(NETWORKS)}")


def network_name(net: nn.Module | type[nn.Module]) -> str:
    """The registry key of a network (or its class), compared by identity: subclasses are not registered."""
    cls = net if isinstance(net, type) else type(net)
    for name, registered in NETWORKS.items():
        if registered is cls:
            return name
    raise TsattnError(
        f"{cls.__module__}.{cls.__qualname__} is not one of tsattn's networks ({', '.join(NETWORKS)}); "
        "only those can be saved as a model bundle"
    )
