"""Procedural synthetic street scenes with exact Cityscapes labels: the renderer behind the built-in demo data.

Every scene is rendered from a seed with a pinhole camera looking down a street: sky, buildings with window
grids, trees, terrain, sidewalks, a road with lane markings, poles with signs and traffic lights, cars and
pedestrians. Each scene gives exact Cityscapes ``labelIds``, ``instanceIds`` (``id * 1000 + k`` for cars and
persons) and a photo. The photo depends on the labels (class-conditional colours and textures) but also on
random per-scene and per-object appearance (facade and car colours, clothing, lighting, shadows), so
labels -> photo is learnable but one-to-many, as for real street photos. :mod:`src.dataset.demo` writes the
scenes as a Cityscapes tree.
"""

import functools
import math

import cv2
import numpy as np

from src.errors import UserError

# Cityscapes label ids used by the renderer.
EGO_VEHICLE, ROAD, SIDEWALK, BUILDING, WALL, FENCE = 1, 7, 8, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR = 17, 19, 20, 21, 22, 23, 24, 26

SCENE_LABEL_IDS = (EGO_VEHICLE, ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN)
SCENE_LABEL_IDS += (VEGETATION, TERRAIN, SKY, PERSON, CAR)
"""Every label id that :func:`render_scene` can produce."""

MIN_HEIGHT, MIN_WIDTH = 16, 16

_FACADE_COLORS = np.array(
    [
        (226, 212, 184), (200, 180, 150), (150, 78, 58), (152, 150, 146), (98, 96, 100), (228, 226, 218),
        (210, 172, 96), (214, 180, 168), (168, 178, 190), (122, 92, 72), (186, 120, 86), (236, 220, 160),
    ],
    dtype=np.float32,
)  # fmt: skip
_CAR_COLORS = np.array(
    [
        (228, 228, 228), (24, 24, 28), (172, 174, 178), (104, 106, 112), (158, 24, 26), (30, 52, 124),
        (20, 30, 62), (40, 82, 52), (190, 176, 140), (222, 182, 40), (112, 22, 30), (70, 110, 150),
    ],
    dtype=np.float32,
)  # fmt: skip
_CAR_COLOR_WEIGHTS = np.array([5, 5, 5, 4, 2, 2, 2, 1, 1, 0.5, 1, 1], dtype=np.float64)
_CLOTHES_COLORS = np.array(
    [
        (30, 30, 34), (60, 62, 70), (200, 200, 196), (40, 50, 90), (120, 30, 30), (90, 110, 60),
        (160, 130, 90), (30, 70, 120), (180, 60, 90), (230, 200, 80), (80, 60, 50), (130, 140, 150),
    ],
    dtype=np.float32,
)  # fmt: skip
_SKIN_COLORS = np.array([(236, 196, 170), (210, 160, 120), (160, 110, 80), (100, 66, 46)], dtype=np.float32)


