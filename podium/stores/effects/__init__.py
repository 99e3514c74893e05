"""The effect ledger: side-effect tool calls run at most once per logical call."""

from podium.stores.effects.keys import Effect, EffectKey, InDoubt, Recorded, Started
from podium.stores.effects.store import EffectLedger

__all__ = ["Effect", "EffectKey", "EffectLedger", "InDoubt", "Recorded", "Started"]
