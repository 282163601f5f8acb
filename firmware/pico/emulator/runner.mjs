// Runs perfkit's RP2040 firmware on rp2040js, in lockstep with a host driver.
//
// rp2040js models the RP2040 but moves UART bytes instantly: no baud timing,
// no TX FIFO, and an RX FIFO that never overflows the way hardware does. This
// runner puts the link back in, in the emulator's virtual time (125 MHz
// cycles, the clock the firmware sees):
//
// - host -> device: bytes the host writes are queued on a virtual wire and
//   arrive one character time apart (bits_per_char / baud); an arriving byte
//   goes into the 32-entry RX FIFO, or is lost and counted as an overrun when
//   the FIFO is full (the firmware was too slow), as on hardware;
// - device -> host: a write to UARTDR goes into a 32-entry TX FIFO drained
//   by a shift register at the baud rate; UARTFR shows TXFF/TXFE/BUSY so the
//   firmware blocks exactly as long as on hardware; each byte is reported to
//   the host with the virtual time its stop bit ends;
// - interrupts as the PL011 raises them: RX when the RX FIFO reaches the
//   UARTIFLS level, RX timeout when it holds bytes and nothing arrived for 32
//   bit periods, TX when the TX FIFO drains to its level. Firmware that
//   sleeps (WFI) until then costs the emulator nothing while it waits.
//
// Lockstep protocol on stdin/stdout, one command per line, all times in
// cycles of the 125 MHz clock since reset:
//   host:   tx <hex>            queue bytes on the host -> device wire now
//           run <until>         run the firmware until virtual time <until>
//           read <addr> <len>   read device memory (SRAM or flash)
//           state               registers, for debugging
//           quit
//   runner: rx <t> <hex>        one line per device byte run: <t> is when the
//                               first byte of the run ends; bytes follow each
//                               other back to back (one char time apart)
//           now <t> <overruns> <wire_backlog>   end of a `run`
//           mem <hex>           answer to `read`
//           fault <message>     the firmware stopped (breakpoint, lockup)
//           error <message>     bad command
// Usage: node runner.mjs --elf FILE [--baud 115200] [--bits-per-char 10]

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { RP2040, ConsoleLogger, LogLevel } from 'rp2040js';

const CPU_HZ = 125_000_000;
const NANOS_PER_CYCLE = 1e9 / CPU_HZ;
const FIFO_DEPTH = 32;
const FLASH_START = 0x10000000;
const SRAM_START = 0x20000000;

// UARTFR bits.
const FR_TXFE = 1 << 7;
const FR_RXFF = 1 << 6;
const FR_TXFF = 1 << 5;
const FR_RXFE = 1 << 4;
const FR_BUSY = 1 << 3;
const UARTDR = 0x0;
const UARTRSR = 0x4;
const UARTIFLS = 0x34;
// Interrupt status bits (UARTRIS).
const INT_RT = 1 << 6;
const INT_TX = 1 << 5;
const INT_RX = 1 << 4;
// FIFO level select (UARTIFLS) -> entries: 1/8, 1/4, 1/2, 3/4, 7/8 of 32.
const LEVELS = [4, 8, 16, 24, 28];

function parseArgs(argv) {
  const args = { elf: null, baud: 115200, bitsPerChar: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--elf') { args.elf = v; i++; }
    else if (a === '--baud') { args.baud = Number(v); i++; }
    else if (a === '--bits-per-char') { args.bitsPerChar = Number(v); i++; }
    else { throw new Error(`unknown argument ${a}`); }
  }
  if (!args.elf) throw new Error('missing --elf FILE');
  if (!(args.baud > 0) || !(args.bitsPerChar > 0)) throw new Error('bad --baud or --bits-per-char');
  return args;
}