class _Scene:
    """Canvas (label, instance, photo, depth) plus the camera and scene-wide appearance of one scene."""

    def __init__(self, rng, height, width):
        self.rng = rng
        self.h, self.w = height, width
        self.label = np.full((height, width), SKY, dtype=np.uint8)
        self.inst = np.full((height, width), SKY, dtype=np.int32)
        self.photo = np.zeros((height, width, 3), dtype=np.float32)
        self.depth = np.zeros((height, width), dtype=np.float32)  # metres; 0 for sky (no haze)
        self.counters = {}
        # Camera: horizon row, vanishing column, focal length (pixels), camera height (metres).
        self.y_h = height * rng.uniform(0.38, 0.47)
        self.x_v = width * rng.uniform(0.42, 0.58)
        self.f = width * rng.uniform(0.8, 1.1)
        self.hc = rng.uniform(1.25, 1.6)
        self.znear = 0.8
        # Texture fields shared by every surface.
        self.fine = rng.standard_normal((height, width), dtype=np.float32)
        self.low = _smooth_noise(rng, height, width, max(2, width // 24))
        self.mid = _smooth_noise(rng, height, width, max(2, width // 96))
        # Lighting.
        self.sunny = rng.random() < 0.6
        self.sun_left = rng.random() < 0.5  # sun from the left: right-hand facades are lit
        self.gain = rng.uniform(0.8, 1.15)
        self.tint = np.array([rng.uniform(0.93, 1.07), 1.0, rng.uniform(0.93, 1.07)], dtype=np.float32)

    # ---------------------------------------------------------------- projection
    def px(self, x_m, z):
        return self.x_v + self.f * x_m / z

    def py(self, y_m, z):
        return self.y_h + self.f * (self.hc - y_m) / z

    def next_instance(self, label_id):
        k = self.counters.get(label_id, 0)
        self.counters[label_id] = k + 1
        return label_id * 1000 + k

    def paint(self, ys, xs, mask, label_id, inst_id, color, depth):
        """Write ``label_id`` / ``inst_id`` / ``color`` / ``depth`` where ``mask`` is set inside ``[ys, xs]``."""
        shape = (ys.stop - ys.start, xs.stop - xs.start)
        rr, cc = np.nonzero(np.broadcast_to(mask, shape))
        if not rr.size:
            return
        ry, cx = rr + ys.start, cc + xs.start
        self.label[ry, cx] = label_id
        self.inst[ry, cx] = inst_id
        color = np.asarray(color, dtype=np.float32)
        self.photo[ry, cx] = np.broadcast_to(color, shape + (3,))[rr, cc] if color.ndim == 3 else color
        depth = np.asarray(depth, dtype=np.float32)
        self.depth[ry, cx] = np.broadcast_to(depth, shape)[rr, cc] if depth.ndim else depth

    # ---------------------------------------------------------------- primitives
    def frontal(self, x0, x1, y0, y1, z):
        """Rectangle ``x0..x1`` x ``y0..y1`` (metres; y up from the ground) facing the camera at depth ``z``.

        Returns ``(ys, xs, u, v)`` with ``u`` (1 x w) running 0->1 from ``x0`` to ``x1`` and ``v`` (h x 1) 0->1
        from ``y0`` (bottom) to ``y1`` (top), or None when off-screen. Objects thinner than a pixel are widened
        to one pixel so that poles and distant people never vanish.
        """
        if z < self.znear:
            return None
        xa, xb = self.px(x0, z), self.px(x1, z)
        yt, yb = self.py(y1, z), self.py(y0, z)
        if xb - xa < 1.0:
            c = 0.5 * (xa + xb)
            xa, xb = c - 0.5, c + 0.5
        if yb - yt < 1.0:
            c = 0.5 * (yt + yb)
            yt, yb = c - 0.5, c + 0.5
        ix0, ix1 = max(0, math.ceil(xa - 0.5)), min(self.w, math.ceil(xb - 0.5))
        iy0, iy1 = max(0, math.ceil(yt - 0.5)), min(self.h, math.ceil(yb - 0.5))
        if ix0 >= ix1 or iy0 >= iy1:
            return None
        u = ((np.arange(ix0, ix1, dtype=np.float32) + 0.5 - xa) / (xb - xa))[None, :]
        v = ((yb - np.arange(iy0, iy1, dtype=np.float32) - 0.5) / (yb - yt))[:, None]
        return slice(iy0, iy1), slice(ix0, ix1), u, v

    def side(self, x_m, z0, z1, y0, y1):
        """Vertical plane ``x = x_m`` along the street from depth ``z0`` to ``z1``, heights ``y0..y1`` (metres).

        Returns ``(ys, xs, s, v, z)``: ``s`` (1 x w) runs 0->1 from ``z0`` to ``z1``, ``v`` (h x w) 0->1 from
        ``y0`` to ``y1``, ``z`` (1 x w) is the depth of each column; None when off-screen.
        """
        z0 = max(z0, self.znear)
        if z1 <= z0 or abs(x_m) < 1e-3:
            return None
        xa, xb = sorted((self.px(x_m, z0), self.px(x_m, z1)))
        ix0, ix1 = max(0, math.ceil(xa - 0.5)), min(self.w, math.ceil(xb - 0.5))
        if ix0 >= ix1:
            return None
        dx = np.arange(ix0, ix1, dtype=np.float32) + 0.5 - self.x_v
        dx = np.where(dx * x_m > 0, dx, np.float32(math.copysign(1e-3, x_m)))
        z = np.clip(self.f * x_m / dx, z0, z1)
        top = self.py(y1, z).min()
        bottom = self.py(y0, z).max()
        iy0, iy1 = max(0, math.ceil(top - 0.5)), min(self.h, math.ceil(bottom - 0.5))
        if iy0 >= iy1:
            return None
        rows = np.arange(iy0, iy1, dtype=np.float32)[:, None] + 0.5
        y_m = self.hc - (rows - self.y_h) * z[None, :] / self.f
        v = (y_m - y0) / (y1 - y0)
        s = ((z - z0) / (z1 - z0))[None, :]
        return slice(iy0, iy1), slice(ix0, ix1), s, v, z[None, :]

    def shade(self, ys, xs, base, amount=0.08, fine=0.03):
        """``base`` colour modulated by the scene's texture noise inside ``[ys, xs]`` -> (h, w, 3)."""
        mod = 1.0 + amount * self.low[ys, xs] + fine * self.fine[ys, xs]
        return np.asarray(base, dtype=np.float32) * mod[..., None]


def _smooth_noise(rng, height, width, cell):
    """Zero-mean, roughly unit-variance noise that varies over ``cell`` pixels."""
    grid = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _jitter(rng, color, amount):
    return np.clip(np.asarray(color, dtype=np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32), 0, 255)


# -------------------------------------------------------------------------------------------------------- layout
class _Street:
    """Lateral layout (metres, camera at x = 0, +x to the right) of the street and its two sides."""

    def __init__(self, rng):
        self.lane_w = rng.uniform(2.9, 3.6)
        lanes = int(rng.choice([1, 2, 2, 3, 4]))
        self.away_lanes = (lanes + 1) // 2  # right-hand traffic: the right lanes go the camera's way
        own = rng.integers(0, self.away_lanes)  # lane index from the right that the camera drives in
        self.lanes = lanes
        self.lanes_right = self.lane_w * (own + rng.uniform(0.35, 0.65))  # right edge of the traffic lanes
        self.lanes_left = lanes * self.lane_w - self.lanes_right
        # Optional parking strip on either side, outside the traffic lanes.
        self.parking = [rng.random() < 0.45, rng.random() < 0.55]  # left, right
        self.left = self.lanes_left + 2.3 * self.parking[0]
        self.right = self.lanes_right + 2.3 * self.parking[1]
        self.sides = []
        for sign, edge in ((-1, -self.left), (1, self.right)):
            sidewalk = rng.uniform(1.8, 4.5)
            strip = rng.uniform(1.2, 4.0) if rng.random() < 0.4 else 0.0
            park = rng.random() < 0.12  # no buildings on this side
            self.sides.append(
                dict(
                    sign=sign,
                    edge=edge,
                    outer=edge + sign * sidewalk,
                    facade=edge + sign * (sidewalk + strip),
                    strip=strip,
                    park=park,
                    sidewalk=sidewalk,
                    parking=self.parking[sign > 0],
                )
            )


def _draw_sky(sc):
    rng = sc.rng
    if sc.sunny:
        top = _jitter(rng, (62, 112, 182), 20)
        bottom = _jitter(rng, (172, 198, 224), 15)
    else:
        g = rng.uniform(150, 215)
        top = _jitter(rng, (g - 10, g - 5, g + 5), 8)
        bottom = _jitter(rng, (g + 20, g + 22, g + 25), 6)
    rows = np.clip(np.arange(sc.h, dtype=np.float32) / max(sc.y_h, 1.0), 0, 1)[:, None, None] ** 0.8
    sky = top * (1 - rows) + bottom * rows
    cloud = np.clip(sc.low * 0.6 + sc.mid * 0.25 + rng.uniform(-0.6, 0.4), 0, 1)[..., None]
    cloud_color = np.float32(235 if sc.sunny else 225)
    sc.photo[:] = sky * (1 - cloud * 0.8) + cloud_color * cloud * 0.8
    sc.haze_color = bottom


def _draw_ground(sc, st):
    """Road, sidewalks and terrain below the horizon, with lane markings, curbs and building shadows."""
    rng = sc.rng
    y_start = max(0, math.ceil(sc.y_h - 0.5 + 1e-3))
    if y_start >= sc.h:
        return
    rows = np.arange(y_start, sc.h, dtype=np.float32)[:, None] + 0.5
    cols = np.arange(sc.w, dtype=np.float32)[None, :] + 0.5
    z = sc.f * sc.hc / np.maximum(rows - sc.y_h, 1e-3)  # (h, 1)
    x = (cols - sc.x_v) * z / sc.f  # (h, w)
    z = np.broadcast_to(z, x.shape)
    sc.ground_x, sc.ground_z, sc.ground_y0 = x, z, y_start
    ys = slice(y_start, sc.h)
    xs = slice(0, sc.w)
    left, right = st.sides
    road = (x >= -st.left) & (x <= st.right)
    walk = ((x < -st.left) & (x >= left["outer"])) | ((x > st.right) & (x <= right["outer"]))
    label = np.where(road, ROAD, np.where(walk, SIDEWALK, TERRAIN)).astype(np.uint8)

    asphalt = _jitter(rng, (rng.uniform(72, 112),) * 3, 6)
    paving = _jitter(rng, rng.choice([(150, 148, 142), (170, 160, 150), (160, 120, 110), (128, 128, 132)]), 10)
    grass = _jitter(rng, rng.choice([(96, 128, 56), (120, 140, 70), (140, 140, 90)]), 12)
    color = np.empty(x.shape + (3,), dtype=np.float32)
    color[road] = asphalt
    color[walk] = paving
    color[label == TERRAIN] = grass
    low_amp = np.where(label == TERRAIN, 0.1, np.where(road, 0.045, 0.06)).astype(np.float32)
    tex = 1.0 + low_amp * sc.low[ys, xs] + np.where(label == TERRAIN, 0.12, 0.05) * sc.fine[ys, xs]
    # Paving slabs: faint joints every 0.6 m.
    joints = ((np.abs((x % 0.6) - 0.3) > 0.27) | (np.abs((z % 0.6) - 0.3) > 0.27)) & walk
    tex = tex - 0.08 * joints
    # Curb stones: a light strip on the sidewalk along the road edge.
    curb = walk & ((np.abs(x + st.left) < 0.18) | (np.abs(x - st.right) < 0.18))
    tex = tex + 0.18 * curb
    color *= tex[..., None]
    # Lane markings (part of the road class): dashed lane dividers, optional solid edge lines, crossing.
    pix = sc.f / z  # pixels per metre at each row
    marks = np.zeros(x.shape, dtype=np.float32)
    for k in range(1, st.lanes):
        cx = st.lanes_right - k * st.lane_w
        solid = k == st.away_lanes and rng.random() < 0.4  # centre line between the two directions
        dashed = np.ones_like(z, dtype=bool) if solid else (z % 9.0) < 3.5
        marks = np.maximum(marks, np.clip((0.08 - np.abs(x - cx)) * pix + 0.5, 0, 1) * dashed)
    if rng.random() < 0.6:
        for cx in (-st.lanes_left - 0.15, st.lanes_right + 0.15):
            marks = np.maximum(marks, np.clip((0.07 - np.abs(x - cx)) * pix + 0.5, 0, 1))
    if rng.random() < 0.3:
        z_cross = rng.uniform(8, 30)
        stripes = (np.abs(z - z_cross) < 1.8) & ((x % 1.0) < 0.5)
        marks = np.maximum(marks, stripes.astype(np.float32))
    marks *= road * rng.uniform(0.6, 0.9)
    paint = np.float32(rng.uniform(200, 235))
    color = color * (1 - marks[..., None]) + paint * marks[..., None]
    # Shadow of the buildings on the shaded side of a sunny street.
    if sc.sunny:
        side = left if sc.sun_left else right
        # One shadow length per 10 m of street (buildings of different heights), soft edge of ~1 pixel.
        reach = (rng.uniform(0.15, 0.9, 40) * (st.left + st.right + 4)).astype(np.float32)
        reach = reach[np.minimum(z / 10.0, 39).astype(np.intp)]
        dist = (x - side["facade"]) * -side["sign"]  # metres from the facade towards the road
        lit = np.clip((dist - reach) * pix + 0.5, 0, 1)
        color *= (0.6 + 0.4 * lit)[..., None]
    sc.ground_label = label
    sc.photo[ys, xs] = color
    sc.depth[ys, xs] = z
    sc.label[ys, xs] = label
    sc.inst[ys, xs] = label


def _windows(rng):
    """Random window-grid parameters of one building (metres)."""
    floor = rng.uniform(2.8, 3.6)
    return dict(
        floor=floor,
        sill=rng.uniform(0.7, 1.1),
        win_h=rng.uniform(1.1, 1.7),
        spacing=rng.uniform(2.2, 4.0),
        win_w=rng.uniform(0.8, 1.4),
        offset=rng.uniform(0, 3),
        shop=rng.random() < 0.5,
        glass=_jitter(rng, (48, 58, 70), 15),
        frame=rng.random() < 0.5,
    )


def _facade_color(sc, ys, xs, base, along, up, height, win, lit):
    """Facade colours at facade coordinates ``along`` / ``up`` (metres): wall texture, windows, shop front."""
    color = sc.shade(ys, xs, base * lit, amount=0.07, fine=0.04)
    across = (along + win["offset"]) % win["spacing"]
    level = up % win["floor"]
    # Windows on every floor; with a shop front the ground floor has large shop windows instead.
    rows_ok = (up > (win["floor"] if win["shop"] else 0.0)) & (up < height - 0.8)
    in_win = rows_ok & (level > win["sill"]) & (level < win["sill"] + win["win_h"]) & (across < win["win_w"])
    if win["frame"]:  # light window surrounds
        around = (level > win["sill"] - 0.15) & (level < win["sill"] + win["win_h"] + 0.15)
        around &= (across < win["win_w"] + 0.15) | (across > win["spacing"] - 0.15)
        color = np.where((rows_ok & around & ~in_win)[..., None], np.minimum(color * 1.3 + 20, 255), color)
    if win["shop"]:
        in_win |= (up > 0.3) & (up < win["floor"] - 0.6) & (((along + win["offset"]) % 7.0) < 5.0)
    color = np.where(((up < 0.45) & ~in_win)[..., None], color * 0.75, color)  # plinth
    glass = win["glass"] * lit * (0.85 + 0.35 * np.clip(up / max(height, 1.0), 0, 1))[..., None]
    color = np.where(in_win[..., None], glass, color)
    cornice = up > height - 0.35
    return np.where(cornice[..., None], color * 0.75, color)


def _draw_facades(sc, st):
    rng = sc.rng
    for side in st.sides:
        sign = side["sign"]
        lit = 1.0 if not sc.sunny else (1.05 if (sign > 0) == sc.sun_left else 0.62)
        lit *= rng.uniform(0.92, 1.05)
        z = rng.uniform(-5, 5)
        z_end = rng.uniform(90, 200)
        while z < z_end:
            length = rng.uniform(8, 30)
            gap = side["park"] or rng.random() < 0.12
            if not gap:
                height = rng.uniform(7, 26)
                base = _jitter(rng, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))], 14)
                win = _windows(rng)
                setback = rng.uniform(0, 1.5) if rng.random() < 0.3 else 0.0
                x_m = side["facade"] + sign * setback
                r = sc.side(x_m, z, z + length, 0.0, height)
                if r is not None:
                    ys, xs, s, v, zc = r
                    mask = (v >= 0) & (v < 1) & (s >= 0) & (s <= 1)
                    along, up = np.broadcast_to(zc, v.shape), v * height
                    color = _facade_color(sc, ys, xs, base, along, up, height, win, lit)
                    sc.paint(ys, xs, mask, BUILDING, BUILDING, color, np.broadcast_to(zc, v.shape))
            z += length
    # Far end of the street: a row of buildings (or trees) facing the camera.
    z_far = rng.uniform(70, 220)
    left, right = st.sides
    x = left["facade"] - rng.uniform(0, 40)
    x_stop = right["facade"] + rng.uniform(0, 40)
    while x < x_stop:
        width = rng.uniform(8, 25)
        height = rng.uniform(6, 30)
        r = sc.frontal(x, x + width, 0.0, height, z_far)
        if r is not None:
            ys, xs, u, v = r
            if rng.random() < 0.75:
                base = _jitter(rng, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))], 14)
                win = _windows(rng)
                along = np.broadcast_to(x + u * width, (v.shape[0], u.shape[1]))
                up = np.broadcast_to(v * height, along.shape)
                color = _facade_color(sc, ys, xs, base, along, up, height, win, 0.9)
                sc.paint(ys, xs, np.ones(along.shape, dtype=bool), BUILDING, BUILDING, color, z_far)
            else:
                top = 0.6 + 0.4 * np.abs(np.sin(u * 9.0 + rng.uniform(0, 6)))
                mask = v < top
                color = sc.shade(ys, xs, _jitter(rng, (70, 96, 44), 12), amount=0.15, fine=0.15)
                sc.paint(ys, xs, mask, VEGETATION, VEGETATION, color, z_far)
        x += width


