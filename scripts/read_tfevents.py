#!/usr/bin/env python3
"""Reads a TensorBoard event file without TensorFlow: checks every TFRecord CRC and prints the
scalars as CSV lines `tag,step,value`. Exit code 1 on a corrupt file.

Usage: python3 scripts/read_tfevents.py events.out.tfevents.*
"""
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, pos):
    result, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """Yields (field number, wire type, value) of a protocol buffer message."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            size, pos = varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield field, wire, value


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(header) != length_crc:
            raise ValueError("bad length CRC at offset %d" % pos)
        body = data[pos + 12:pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if masked(body) != body_crc:
            raise ValueError("bad data CRC at offset %d" % pos)
        yield body
        pos += 16 + length


def scalars(path):
    version = None
    for event in records(path):
        step = 0
        for field, _, value in fields(event):
            if field == 2:
                step = value
            elif field == 3:
                version = value.decode()
            elif field == 5:
                for f2, _, summary_value in fields(value):
                    if f2 != 1:
                        continue
                    tag, number = None, None
                    for f3, _, v in fields(summary_value):
                        if f3 == 1:
                            tag = v.decode()
                        elif f3 == 2:
                            (number,) = struct.unpack("<f", v)
                    yield tag, step, number
    if version != "brain.Event:2":
        raise ValueError("missing file_version brain.Event:2")


def main():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    try:
        for path in sys.argv[1:]:
            for tag, step, value in scalars(path):
                print("%s,%d,%.9g" % (tag, step, value))
    except (ValueError, struct.error, IndexError) as e:
        print("corrupt event file: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