// Copies the ELF's PT_LOAD segments to their load (physical) addresses.
export function loadElf(mcu, bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 52 || dv.getUint32(0, false) !== 0x7f454c46) throw new Error('not an ELF file');
  if (bytes[4] !== 1 || bytes[5] !== 1) throw new Error('not a 32-bit little-endian ELF');
  const phoff = dv.getUint32(28, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  let loaded = 0;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 32 > bytes.length) throw new Error('program header past end of file');
    if (dv.getUint32(ph, true) !== 1) continue; // PT_LOAD
    const offset = dv.getUint32(ph + 4, true);
    const paddr = dv.getUint32(ph + 12, true);
    const filesz = dv.getUint32(ph + 16, true);
    if (filesz === 0) continue;
    if (offset + filesz > bytes.length) throw new Error('segment past end of file');
    const data = bytes.subarray(offset, offset + filesz);
    if (paddr >= FLASH_START && paddr + filesz <= FLASH_START + mcu.flash.length) {
      mcu.flash.set(data, paddr - FLASH_START);
    } else if (paddr >= SRAM_START && paddr + filesz <= SRAM_START + mcu.sram.length) {
      mcu.sram.set(data, paddr - SRAM_START);
    } else {
      throw new Error(`segment at 0x${paddr.toString(16)} is outside flash and SRAM`);
    }
    loaded++;
  }
  if (loaded === 0) throw new Error('no loadable segment');
}

class PacedUart {
  constructor(mcu, clock, uart, charCycles, out) {
    this.mcu = mcu;
    this.clock = clock;
    this.uart = uart;
    this.charNanos = charCycles * NANOS_PER_CYCLE;
    this.out = out;
    // device -> host
    this.txFifo = [];
    this.shifting = false;
    this.txRun = null; // { t, bytes } being collected for one `rx` line
    this.txAlarm = clock.createAlarm(() => this.txDone());
    // host -> device
    this.wire = [];
    this.wireFreeAt = 0; // nanos when the last queued byte has arrived
    this.rxAlarm = clock.createAlarm(() => this.rxArrive());
    this.overruns = 0;
    this.overrunFlag = false;
    this.ifls = 0x12; // reset value: both levels 1/2
    this.bitNanos = this.charNanos / 10;
    this.rtAlarm = clock.createAlarm(() => this.rxTimeout());
    this.patch();
    this.updateTxInterrupt();
  }

  patch() {
    const self = this;
    const uart = this.uart;
    const rxFifo = uart.rxFIFO;
    Object.defineProperty(uart, 'flags', {
      get() {
        let f = 0;
        if (rxFifo.full) f |= FR_RXFF;
        if (rxFifo.empty) f |= FR_RXFE;
        if (self.txFifo.length >= FIFO_DEPTH) f |= FR_TXFF;
        if (self.txFifo.length === 0) f |= FR_TXFE;
        if (self.shifting || self.txFifo.length > 0) f |= FR_BUSY;
        return f;
      },
    });
    const write = uart.writeUint32.bind(uart);
    uart.writeUint32 = (offset, value) => {
      if (offset === UARTDR) {
        self.txWrite(value & 0xff);
      } else if (offset === UARTRSR) {
        self.overrunFlag = false;
      } else if (offset === UARTIFLS) {
        self.ifls = value & 0x3f;
        self.updateTxInterrupt();
        self.updateRxInterrupt();
      } else {
        write(offset, value);
      }
    };
    // rp2040js 1.4.1 raises the TX interrupt on every check (no TX FIFO
    // model); here the TX bit follows the modelled FIFO level instead.
    uart.checkInterrupts = () => {
      self.mcu.setInterrupt(uart.irq, !!(uart.interruptStatus & uart.interruptMask));
    };
    const read = uart.readUint32.bind(uart);
    uart.readUint32 = (offset) => {
      if (offset === UARTRSR) return self.overrunFlag ? 1 << 3 : 0;
      if (offset === UARTIFLS) return self.ifls;
      if (offset === UARTDR) {
        const v = rxFifo.pull();
        self.updateRxInterrupt();
        return v;
      }
      return read(offset);
    };
  }

  setStatus(bit, on) {
    const u = this.uart;
    const before = u.interruptStatus;
    u.interruptStatus = on ? before | bit : before & ~bit;
    if (u.interruptStatus !== before) u.checkInterrupts();
  }