def _draw_fences(sc, st):
    """Low walls, fences and hedges at the back of the sidewalk, in front of the buildings."""
    rng = sc.rng
    for side in st.sides:
        if rng.random() > 0.45:
            continue
        kind = rng.choice([WALL, FENCE, VEGETATION])
        x_m = side["outer"] + side["sign"] * 0.15 if side["strip"] > 0 else side["facade"] - side["sign"] * 0.3
        z0 = rng.uniform(0, 20)
        z1 = z0 + rng.uniform(15, 60)
        height = rng.uniform(0.8, 1.6) if kind != FENCE else rng.uniform(1.0, 2.0)
        r = sc.side(x_m, z0, z1, 0.0, height)
        if r is None:
            continue
        ys, xs, s, v, zc = r
        mask = (v >= 0) & (v < 1) & (s >= 0) & (s <= 1)
        along = np.broadcast_to(zc, v.shape)
        if kind == WALL:
            color = sc.shade(ys, xs, _jitter(rng, (150, 146, 136), 20), amount=0.1, fine=0.05)
            color = np.where((v > 0.88)[..., None], color * 0.8, color)
        elif kind == FENCE:
            metal = _jitter(rng, rng.choice([(60, 64, 60), (130, 120, 100), (170, 170, 170)]), 10)
            bars = ((along % 0.25) < 0.07) | (v > 0.9) | (np.abs(v - 0.12) < 0.04)
            mask &= bars
            color = sc.shade(ys, xs, metal, amount=0.05, fine=0.05)
        else:
            mask &= v < 0.85 + 0.15 * sc.mid[ys, xs]
            color = sc.shade(ys, xs, _jitter(rng, (64, 96, 40), 12), amount=0.15, fine=0.2)
        sc.paint(ys, xs, mask, kind, kind, color, along)


