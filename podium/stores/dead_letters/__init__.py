"""Dead letters: tasks that failed for good, with what is needed to replay them."""

from podium.stores.dead_letters.letters import Attempt, DeadLetter
from podium.stores.dead_letters.store import DeadLetters

__all__ = ["Attempt", "DeadLetter", "DeadLetters"]