  txLevel() {
    return LEVELS[(this.ifls & 7) % LEVELS.length];
  }

  rxLevel() {
    return LEVELS[((this.ifls >> 3) & 7) % LEVELS.length];
  }

  // TX interrupt: asserted while the TX FIFO holds no more than its level.
  updateTxInterrupt() {
    this.setStatus(INT_TX, this.txFifo.length <= this.txLevel());
  }

  // RX interrupt: asserted while the RX FIFO holds at least its level
  // (cleared by reading below it, as on the PL011).
  updateRxInterrupt() {
    const fifo = this.uart.rxFIFO;
    if (fifo.itemCount >= this.rxLevel()) this.setStatus(INT_RX, true);
    else this.setStatus(INT_RX, false);
    if (fifo.empty) this.setStatus(INT_RT, false);
  }

  rxTimeout() {
    if (!this.uart.rxFIFO.empty) this.setStatus(INT_RT, true);
  }

  rxDepth() {
    return this.uart.fifosEnabled ? FIFO_DEPTH : 1;
  }

  // Device writes a byte: into the TX FIFO, or lost when it is full (as on
  // the PL011; firmware is expected to check TXFF first).
  txWrite(b) {
    if (!this.shifting) {
      this.shifting = true;
      this.shiftByte = b;
      this.txAlarm.schedule(this.charNanos);
    } else if (this.txFifo.length < FIFO_DEPTH) {
      this.txFifo.push(b);
    }
    this.updateTxInterrupt();
  }

  txDone() {
    const t = this.clock.nanos;
    this.emit(t, this.shiftByte);
    if (this.txFifo.length > 0) {
      this.shiftByte = this.txFifo.shift();
      this.txAlarm.schedule(this.charNanos);
    } else {
      this.shifting = false;
    }
    this.updateTxInterrupt();
  }

  emit(tNanos, b) {
    const run = this.txRun;
    if (run && Math.abs(run.t + run.bytes.length * this.charNanos - tNanos) < 1) {
      run.bytes.push(b);
    } else {
      this.flushTx();
      this.txRun = { t: tNanos, bytes: [b] };
    }
  }

  flushTx() {
    const run = this.txRun;
    if (!run) return;
    this.txRun = null;
    this.out(`rx ${Math.round(run.t / NANOS_PER_CYCLE)} ${Buffer.from(run.bytes).toString('hex')}`);
  }

  // Host writes bytes: they go on the wire after whatever is still queued.
  hostWrite(bytes) {
    const now = this.clock.nanos;
    let t = Math.max(now, this.wireFreeAt);
    for (const b of bytes) {
      t += this.charNanos;
      this.wire.push({ t, b });
    }
    this.wireFreeAt = t;
    // (Re)schedule for the head of the wire: rp2040js leaves `scheduled` set
    // after an alarm fires, so it cannot tell whether one is pending.
    if (this.wire.length > 0) this.rxAlarm.schedule(this.wire[0].t - now);
  }

  rxArrive() {
    const now = this.clock.nanos;
    while (this.wire.length > 0 && this.wire[0].t <= now + 0.5) {
      const { b } = this.wire.shift();
      const fifo = this.uart.rxFIFO;
      if (fifo.itemCount >= this.rxDepth() || fifo.full) {
        this.overruns++;
        this.overrunFlag = true;
      } else {
        // Not feedByte(): it raises the RX interrupt on every byte.
        fifo.push(b);
      }
    }
    this.updateRxInterrupt();
    this.rtAlarm.schedule(32 * this.bitNanos);
    if (this.wire.length > 0) this.rxAlarm.schedule(this.wire[0].t - now);
  }

