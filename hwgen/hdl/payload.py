"""Packing Python values into stream payload bits and back, for any Amaranth data layout.

Testbenches drive the flat ``<stream>__payload`` port of the emitted Verilog; these helpers turn a
nested dict/list value into that integer following Amaranth's layout rules (first field and
element 0 at the least significant bits) and turn an integer read from the port back into values.
"""

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack"]


def pack(layout, value) -> int:
    """The payload bits of ``value`` (a dict for structs, a sequence for arrays, an int for scalars)."""
    if isinstance(layout, data.ArrayLayout):
        if len(value) != layout.length:
            raise ValueError(f"expected {layout.length} elements, got {len(value)}")
        width = Shape.cast(layout.elem_shape).width
        return sum(pack(layout.elem_shape, v) << (i * width) for i, v in enumerate(value))
    if isinstance(layout, data.StructLayout):
        if set(value) != {name for name, _ in layout}:
            raise ValueError(f"expected fields {sorted(n for n, _ in layout)}, got {sorted(value)}")
        return sum(pack(f.shape, value[name]) << f.offset for name, f in layout)
    shape = Shape.cast(layout)
    v = int(value)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    if not lo <= v < lo + (1 << shape.width):
        raise ValueError(f"{v} does not fit {shape}")
    return v & ((1 << shape.width) - 1)


def unpack(layout, bits: int):
    """Inverse of :func:`pack`."""
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        mask = (1 << width) - 1
        return [unpack(layout.elem_shape, (bits >> (i * width)) & mask)
                for i in range(layout.length)]
    if isinstance(layout, data.StructLayout):
        return {name: unpack(f.shape, (bits >> f.offset) & ((1 << f.width) - 1))
                for name, f in layout}
    shape = Shape.cast(layout)
    bits &= (1 << shape.width) - 1
    if shape.signed and bits >> (shape.width - 1):
        bits -= 1 << shape.width
    return bits