# ------------------------------------------------------------------------------------------------------ objects
def _tree(sc, x_m, z, trunk_h, radius):
    rng = sc.rng
    trunk = sc.frontal(x_m - 0.15, x_m + 0.15, 0.0, trunk_h + radius * 0.5, z)
    if trunk is not None:
        ys, xs, u, v = trunk
        color = sc.shade(ys, xs, _jitter(rng, (84, 64, 48), 10), amount=0.1, fine=0.1)
        sc.paint(ys, xs, np.ones((v.shape[0], u.shape[1]), dtype=bool), VEGETATION, VEGETATION, color, z)
    crown = sc.frontal(x_m - radius, x_m + radius, trunk_h, trunk_h + 2.2 * radius, z - 0.5)
    if crown is None:
        return
    ys, xs, u, v = crown
    h, w = v.shape[0], u.shape[1]
    wobble = cv2.resize(rng.standard_normal((6, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    mask = (2 * u - 1) ** 2 + (2 * v - 1) ** 2 < np.clip(0.8 + 0.2 * wobble, 0.45, 0.97)  # stays inside its box
    leaf = _jitter(rng, rng.choice([(60, 92, 36), (78, 106, 40), (50, 76, 40), (96, 120, 50)]), 10)
    light = 0.8 + 0.35 * np.clip(v, 0, 1)
    color = sc.shade(ys, xs, leaf, amount=0.2, fine=0.22) * light[..., None]
    sc.paint(ys, xs, mask, VEGETATION, VEGETATION, color, z)


def _pole(sc, x_m, z, kind, sign):
    """A pole; ``kind`` is "lamp", "sign" or "light". ``sign`` = side of the street (-1 left, +1 right)."""
    rng = sc.rng
    height = {"lamp": rng.uniform(5, 8), "sign": rng.uniform(2.6, 3.4), "light": rng.uniform(3.2, 4.2)}[kind]
    metal = _jitter(rng, rng.choice([(110, 112, 114), (70, 74, 72), (150, 150, 146)]), 8)
    r = sc.frontal(x_m - 0.07, x_m + 0.07, 0.0, height, z)
    if r is not None:
        ys, xs, u, v = r
        color = np.broadcast_to(metal * (0.8 + 0.4 * u)[..., None], (v.shape[0], u.shape[1], 3))
        sc.paint(ys, xs, np.ones(color.shape[:2], dtype=bool), POLE, POLE, color, z)
    if kind == "lamp":
        arm = rng.uniform(1.0, 2.2)
        x0, x1 = sorted((x_m, x_m - sign * arm))
        r = sc.frontal(x0, x1, height - 0.1, height + 0.05, z)
        if r is not None:
            ys, xs, u, v = r
            sc.paint(ys, xs, np.ones((v.shape[0], u.shape[1]), dtype=bool), POLE, POLE, metal, z)
    elif kind == "sign":
        size = rng.uniform(0.55, 0.8)
        r = sc.frontal(x_m - size / 2, x_m + size / 2, height - size, height, z - 0.05)
        if r is not None:
            ys, xs, u, v = r
            shape = rng.integers(3)
            du, dv = 2 * u - 1, 2 * v - 1
            if shape == 0:  # round
                mask = du**2 + dv**2 < 1.0
                inner = du**2 + dv**2 < 0.55
            elif shape == 1:  # diamond
                mask = np.abs(du) + np.abs(dv) < 1.0
                inner = np.abs(du) + np.abs(dv) < 0.7
            else:  # square
                mask = np.ones((v.shape[0], u.shape[1]), dtype=bool)
                inner = (np.abs(du) < 0.75) & (np.abs(dv) < 0.75)
            outer_c, inner_c = [
                ((200, 30, 30), (236, 236, 236)),
                ((30, 70, 170), (30, 70, 170)),
                ((236, 236, 236), (220, 180, 20)),
                ((30, 110, 60), (236, 236, 236)),
            ][rng.integers(4)]
            color = np.where(np.broadcast_to(inner, mask.shape)[..., None], np.float32(inner_c), np.float32(outer_c))
            sc.paint(ys, xs, mask, TRAFFIC_SIGN, TRAFFIC_SIGN, color, z - 0.05)
    else:
        r = sc.frontal(x_m - 0.18, x_m + 0.18, height - 0.95, height, z - 0.05)
        if r is not None:
            ys, xs, u, v = r
            lamp = rng.integers(3)  # 0 green (bottom) .. 2 red (top)
            centre = (lamp + 0.5) / 3.0
            lit = ((2 * u - 1) ** 2 + ((v - centre) * 6) ** 2) < 0.5
            lamp_c = np.float32([(60, 230, 120), (250, 190, 40), (250, 50, 40)][lamp])
            color = np.where(lit[..., None], lamp_c, np.float32((34, 36, 34)))
            mask = np.ones((v.shape[0], u.shape[1]), dtype=bool)
            sc.paint(ys, xs, mask, TRAFFIC_LIGHT, TRAFFIC_LIGHT, color, z - 0.05)


def _car(sc, x_m, z, facing_away):
    """A car whose nearest face (rear if ``facing_away`` else front) is at depth ``z``, centred at ``x_m``."""
    rng = sc.rng
    width, height, length = rng.uniform(1.65, 1.95), rng.uniform(1.35, 1.65), rng.uniform(3.9, 4.8)
    if rng.random() < 0.12:  # van
        height, length = rng.uniform(1.9, 2.3), rng.uniform(4.6, 5.4)
    idx = rng.choice(len(_CAR_COLORS), p=_CAR_COLOR_WEIGHTS / _CAR_COLOR_WEIGHTS.sum())
    paint = _jitter(rng, _CAR_COLORS[idx], 10)
    glass = _jitter(rng, (40, 48, 56), 8)
    inst = sc.next_instance(CAR)
    belt = 0.62 if height < 1.8 else 0.55  # where the windows start (fraction of the height)
    wheel_r = 0.33
    # Visible side (the one facing the camera's axis).
    if abs(x_m) > width / 2:
        x_side = x_m - math.copysign(width / 2, x_m)
        r = sc.side(x_side, z, z + length, 0.0, height)
        if r is not None:
            ys, xs, s, v, zc = r
            along = s * length  # metres from the near end
            up = v * height
            taper = np.clip((up - belt * height) / ((1 - belt) * height), 0, 1)
            cabin = (along > 0.6 + 0.5 * taper) & (along < length - 0.9 - 0.4 * taper)
            body = (up >= 0.18) & (up < belt * height)
            wheels = ((along - 0.85) ** 2 + (up - wheel_r) ** 2 < wheel_r**2) | (
                (along - (length - 0.9)) ** 2 + (up - wheel_r) ** 2 < wheel_r**2
            )
            mask = (body | (cabin & (up < height)) | wheels) & (s >= 0) & (s <= 1) & (up >= 0)
            color = sc.shade(ys, xs, paint * 0.8, amount=0.03, fine=0.02)
            color = np.where((cabin & (up > belt * height + 0.06))[..., None], glass * 1.1, color)
            color = np.where(wheels[..., None], np.float32(22), color)
            sc.paint(ys, xs, mask, CAR, inst, color, np.broadcast_to(zc, v.shape))
    r = sc.frontal(x_m - width / 2, x_m + width / 2, 0.0, height, z)
    if r is None:
        return
    ys, xs, u, v = r
    du = np.abs(2 * u - 1)  # 0 at the centre, 1 at the sides
    up = v * height
    body = (up >= 0.12) & (up < belt * height)
    cabin = (up >= belt * height) & (du < 0.9 - 0.25 * (v - belt) / (1 - belt))
    wheels = (up < 0.14) & (du > 0.62) & (du < 0.94)
    mask = body | cabin | wheels
    color = sc.shade(ys, xs, paint, amount=0.03, fine=0.02) * (0.85 + 0.3 * v)[..., None]
    window = cabin & (v > belt + 0.05) & (v < 0.94) & (du < 0.82 - 0.25 * (v - belt) / (1 - belt))
    color = np.where(window[..., None], glass * (0.9 + 0.5 * v)[..., None], color)
    lamp_band = (up > belt * height - 0.28) & (up < belt * height - 0.1) & (du > 0.72)
    lamp_c = np.float32((170, 20, 20)) if facing_away else np.float32((235, 235, 215))
    color = np.where(lamp_band[..., None], lamp_c, color)
    plate = (up > 0.3) & (up < 0.42) & (du < 0.28)
    color = np.where(plate[..., None], np.float32((225, 225, 220)), color)
    bumper = (up < 0.3) & body
    color = np.where(bumper[..., None], color * 0.55, color)
    color = np.where(wheels[..., None], np.float32(20), color)
    sc.paint(ys, xs, mask, CAR, inst, color, z)


def _person(sc, x_m, z):
    rng = sc.rng
    height = rng.uniform(1.5, 1.95)
    width = height * rng.uniform(0.26, 0.32)
    r = sc.frontal(x_m - width / 2, x_m + width / 2, 0.0, height, z)
    if r is None:
        return
    inst = sc.next_instance(PERSON)
    ys, xs, u, v = r
    du = 2 * u - 1
    stride = rng.uniform(0.0, 0.35)
    head = (du / 0.42) ** 2 + ((v - 0.93) / 0.07) ** 2 < 1.0
    torso = (v >= 0.5) & (v < 0.86) & (np.abs(du) < 0.95 - 0.4 * np.clip((v - 0.8) / 0.06, 0, 1))
    leg_l = (v < 0.5) & (np.abs(du + 0.35 + stride * (0.5 - v)) < 0.3)
    leg_r = (v < 0.5) & (np.abs(du - 0.35 - stride * (0.5 - v)) < 0.3)
    mask = head | torso | leg_l | leg_r
    skin = _SKIN_COLORS[rng.integers(len(_SKIN_COLORS))]
    hair = _jitter(rng, rng.choice([(30, 24, 20), (90, 60, 36), (170, 140, 90), (120, 120, 120)]), 8)
    shirt = _jitter(rng, _CLOTHES_COLORS[rng.integers(len(_CLOTHES_COLORS))], 15)
    pants = _jitter(rng, _CLOTHES_COLORS[rng.integers(len(_CLOTHES_COLORS))], 10)
    color = np.empty((v.shape[0], u.shape[1], 3), dtype=np.float32)
    color[:] = pants
    color[np.broadcast_to(v >= 0.5, color.shape[:2])] = shirt
    color[np.broadcast_to(v >= 0.86, color.shape[:2])] = skin
    color[np.broadcast_to(v >= 0.95, color.shape[:2])] = hair
    color[np.broadcast_to(v < 0.05, color.shape[:2])] = 25
    color *= (0.8 + 0.35 * (1 - np.abs(du)))[..., None]
    sc.paint(ys, xs, mask, PERSON, inst, color, z)


def _shadow(sc, x0, x1, z0, z1, strength):
    """Darken the ground photo under an object's footprint (contact shadow)."""
    if not hasattr(sc, "ground_x"):
        return
    y_top = max(sc.ground_y0, math.floor(sc.py(0.0, max(z1, sc.znear))))
    y_bot = min(sc.h, math.ceil(sc.py(0.0, max(z0, sc.znear))) + 1)
    if y_top >= y_bot:
        return
    gx = sc.ground_x[y_top - sc.ground_y0 : y_bot - sc.ground_y0]
    gz = sc.ground_z[y_top - sc.ground_y0 : y_bot - sc.ground_y0]
    inside = (gx > x0) & (gx < x1) & (gz > z0) & (gz < z1)
    sc.photo[y_top:y_bot][inside] *= np.float32(1 - strength)


def _place_objects(sc, st):
    rng = sc.rng
    objects = []  # (depth of the nearest point, draw function); drawn far to near, appearance drawn from sc.rng
    for side in st.sides:
        sign, edge, outer = side["sign"], side["edge"], side["outer"]
        # Trees: in the terrain strip when there is one, else in pits on the sidewalk.
        if side["park"] or rng.random() < 0.6:
            x_t = 0.5 * (outer + side["facade"]) if side["strip"] > 1.5 else edge + sign * 0.45 * side["sidewalk"]
            z = rng.uniform(2, 14)
            while z < 110:
                radius = rng.uniform(1.4, 3.0)
                x_j = x_t + sign * rng.uniform(0, 2.0 if side["park"] else 0.3)
                objects.append((z, functools.partial(_tree, sc, x_j, z, rng.uniform(1.8, 3.5), radius)))
                z += rng.uniform(6, 14) if not side["park"] else rng.uniform(3, 8)
        # Poles with lamps, signs or traffic lights at the curb.
        z = rng.uniform(6, 20)
        while z < 90:
            kind = rng.choice(["lamp", "sign", "sign", "light"])
            objects.append((z, functools.partial(_pole, sc, edge + sign * 0.45, z, kind, sign)))
            z += rng.uniform(10, 30)
        # Pedestrians on the sidewalk.
        for _ in range(rng.poisson(2.2)):
            z = rng.uniform(3.5, 45)
            x_p = edge + sign * rng.uniform(0.5, max(0.6, side["sidewalk"] - 0.4))
            objects.append((z, functools.partial(_person, sc, x_p, z)))
    if rng.random() < 0.15:  # someone crossing the road
        z = rng.uniform(6, 25)
        objects.append((z, functools.partial(_person, sc, rng.uniform(-st.left, st.right), z)))
    # Cars: traffic in every lane (same direction on the right-hand lanes) and parked cars along the curbs.
    footprints = []
    for lane in range(st.lanes):
        x_c = st.lanes_right - (lane + 0.5) * st.lane_w + rng.uniform(-0.3, 0.3)
        away = lane < st.away_lanes
        z = rng.uniform(5 if abs(x_c) > 1.5 else 9, 30)
        while z < 80:
            if rng.random() < 0.65:
                footprints.append((x_c, z))
                objects.append((z, functools.partial(_car, sc, x_c, z, bool(away))))
            z += rng.uniform(8, 25)
    for side in st.sides:
        if side["parking"]:
            z = rng.uniform(2, 15)
            x_c = side["edge"] - side["sign"] * 1.15
            while z < 70:
                if rng.random() < 0.75:
                    footprints.append((x_c, z))
                    objects.append((z, functools.partial(_car, sc, x_c, z, side["sign"] > 0)))
                z += rng.uniform(5.0, 9.0)
    for x_c, z in footprints:
        _shadow(sc, x_c - 1.05, x_c + 1.05, z - 0.2, z + 4.6, 0.45)
    for _, draw in sorted(objects, key=lambda item: -item[0]):
        draw()


def _draw_ego_vehicle(sc):
    rng = sc.rng
    if rng.random() > 0.5:
        return
    depth = rng.uniform(0.05, 0.11) * sc.h
    cols = np.arange(sc.w, dtype=np.float32) + 0.5
    bulge = 1.0 - 0.45 * ((cols - sc.w / 2) / (sc.w / 2)) ** 2
    top = sc.h - depth * bulge  # (w,)
    y0 = max(0, math.floor(top.min()))
    rows = np.arange(y0, sc.h, dtype=np.float32)[:, None] + 0.5
    mask = rows > top[None, :]
    paint = _jitter(rng, rng.choice([(30, 30, 34), (60, 62, 66), (180, 182, 186)]), 8)
    rel = np.clip((rows - top[None, :]) / max(depth, 1.0), 0, 1)
    color = paint * (1.2 - 0.5 * rel)[..., None] + 40 * np.exp(-rel * 12)[..., None]
    sc.paint(slice(y0, sc.h), slice(0, sc.w), mask, EGO_VEHICLE, EGO_VEHICLE, color, 2.0)


def _finish_photo(sc):
    """Haze, global lighting, sensor noise and a slight blur -> uint8 photo."""
    rng = sc.rng
    haze = (1.0 - np.exp(-sc.depth / rng.uniform(150, 400)))[..., None] * rng.uniform(0.4, 0.8)
    photo = sc.photo * (1 - haze) + sc.haze_color * haze
    photo = photo * (sc.gain * sc.tint)
    yy = (np.arange(sc.h, dtype=np.float32)[:, None] + 0.5) / sc.h - 0.5
    xx = (np.arange(sc.w, dtype=np.float32)[None, :] + 0.5) / sc.w - 0.5
    photo *= (1.0 - rng.uniform(0.1, 0.3) * (xx**2 + yy**2))[..., None]  # vignetting
    sigma = rng.uniform(0.45, 0.75) * max(1.0, sc.w / 512)
    photo = cv2.GaussianBlur(photo, (0, 0), sigma)
    photo += rng.standard_normal(photo.shape, dtype=np.float32) * np.float32(rng.uniform(1.5, 4.0))
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8)


def render_scene(seed, height, width):
    """Render one synthetic street scene.

    Returns a dict with ``label_ids`` (``HxW`` uint8 Cityscapes label ids, see :data:`SCENE_LABEL_IDS`),
    ``instance_ids`` (``HxW`` int32: ``id * 1000 + k`` on cars and persons, the label id elsewhere) and
    ``photo`` (``HxWx3`` uint8). The same ``seed`` and size always give the same scene.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"scene seed must be a non-negative integer, got {seed!r}; pass e.g. --seed 0")
    if height < MIN_HEIGHT or width < MIN_WIDTH:
        raise UserError(
            f"scene size {height}x{width} is too small; use at least {MIN_HEIGHT}x{MIN_WIDTH} (e.g. 64x128)"
        )
    rng = np.random.default_rng(int(seed))
    sc = _Scene(rng, int(height), int(width))
    street = _Street(rng)
    _draw_sky(sc)
    _draw_ground(sc, street)
    _draw_facades(sc, street)
    _draw_fences(sc, street)
    _place_objects(sc, street)
    _draw_ego_vehicle(sc)
    photo = _finish_photo(sc)
    return dict(label_ids=sc.label, instance_ids=sc.inst, photo=photo)
