"""Procedural egocentric frames: a kitchen counter seen from the head, an arm moving an object.

Class information in the pixels: the object's shape (noun), its motion (verb), and on some clips its
material (noun): a surface texture (`material_seen`) or the vigour of the handling (`material_moves`,
which flow sees too). Colour, size, position, background, skin tone and head motion are random
nuisances.
"""

from __future__ import annotations

import cv2
import numpy as np

from karmma_edge.data.synth.plan import PALETTE, Noun, SegmentPlan, Verb, VideoPlan
from karmma_edge.data.synth.presets import MATERIAL_VIGOR

_SHIFT = 4                      # cv2 sub-pixel drawing: coordinates carry 4 fractional bits
_ONE = 1 << _SHIFT


def _pts(xy: np.ndarray) -> np.ndarray:
    return np.rint(xy * _ONE).astype(np.int32).reshape(-1, 1, 2)


def shape_outline(shape: str) -> np.ndarray:
    """Unit-size outline, centred at 0; every shape has a marked 'front' so rotation is visible."""
    if shape == "disc":
        a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if shape == "box":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.85
    if shape == "wedge":
        a = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6])
        return np.stack([np.cos(a), np.sin(a)], 1) * 1.15
    if shape == "bar":
        return np.array([[-1.3, -0.45], [1.3, -0.45], [1.3, 0.45], [-1.3, 0.45]], float)
    raise ValueError(shape)


