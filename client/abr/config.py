"""`AbrConfig`: every tunable of every ABR algorithm, with its default and where it comes from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AbrConfig:
    """ABR settings; one frozen value shared by all algorithms (each reads its own fields)."""

    # --- bandwidth estimation (estimator.py) ---
    initial_bandwidth_bps: float = 1_000_000.0
    """Estimate before any sample (Shaka's ``defaultBandwidthEstimate``)."""
    ewma_fast_half_life_s: float = 3.0
    """Fast EWMA half-life, in seconds of download time (Sabre/hls.js VoD use 3 s)."""
    ewma_slow_half_life_s: float = 8.0
    """Slow EWMA half-life (Sabre 8 s, hls.js VoD 9 s); the estimate is min(fast, slow)."""

    # --- throughput rule (throughput.py), Sabre's ThroughputRule ---
    throughput_safety: float = 0.9
    """Pick the highest rung whose bitrate fits in safety x estimate."""
    low_buffer_safety_init: float = 0.9
    low_buffer_safety_min: float = 0.5
    """Insufficient-buffer rule: the next segment must arrive within factor x (buffer - latency)."""

    # --- BBA (bba.py), Huang et al. SIGCOMM 2014; values from Pensieve's bb.py ---
    bba_reservoir_s: float = 5.0
    bba_cushion_s: float = 10.0

    # --- BOLA (bola.py), Spiteri et al.; values from Sabre ---
    bola_gamma_p: float = 5.0
    """BOLA basic's gamma*p (Sabre's --gamma-p)."""
    bola_min_buffer_s: float = 10.0
    bola_min_buffer_per_level_s: float = 2.0
    dynamic_switch_buffer_s: float = 10.0
    """DYNAMIC's BOLA <-> throughput switch level."""

    # --- MPC (mpc.py), robust MPC as in Pensieve's test/mpc.py ---
    mpc_horizon: int = 5
    mpc_window: int = 5
    """Harmonic mean over the last `mpc_window` samples, divided by 1 + max past error."""
    rebuffer_penalty: float = 4.3
    """QoE_lin: Mbps of bitrate one second of rebuffering is worth."""
    smooth_penalty: float = 1.0
    """QoE_lin: weight of |bitrate change| in Mbps."""

    # --- the default algorithm (horizon.py) ---
    horizon_max: int = 12
    """Longest planning horizon (segments); it is otherwise half the max buffer's worth."""
    horizon_error_cap: float = 0.5
    """Cap on the relative prediction error that discounts the default's bandwidth prediction
    (at most / 1.5) for completed downloads; an abandoned one counts in full until the next
    download completes (mpc.RobustPredictor)."""
    buffer_target_s: float = 25.0
    """The default's plan values final buffer up to this level (``buffer_value.py``)."""
    buffer_value_weight: float = 1.0
    """A second of final buffer is worth this x the bitrate a second of download buys."""
    buffer_end_fraction: float = 0.5
    """Near the end the target shrinks to this fraction of the playback left after the horizon."""

    # --- abandonment (abandon.py; throughput.py for Sabre's rule) ---
    abandon_grace_s: float = 0.5
    """No abandonment before the download has run this long."""
    abandon_multiplier: float = 1.8
    """Sabre's throughput rule abandons a download that would take > this many segment durations."""
    abandon_margin: float = 0.9
    """A download 'fits' when it ends before margin x the current buffer."""
