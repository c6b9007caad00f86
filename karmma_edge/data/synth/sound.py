"""Procedural audio: strikes at the verb's rhythm with the timbre of the object's material, in noise.

Class information in the audio: the strike rate (verb, shared by pairs of verbs; on `verb_heard`
clips the second verb of a pair strikes twice in quick succession, which tells the pair apart) and
the material (noun, shared by every shape). Hit timing jitter, pitch, loudness and background noise are nuisances.
"""

from __future__ import annotations

import numpy as np

from karmma_edge.data.synth.plan import Noun, SegmentPlan, Verb, VideoPlan

SAMPLE_RATE = 24000


def strike(material: str, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One impact sound: damped partials whose frequencies and decay are the material's signature."""
    if material == "metal":     # bright, inharmonic, long ring
        f0, ratios, amps, decay = rng.uniform(900, 1300), (1.0, 2.76, 5.40), (1.0, 0.6, 0.4), 0.12
    elif material == "wood":    # low, short knock
        f0, ratios, amps, decay = rng.uniform(180, 260), (1.0, 2.3, 4.1), (1.0, 0.5, 0.2), 0.03
    elif material == "glass":   # high, clear, medium
        f0, ratios, amps, decay = rng.uniform(2500, 3200), (1.0, 2.1), (1.0, 0.5), 0.06
    elif material == "plastic": # dull noisy tap
        f0, ratios, amps, decay = rng.uniform(500, 700), (1.0, 1.6), (0.4, 0.3), 0.015
    else:
        raise ValueError(material)
    n = int(sr * min(0.5, decay * 6))
    t = np.arange(n) / sr
    env = np.exp(-t / decay)
    x = sum(a * np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 2 * np.pi)) for r, a in zip(ratios, amps))
    click = rng.normal(0, 0.6 if material == "plastic" else 0.2, n) * np.exp(-t / 0.004)
    return ((x + click) * env).astype(np.float32)


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Kitchen-like background: low-passed (brownish) plus some white noise, unit RMS."""
    white = rng.normal(0, 1, n)
    brown = np.cumsum(rng.normal(0, 1, n))
    # Remove the random walk's drift (a ~33 ms moving average, by cumulative sums) but keep its rumble.
    c = np.concatenate([[0.0], np.cumsum(brown)])
    k = 801
    idx = np.clip(np.arange(n) - k // 2, 0, n - k) if n > k else np.zeros(n, int)
    brown -= (c[idx + min(k, n)] - c[idx]) / min(k, n)
    x = white * 0.5 + brown / (np.std(brown) + 1e-9)
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def render_audio(video: VideoPlan, verbs: list[Verb], nouns: list[Noun], rng: np.random.Generator,
                 sr: int = SAMPLE_RATE) -> np.ndarray:
    """The whole video's mono track; frame f covers [(f-1)/fps, f/fps) seconds."""
    total = int(round(video.n_frames / video.fps * sr))
    out = _noise(total, rng) * 0.003                        # quiet room tone everywhere
    for seg in video.segments:
        out += _segment(seg, video.fps, verbs[seg.verb], nouns[seg.noun], rng, sr, total)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _segment(seg: SegmentPlan, fps: float, verb: Verb, noun: Noun, rng: np.random.Generator,
             sr: int, total: int) -> np.ndarray:
    a = int(round((seg.start_frame - 1) / fps * sr))
    b = min(total, int(round((seg.start_frame - 1 + seg.frames) / fps * sr)))
    sig = np.zeros(total, np.float32)
    period = 1.0 / (verb.rhythm_hz * rng.uniform(0.92, 1.08))
    t = rng.uniform(0, period)
    double = seg.verb_heard and verb.second_of_pair
    while a + int(t * sr) < b:
        gain = rng.uniform(0.5, 1.0) * 0.25
        for delay, level in ((0.0, 1.0), (0.07, 0.7)) if double else ((0.0, 1.0),):
            s = strike(noun.material, rng, sr) * gain * level
            i = a + int((t + delay) * sr)
            j = min(total, i + s.shape[0])
            if i < j:
                sig[i:j] += s[: j - i]
        t += period * rng.uniform(0.9, 1.1)
    rms = float(np.sqrt(np.mean(sig[a:b] ** 2))) if b > a else 0.0
    noise = np.zeros(total, np.float32)
    if rms > 0:
        noise[a:b] = _noise(b - a, rng) * rms * 10 ** (-seg.snr_db / 20)
    return sig + noise