def background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A counter top (lower part) below cupboards/wall (upper part), with some clutter; RGB uint8."""
    img = np.empty((h, w, 3), np.float32)
    counter = rng.uniform(90, 200, 3)
    wall = rng.uniform(120, 230, 3)
    horizon = int(h * rng.uniform(0.25, 0.4))
    img[:horizon] = wall
    img[horizon:] = counter
    # Wood-grain-like streaks on the counter and a soft vertical light gradient.
    streaks = rng.normal(0, 1, (1, w)).repeat(h, 0)
    streaks = cv2.GaussianBlur(streaks.astype(np.float32), (0, 0), 2.0)
    img[horizon:] += (streaks[horizon:, :, None] * 10.0)
    img *= np.linspace(1.1, 0.85, h, dtype=np.float32)[:, None, None]
    for _ in range(int(rng.integers(2, 5))):   # cupboard doors and tiles, on the wall only
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, max(1, horizon - 6)))
        x1, y1 = x0 + int(rng.integers(6, w // 3)), min(horizon - 1, y0 + int(rng.integers(4, max(5, horizon))))
        cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(c) for c in rng.uniform(40, 240, 3)), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def motion(kind: str, tau: float, amp: float, phase: float, vigour: float = 1.0) -> tuple[float, float, float, float]:
    """(dx, dy, angle, scale) of the object at normalised time tau in [0, 1] for a verb's motion;
    `vigour` scales how far it moves, turns and grows."""
    s = np.sin
    amp = amp * vigour
    if kind == "up":        # take: lift towards the viewer
        return 0.0, amp * (0.5 - tau), 0.0, 1.0 + vigour * 0.25 * (tau - 0.4)
    if kind == "down":      # put: set down, away from the viewer
        return 0.0, amp * (tau - 0.5), 0.0, 1.0 + vigour * 0.25 * (0.6 - tau)
    if kind == "rot_cw":    # open: twist clockwise
        return 0.0, 0.0, vigour * 0.8 * np.pi * tau, 1.0
    if kind == "rot_ccw":   # close: twist anticlockwise
        return 0.0, 0.0, -vigour * 0.8 * np.pi * tau, 1.0
    if kind == "shake_x":   # wash: scrub side to side
        return 0.45 * amp * s(2 * np.pi * 2.5 * tau + phase), 0.0, 0.0, 1.0
    if kind == "circle":    # mix: stir in circles
        a = 2 * np.pi * 1.5 * tau + phase
        return 0.35 * amp * np.cos(a), 0.35 * amp * s(a), 0.0, 1.0
    if kind == "shake_y":   # cut: chop up and down
        return 0.0, 0.3 * amp * s(2 * np.pi * 3.0 * tau + phase), 0.0, 1.0
    if kind == "tilt":      # pour: tip over and move aside
        return 0.4 * amp * tau, 0.0, vigour * 0.5 * np.pi * min(1.0, 2 * tau), 1.0
    raise ValueError(kind)


class VideoRenderer:
    """Renders one video frame by frame; the camera sees a window of a larger canvas."""

    def __init__(self, video: VideoPlan, nouns: list[Noun], verbs: list[Verb], w: int, h: int,
                 rng: np.random.Generator) -> None:
        self.video, self.nouns, self.verbs, self.w, self.h, self.rng = video, nouns, verbs, w, h, rng
        self.margin = max(4, w // 8)
        self.bg = background(rng, w + 2 * self.margin, h + 2 * self.margin)
        self.skin = tuple(float(c) for c in rng.uniform([150, 100, 80], [235, 185, 150]))
        self.head_phase = rng.uniform(0, 2 * np.pi, 2)
        noise = rng.normal(0, 2.0, (8, h, w, 3))
        self.noise_pos = np.clip(np.rint(noise), 0, 255).astype(np.uint8)
        self.noise_neg = np.clip(np.rint(-noise), 0, 255).astype(np.uint8)
        self.by_frame: dict[int, tuple[SegmentPlan, dict]] = {}
        for seg in video.segments:
            params = {  # per-clip nuisances
                "cx": w / 2 + rng.uniform(-0.1, 0.1) * w, "cy": h * 0.58 + rng.uniform(-0.08, 0.08) * h,
                "size": w * rng.uniform(0.17, 0.21), "amp": w * 0.33 * rng.uniform(0.92, 1.08),
                "phase": rng.uniform(0, 2 * np.pi), "angle0": rng.uniform(-0.3, 0.3),
                "occ": (rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(-1, 1)),
            }
            for k in range(seg.frames):
                self.by_frame[seg.start_frame + k] = (seg, params)

    def frame(self, f: int) -> np.ndarray:
        """RGB uint8 [h, w, 3] of frame f (1-indexed)."""
        rng, m, w, h = self.rng, self.margin, self.w, self.h
        canvas = self.bg.copy()
        # Head motion: a slow sway on every frame, as egocentric video never stands still.
        t = f / self.video.fps
        off = 0.35 * m * np.sin(2 * np.pi * 0.3 * t + self.head_phase)
        seg_params = self.by_frame.get(f)
        if seg_params is not None:
            seg, prm = seg_params
            tau = (f - seg.start_frame) / max(1, seg.frames - 1)
            self._draw_object(canvas, seg, prm, tau)
            if seg.degradation == "shake":
                off = off + rng.normal(0, 0.5 * m * seg.strength, 2)
        ox, oy = (np.clip(np.rint(off), -m, m) + m).astype(int)
        img = canvas[oy:oy + h, ox:ox + w]
        if seg_params is not None and seg_params[0].degradation != "none":
            img = self._degrade(img, seg_params[0], seg_params[1], f)
        # Sensor noise from a per-video bank: fresh Gaussian noise per frame costs more than the
        # rest of the frame; saturating uint8 add/subtract is the cheapest exact way to apply it.
        k = int(rng.integers(len(self.noise_pos)))
        return cv2.subtract(cv2.add(img, self.noise_pos[k]), self.noise_neg[k])

    def _draw_object(self, canvas: np.ndarray, seg: SegmentPlan, prm: dict, tau: float) -> None:
        m = self.margin
        noun = self.nouns[seg.noun]
        vigour = MATERIAL_VIGOR[noun.material] if seg.material_moves else 1.0
        dx, dy, ang, scale = motion(self.verbs[seg.verb].motion, tau, prm["amp"], prm["phase"], vigour)
        cx, cy = prm["cx"] + dx + m, prm["cy"] + dy + m
        ang += prm["angle0"]
        r = prm["size"] * scale
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        outline = shape_outline(noun.shape) @ rot.T * r + (cx, cy)
        # The arm reaches in from the bottom right, as a right hand seen from the head.
        base = (m + self.w * 0.9, m + self.h * 1.05)
        cv2.line(canvas, tuple(_pts(np.array(base))[0, 0]), tuple(_pts(np.array([cx + 0.6 * r, cy + 0.6 * r]))[0, 0]),
                 self.skin, max(2, int(self.w * 0.11)), cv2.LINE_AA, _SHIFT)
        colour = tuple(float(c) for c in PALETTE[seg.colour])
        behind = canvas.copy() if seg.material_seen and noun.material == "glass" else None
        cv2.fillPoly(canvas, [_pts(outline)], colour, cv2.LINE_AA, _SHIFT)
        if seg.material_seen:
            _texture(canvas, outline, noun.material, np.array([cx, cy]), rot, r, colour, behind)
        # A dark rim, as real objects show an edge whatever their colour: the shape reads clearly.
        cv2.polylines(canvas, [_pts(outline)], True, (25.0, 25.0, 25.0), max(1, int(r * 0.12)), cv2.LINE_AA, _SHIFT)
        # A dark marker from the centre to the front makes rotation visible on every shape.
        front = np.array([cx, cy]) + rot @ np.array([0.8 * r, 0.0])
        cv2.line(canvas, tuple(_pts(np.array([cx, cy]))[0, 0]), tuple(_pts(front)[0, 0]),
                 tuple(0.35 * c for c in colour), max(1, int(r * 0.25)), cv2.LINE_AA, _SHIFT)
        thumb = np.array([cx + 0.7 * r, cy + 0.6 * r])
        cv2.ellipse(canvas, tuple(_pts(thumb)[0, 0]), (int(0.28 * r * _ONE), int(0.18 * r * _ONE)),
                    float(np.degrees(ang)), 0, 360, self.skin, -1, cv2.LINE_AA, _SHIFT)

    def _degrade(self, img: np.ndarray, seg: SegmentPlan, prm: dict, f: int) -> np.ndarray:
        """uint8 in, uint8 out: one sensor degradation at the clip's strength."""
        s, w, h = seg.strength, self.w, self.h
        if seg.degradation == "blur":
            return cv2.GaussianBlur(img, (0, 0), 0.3 + 3.0 * s * w / 96)
        if seg.degradation == "low_light":
            dark = img.astype(np.float32) * (1.0 - 0.85 * s)
            dark += self.rng.normal(0, 2 + 8 * s, img.shape).astype(np.float32)   # shot noise
            return np.clip(dark, 0, 255).astype(np.uint8)
        if seg.degradation == "occlusion":
            # Something passes in front of the camera: a dark block covering up to ~half the view.
            ux, uy, drift = prm["occ"]
            bw, bh = int(w * (0.3 + 0.4 * s)), int(h * (0.3 + 0.4 * s))
            x0 = int((ux * (w - bw) + drift * (f - seg.start_frame)) % max(1, w - bw))
            y0 = int(uy * (h - bh))
            img = img.copy()
            img[y0:y0 + bh, x0:x0 + bw] = (img[y0:y0 + bh, x0:x0 + bw] * 0.15 + 20).astype(np.uint8)
        return img   # "shake" acts on the camera offset, in frame()


