"""DYNAMIC (Sabre / dash.js): BOLA when the buffer is comfortable, the throughput rule when low.

Both rules are consulted every time (so their own state advances identically); DYNAMIC switches
to BOLA once the buffer exceeds ``dynamic_switch_buffer_s`` and BOLA asks for at least the
throughput rung, and back to throughput once the buffer is below it and BOLA asks for less.
As in Sabre, the BOLA inside is BOLA basic.
"""
from __future__ import annotations

from .bola import BolaBasic
from .config import AbrConfig
from .snapshot import AbrSnapshot, Decision, DownloadProgress
from .throughput import ThroughputRule


class Dynamic:
    name = "dynamic"

    def __init__(self, cfg: AbrConfig = AbrConfig()) -> None:
        self.cfg = cfg
        self.bola = BolaBasic(cfg)
        self.tput = ThroughputRule(cfg)
        self.is_bola = False

    def decide(self, snap: AbrSnapshot) -> Decision:
        b = self.bola.decide(snap)
        t = self.tput.decide(snap)
        threshold = self.cfg.dynamic_switch_buffer_s
        if self.is_bola:
            if snap.buffer_s < threshold and b.index < t.index:
                self.is_bola = False
        elif snap.buffer_s > threshold and b.index >= t.index:
            self.is_bola = True
        chosen = b if self.is_bola else t
        return Decision(chosen.index, f"dynamic[{'bola' if self.is_bola else 'throughput'}]: {chosen.reason}")

    def abandon(self, progress: DownloadProgress) -> Decision | None:
        """Sabre's DYNAMIC always uses the throughput rule's abandonment."""
        return self.tput.abandon(progress)

