#!/usr/bin/python3
"""Modbus RTU slave for the hal/modbus integration tests.

Runs pymodbus (Debian's python3-pymodbus 3.0.x, not sitelink code) on a
serial port, normally one end of a socat pty pair, and serves:

  unit 1  Eastron SDM630-like meter: float32 input registers, high word
          first: 0x0000..0x0004 voltages, 0x000C L1 power, 0x0034 total power (W),
          0x0048 import (kWh), 0x004A export, 0x0156 total (kWh)
  unit 2  ABB B23-like meter: holding registers 0x5000 import (uint64,
          0.01 kWh), 0x5004 export, 0x5B14 total power (int32, 0.01 W)
  unit 3  charge controller: coil 400 enable, holding 100 CP state as
          index (0..5 = A..F), input 200 energy (uint32 Wh), input 202
          power (int32 W)
  unit 4  charge controller: holding 300 enable, input 100 CP state as
          ASCII ('A'..'F')

and, for the profile tests, one unit per built-in profile serving the
registers its vendor documents (see profiles.go for the sources):

  unit 11 Eastron SDM220      unit 16 Janitza UMG 604
  unit 12 Eastron SDM230      unit 17 Siemens PAC2200
  unit 13 Eastron SDM72D-M V2 unit 18 Eastron SDM72D-M (first version)
  unit 14 Chint DTSU666       unit 20 Phoenix Contact EV-SER controller
  unit 15 Carlo Gavazzi EM24  unit 21 Bender CC613 controller

Any other unit gets no answer. Registers outside these maps answer with
exception 2 (illegal data address).

The test drives it over stdin, one command per line, and reads one
answer line per command ("ok ..." or "err ..."):

  set UNIT TABLE ADDR V [V...]   TABLE is co, di, hr or ir
  setf UNIT TABLE ADDR FLOAT     float32, high word first
  setu64 UNIT TABLE ADDR INT     uint64, high word first
  get UNIT TABLE ADDR COUNT      answers "ok V V ..."
  mute UNIT / unmute UNIT        stop / resume answering as UNIT

"ready" is printed once the port is open. EOF on stdin stops the slave.

Usage: slave.py PORT
"""

import asyncio
import struct
import sys

from pymodbus.datastore import (
    ModbusServerContext,
    ModbusSlaveContext,
    ModbusSparseDataBlock,
)
from pymodbus.exceptions import NoSuchSlaveException
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server import StartAsyncSerialServer


class Device(ModbusSlaveContext):
    """A slave context that can be muted: a muted unit does not answer."""

    muted = False

    def validate(self, fc_as_hex, address, count=1):
        if self.muted:
            # The server drops requests for missing slaves when
            # ignore_missing_slaves is set: the master times out.
            raise NoSuchSlaveException("muted")
        return super().validate(fc_as_hex, address, count)


def f32(value):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def u64(value):
    return list(struct.unpack(">HHHH", struct.pack(">Q", value)))


def i32(value):
    return list(struct.unpack(">HH", struct.pack(">i", value)))


def i32le(value):
    """int32, least significant word first (Carlo Gavazzi)."""
    return i32(value)[::-1]


def f64(value):
    return list(struct.unpack(">HHHH", struct.pack(">d", value)))


def floats(mapping):
    regs = {}
    for addr, value in mapping.items():
        for i, word in enumerate(f32(value)):
            regs[addr + i] = word
    return regs


def words(mapping):
    regs = {}
    for addr, ws in mapping.items():
        for i, word in enumerate(ws):
            regs[addr + i] = word
    return regs


def device(co=None, di=None, hr=None, ir=None):
    # Sparse blocks answer only the addresses they hold; zero_mode makes
    # protocol address N block address N (no +1 shift).
    return Device(
        co=ModbusSparseDataBlock(co or {}),
        di=ModbusSparseDataBlock(di or {}),
        hr=ModbusSparseDataBlock(hr or {}),
        ir=ModbusSparseDataBlock(ir or {}),
        zero_mode=True,
    )


