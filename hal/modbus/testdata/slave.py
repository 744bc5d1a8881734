#!/usr/bin/python3
"""Modbus RTU slave for the hal/modbus integration tests.

Runs pymodbus (Debian's python3-pymodbus 3.0.x, not sitelink code) on a
serial port, normally one end of a socat pty pair, and serves:

  unit 1  Eastron SDM630-like meter: float32 input registers, high word
          first: 0x0000 voltage, 0x000C L1 power, 0x0034 total power (W),
          0x0048 import (kWh), 0x004A export, 0x0156 total (kWh)
  unit 2  ABB B23-like meter: holding registers 0x5000 import (uint64,
          0.01 kWh), 0x5004 export, 0x5B14 total power (int32, 0.01 W)
  unit 3  charge controller: coil 400 enable, holding 100 CP state as
          index (0..5 = A..F), input 200 energy (uint32 Wh), input 202
          power (int32 W)
  unit 4  charge controller: holding 300 enable, input 100 CP state as
          ASCII ('A'..'F')

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