  wireBacklog() {
    return this.wire.length;
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const elf = readFileSync(args.elf);
  // The default clock is rp2040js's SimulationClock: virtual nanoseconds.
  const mcu = new RP2040();
  const clock = mcu.clock;
  mcu.logger = new ConsoleLogger(LogLevel.Error);
  loadElf(mcu, new Uint8Array(elf.buffer, elf.byteOffset, elf.byteLength));
  mcu.core.PC = FLASH_START;
  mcu.core.SP = 0x20042000;

  const lines = [];
  const out = (line) => lines.push(line);
  const flushOut = () => {
    if (lines.length > 0) {
      process.stdout.write(lines.join('\n') + '\n');
      lines.length = 0;
    }
  };
  const charCycles = (args.bitsPerChar * CPU_HZ) / args.baud;
  const link = new PacedUart(mcu, clock, mcu.uart[0], charCycles, out);
  let fault = null;
  mcu.onBreak = (code) => {
    fault = `breakpoint ${code} at pc 0x${(mcu.core.PC >>> 0).toString(16)}`;
  };

  const core = mcu.core;
  function runUntil(targetCycles) {
    const target = targetCycles * NANOS_PER_CYCLE;
    while (clock.nanos < target && fault === null) {
      if (core.waiting) {
        const dt = clock.nanosToNextAlarm;
        if (dt <= 0 || clock.nanos + dt > target) {
          clock.tick(target - clock.nanos);
        } else {
          clock.tick(dt);
        }
      } else {
        const cycles = core.executeInstruction();
        clock.tick(cycles * NANOS_PER_CYCLE);
      }
    }
  }

  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    const [cmd, a, b] = line.trim().split(/\s+/);
    try {
      if (cmd === 'tx') {
        if (a && (a.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(a))) throw new Error('tx: bad hex');
        link.hostWrite(Buffer.from(a ?? '', 'hex'));
      } else if (cmd === 'run') {
        const until = Number(a);
        if (!Number.isFinite(until)) throw new Error('run: bad time');
        if (fault === null) {
          try {
            runUntil(until);
          } catch (e) {
            fault = `emulator: ${e.message}`;
          }
        }
        link.flushTx();
        if (fault !== null) out(`fault ${fault}`);
        out(`now ${Math.round(clock.nanos / NANOS_PER_CYCLE)} ${link.overruns} ${link.wireBacklog()}`);
      } else if (cmd === 'read') {
        const addr = Number(a);
        const len = Number(b);
        let mem;
        if (addr >= SRAM_START && addr + len <= SRAM_START + mcu.sram.length) {
          mem = mcu.sram.subarray(addr - SRAM_START, addr - SRAM_START + len);
        } else if (addr >= FLASH_START && addr + len <= FLASH_START + mcu.flash.length) {
          mem = mcu.flash.subarray(addr - FLASH_START, addr - FLASH_START + len);
        } else {
          throw new Error(`read: 0x${addr.toString(16)}+${len} is outside SRAM and flash`);
        }
        out(`mem ${Buffer.from(mem).toString('hex')}`);
      } else if (cmd === 'state') {
        out(`state pc=0x${(core.PC >>> 0).toString(16)} sp=0x${(core.SP >>> 0).toString(16)} ` +
          `lr=0x${(core.LR >>> 0).toString(16)} waiting=${core.waiting} pm=${core.PM} ` +
          `pending=0x${core.pendingInterrupts.toString(16)} enabled=0x${core.enabledInterrupts.toString(16)} ` +
          `uart_ris=0x${mcu.uart[0].interruptStatus.toString(16)} uart_imsc=0x${mcu.uart[0].interruptMask.toString(16)} ` +
          `txfifo=${link.txFifo.length} shifting=${link.shifting}`);
      } else if (cmd === 'quit') {
        flushOut();
        process.exit(0);
      } else if (cmd !== undefined && cmd !== '') {
        throw new Error(`unknown command ${cmd}`);
      }
    } catch (e) {
      out(`error ${e.message}`);
    }
    flushOut();
  });
  rl.on('close', () => {
    flushOut();
    process.exit(0);
  });
}

try {
  main();
} catch (e) {
  process.stdout.write(`fault ${e.message}\n`);
  process.exit(2);
}