def build():
    return {
        1: device(ir=floats({
            0x0000: 230.0,
            0x0002: 230.0,
            0x0004: 230.0,
            0x000C: 3680.0,
            0x0034: 11040.0,
            0x0048: 1234.5,
            0x004A: 0.0,
            0x0156: 1234.5,
        })),
        2: device(hr=words({
            0x5000: u64(987654),  # 9876.54 kWh
            0x5004: u64(0),
            0x5B14: i32(740000),  # 7400.00 W
        })),
        3: device(
            co={400: False},
            hr={100: 0},
            ir=words({200: [0, 5000], 202: i32(0)}),
        ),
        4: device(hr={300: 0}, ir={100: ord("A")}),
        # Eastron single-phase: no 0x0034 (total system power).
        11: device(ir=floats({
            0x0000: 230.1, 0x0006: 15.5, 0x000C: 3565.0,
            0x0048: 42.25, 0x004A: 0.0, 0x0156: 42.25,
        })),
        12: device(ir=floats({
            0x0000: 229.9, 0x0006: 10.0, 0x000C: 2300.0,
            0x0048: 7.5, 0x004A: 0.0, 0x0156: 7.5,
        })),
        # SDM72D-M V2: per-phase registers like an SDM630.
        13: device(ir=floats({
            0x0000: 231.0, 0x0002: 232.0, 0x0004: 233.0,
            0x0006: 4.3, 0x0008: 4.3, 0x000A: 4.4,
            0x000C: 1000.0, 0x000E: 1000.0, 0x0010: 1000.0,
            0x0034: 3000.0, 0x0048: 555.5, 0x004A: 0.0,
        })),
        # DTSU666: holding floats; voltage in 0.1 V, power in 0.1 W.
        14: device(hr=floats({
            0x2006: 2301.0, 0x2008: 2302.0, 0x200A: 2303.0,
            0x2012: 74000.0, 0x101E: 1234.5, 0x1028: 0.0,
        })),
        # EM24-DIN AV: int32, low word first; V x10, W x10, kWh x10.
        15: device(ir=words({
            0x0000: i32le(2300), 0x0002: i32le(2310), 0x0004: i32le(2320),
            0x0028: i32le(110400), 0x0042: i32le(98765),
        })),
        # Janitza UMG 604: holding floats, energy in Wh.
        16: device(hr=floats({
            19000: 230.0, 19002: 230.0, 19004: 230.0,
            19026: 5520.0, 19068: 123456.0,
        })),
        # PAC2200: float32 measurements, float64 energy in Wh.
        17: device(ir={
            **floats({1: 229.0, 3: 229.0, 5: 229.0, 65: 4100.0}),
            **words({801: f64(7654321.5)}),
        }),
        # SDM72D-M first version: no per-phase registers.
        18: device(ir=floats({0x0034: 3000.0, 0x0048: 10.0})),
        # Phoenix Contact EV-SER: ASCII state in the high byte.
        20: device(co={20000: False}, hr={22000: 16}, ir={24000: ord("A") << 8}),
        # Bender CC613: state 1..4 = A..D; the current limit is the enable.
        21: device(hr={122: 1, 1000: 0}),
    }


TABLES = {"co": "c", "di": "d", "hr": "h", "ir": "i"}


def command(devices, line):
    args = line.split()
    if not args:
        return "err empty command"
    op, rest = args[0], args[1:]
    unit = devices.get(int(rest[0], 0)) if rest else None
    if unit is None:
        return "err unknown unit"
    if op in ("mute", "unmute"):
        unit.muted = op == "mute"
        return "ok"
    store = unit.store[TABLES[rest[1]]]
    addr = int(rest[2], 0)
    if op == "set":
        values = [int(v, 0) for v in rest[3:]]
        if rest[1] in ("co", "di"):
            values = [bool(v) for v in values]
        store.setValues(addr, values)
    elif op == "setf":
        store.setValues(addr, f32(float(rest[3])))
    elif op == "setu64":
        store.setValues(addr, u64(int(rest[3], 0)))
    elif op == "get":
        values = store.getValues(addr, int(rest[3], 0))
        return "ok " + " ".join(str(int(v)) for v in values)
    else:
        return "err unknown command " + op
    return "ok"


async def main(port):
    devices = build()
    context = ModbusServerContext(slaves=devices, single=False)
    server = await StartAsyncSerialServer(
        context=context,
        framer=ModbusRtuFramer,
        port=port,
        baudrate=19200,
        bytesize=8,
        parity="N",
        stopbits=1,
        ignore_missing_slaves=True,
        defer_start=True,
    )
    await server.start()
    if server.transport is None:
        sys.exit("could not open " + port)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        try:
            answer = command(devices, line)
        except Exception as exc:  # report, keep serving
            answer = "err " + repr(exc)
        print(answer, flush=True)
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