def _texture(canvas: np.ndarray, outline: np.ndarray, material: str, centre: np.ndarray, rot: np.ndarray,
             r: float, colour: tuple[float, ...], behind: np.ndarray | None) -> None:
    """The material on the object's surface, coarse enough to survive 48 px frames and JPEG: metal a
    bright specular band, wood dark grain along the object, glass the background showing through,
    plastic bright spots. Drawn inside the outline only."""
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_pts(outline)], 255, cv2.LINE_AA, _SHIFT)
    layer = canvas.copy()
    thick = max(1, int(round(0.3 * r)))

    def line(a: np.ndarray, b: np.ndarray, c, t: int) -> None:
        p, q = _pts(centre + rot @ a * r)[0, 0], _pts(centre + rot @ b * r)[0, 0]
        cv2.line(layer, tuple(p), tuple(q), c, t, cv2.LINE_AA, _SHIFT)

    if material == "metal":
        line(np.array([-1.4, -0.9]), np.array([1.4, 0.9]), (250.0, 250.0, 250.0), thick)
    elif material == "wood":
        dark = tuple(0.45 * c for c in colour)
        for off in (-0.5, 0.5):
            line(np.array([-1.5, off]), np.array([1.5, off]), dark, max(1, int(round(0.22 * r))))
    elif material == "glass":
        layer = cv2.addWeighted(layer, 0.3, behind, 0.7, 0.0)
    elif material == "plastic":
        for spot in ((-0.45, -0.35), (0.45, 0.35)):
            p = _pts(centre + rot @ np.array(spot) * r)[0, 0]
            cv2.circle(layer, tuple(p), int(0.22 * r * _ONE), (245.0, 245.0, 245.0), -1, cv2.LINE_AA, _SHIFT)
    else:
        raise ValueError(material)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    canvas[:] = np.rint(canvas * (1 - alpha) + layer * alpha).astype(np.uint8)
