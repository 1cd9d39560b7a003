// Bench snapshots: save captures the clock (time, pending events, RNG, trace position), the guest
// memory's non-zero touched pages, every device's state under its kind's type and stateVersion,
// and the machine. Restore is all-or-nothing: the whole file is parsed, checked and every device
// state upgraded and validated against the live bench before anything of the bench changes.
//
// Chunks (see container.ts for the container):
//   "machine"      json    v1  {name, spec}                 the MachineSpec the bench was built from
//   "clock"        json    v1  Clock.serialize()            (its own `version` field is checked too)
//   "memory"       binary  v1  u32 page size, u32 page count N, u64 guest memory size,
//                              N x u32 page index (ascending), N x page-size bytes of contents
//   "irq"          json    v1  [line, ...]                  interrupt lines currently high (optional
//                              on read: snapshots without it restore with every line low)
//   "device:<id>"  json    kind.stateVersion   toJSONValue(device.state)
import { closeSync, fstatSync, openSync, readFileSync, readSync, readvSync, renameSync, rmSync, writevSync } from "node:fs";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { fromJSONValue, toJSONValue, type Plain } from "../clock/canonical.ts";
import { validateClockState, type ClockState } from "../clock/clock.ts";
import { PAGE_SIZE } from "../memory/memory.ts";
import type { Bench, MachineSpec } from "../machine/bench.ts";
import { upgradeState, type PendingEvent } from "../machine/device.ts";
import { MachineChunkSchema, IrqChunkSchema, schemaIssue, specDifference } from "./schema.ts";
import {
  checksum, encodeContainer, fail, HEADER_SIZE, MAGIC, parseContainer, readManifest, verifyChunk, type ChecksumAlgorithm,
  type ChunkEntry, type ChunkInput, type EncodedContainer, type Manifest, type Result,
} from "./container.ts";

export const MACHINE_CHUNK_VERSION = 1;
export const CLOCK_CHUNK_VERSION = 1;
export const MEMORY_CHUNK_VERSION = 1;
export const IRQ_CHUNK_VERSION = 1;
const MEMORY_HEADER = 16;
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export const deviceChunkName = (id: string): string => `device:${id}`;

function json(v: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(v), "utf8");
}

function isZeroPage(p: Uint8Array): boolean {
  return Buffer.compare(p, ZERO_PAGE) === 0;
}

// ---- save ----

/**
 * Encodes the bench as snapshot pieces (header, manifest, chunks) without copying guest memory:
 * the memory chunk's pieces are the live pages, so write them out before the bench runs again.
 */
export function captureSnapshot(bench: Bench): EncodedContainer {
  const chunks: ChunkInput[] = [];
  chunks.push({ name: "machine", type: "machine", version: MACHINE_CHUNK_VERSION, encoding: "json", parts: [json({ name: bench.machine.name, spec: bench.machine })] });
  chunks.push({ name: "clock", type: "clock", version: CLOCK_CHUNK_VERSION, encoding: "json", parts: [json(bench.clock.serialize())] });
  const indices: number[] = [];
  const pages: Uint8Array[] = [];
  for (const [i, p] of bench.memory.touched()) {
    if (isZeroPage(p)) continue;
    indices.push(i);
    pages.push(p);
  }
  const head = Buffer.alloc(MEMORY_HEADER + 4 * indices.length);
  head.writeUInt32LE(PAGE_SIZE, 0);
  head.writeUInt32LE(indices.length, 4);
  head.writeBigUInt64LE(BigInt(bench.memory.size), 8);
  for (let k = 0; k < indices.length; k++) head.writeUInt32LE(indices[k]!, MEMORY_HEADER + 4 * k);
  chunks.push({ name: "memory", type: "memory", version: MEMORY_CHUNK_VERSION, encoding: "binary", parts: [head, ...pages], checksum: "crc32" });
  chunks.push({ name: "irq", type: "irq", version: IRQ_CHUNK_VERSION, encoding: "json", parts: [json(bench.irq.getState())] });
  for (const d of bench.devices()) {
    chunks.push({ name: deviceChunkName(d.id), type: d.kind.type, version: d.kind.stateVersion, encoding: "json", parts: [json(toJSONValue(d.state))] });
  }
  return encodeContainer(chunks, { machine: bench.machine.name, time: bench.clock.now, traceCount: bench.clock.trace.count, writer: "hvsim" });
}

/** The whole snapshot as one byte array. */
export function saveSnapshot(bench: Bench): Uint8Array {
  const e = captureSnapshot(bench);
  return Buffer.concat(e.parts, e.length);
}

/**
 * Writes the snapshot to `path` with one gathered write (no copy of guest memory), through a
 * temporary file renamed into place, so `path` never holds a partial snapshot. Returns its size.
 */
export function saveSnapshotFile(bench: Bench, path: string): number {
  const e = captureSnapshot(bench);
  const tmp = `${path}.partial`;
  const fd = openSync(tmp, "w");
  let done = false;
  try {
    let parts = e.parts;
    let left = e.length;
    while (left > 0) {
      let n = writevSync(fd, parts);
      if (n <= 0) throw new Error(`short write to ${path}`);
      left -= n;
      if (left === 0) break;
      // Partial write: drop what was written and go on with the rest.
      const rest: Uint8Array[] = [];
      for (const p of parts) {
        if (n >= p.length) n -= p.length;
        else {
          rest.push(n > 0 ? p.subarray(n) : p);
          n = 0;
        }
      }
      parts = rest;
    }
    done = true;
  } finally {
    closeSync(fd);
    if (!done) rmSync(tmp, { force: true });
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true }); // e.g. `path` is a directory: leave no *.partial behind
    throw err;
  }
  return e.length;
}

// ---- parse (no bench needed) ----

export interface SnapshotDevice {
  readonly id: string;
  readonly chunk: string;
  readonly type: string;
  readonly version: number;
  readonly state: Plain;
}

export interface SnapshotMemory {
  readonly size: number;
  readonly indices: Uint32Array;
  /**
   * Page k's contents: `data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE)` (a view into the
   * snapshot bytes); or, for a snapshot read from a file, `file`: where page 0 starts in it.
   */
  readonly data?: Uint8Array;
  readonly file?: { readonly fd: number; readonly position: number };
}

export interface ParsedSnapshot {
  readonly containerVersion: number;
  readonly chunks: readonly ChunkEntry[];
  readonly meta: Record<string, unknown>;
  readonly machine: { readonly name: string; readonly spec: MachineSpec };
  readonly clock: ClockState;
  readonly memory: SnapshotMemory;
  /** Interrupt lines that were high. */
  readonly irq: readonly number[];
  readonly devices: readonly SnapshotDevice[];
}

function parseJson(e: ChunkEntry, bytes: Uint8Array): Result<unknown> {
  if (e.encoding !== "json") return fail(e.name, `encoding is ${e.encoding}, expected json`);
  try {
    return { ok: true, value: JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) };
  } catch (err) {
    return fail(e.name, `not valid JSON: ${(err as Error).message}`);
  }
}

function tooNew(e: ChunkEntry, supported: number): Result<never> | undefined {
  if (e.version > supported) return fail(e.name, `${e.type} chunk version ${e.version} is newer than this hvsim reads (up to ${supported})`);
  if (e.version < 1) return fail(e.name, `invalid ${e.type} chunk version ${e.version}`);
  return undefined;
}

/** Reads the memory chunk's header and page index table from its first bytes (`head`). */
function parseMemoryHead(e: ChunkEntry, head: Uint8Array): Result<{ size: number; indices: Uint32Array; dataOffset: number }> {
  const v = tooNew(e, MEMORY_CHUNK_VERSION);
  if (v) return v;
  if (e.type !== "memory") return fail(e.name, `type is ${e.type}, expected memory`);
  if (e.encoding !== "binary") return fail(e.name, `encoding is ${e.encoding}, expected binary`);
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (e.length < MEMORY_HEADER || buf.length < MEMORY_HEADER) return fail(e.name, `${e.length} bytes is shorter than the ${MEMORY_HEADER}-byte memory header`);
  const pageSize = buf.readUInt32LE(0);
  if (pageSize !== PAGE_SIZE) return fail(e.name, `page size ${pageSize}, this hvsim uses ${PAGE_SIZE}`);
  const n = buf.readUInt32LE(4);
  const size = buf.readBigUInt64LE(8);
  if (size > BigInt(Number.MAX_SAFE_INTEGER) || size % BigInt(PAGE_SIZE) !== 0n) return fail(e.name, `guest memory size ${size} is not a whole number of pages`);
  const expected = MEMORY_HEADER + 4 * n + PAGE_SIZE * n;
  if (e.length !== expected) return fail(e.name, `${e.length} bytes, but ${n} pages need ${expected}`);
  if (buf.length < MEMORY_HEADER + 4 * n) return fail(e.name, "page index table cut short");
  const pages = Number(size) / PAGE_SIZE;
  const indices = new Uint32Array(n);
  let prev = -1;
  for (let k = 0; k < n; k++) {
    const i = buf.readUInt32LE(MEMORY_HEADER + 4 * k);
    if (i <= prev) return fail(e.name, `page indices are not strictly ascending at entry ${k}`);
    if (i >= pages) return fail(e.name, `page ${i} lies outside the ${size}-byte guest memory`);
    indices[k] = i;
    prev = i;
  }
  return { ok: true, value: { size: Number(size), indices, dataOffset: MEMORY_HEADER + 4 * n } };
}

/** Where decodeChunks gets verified chunk bytes from: a whole snapshot in memory, or a file. */
interface ChunkSource {
  /** The chunk's bytes, checksum verified. */
  bytes(e: ChunkEntry): Result<Uint8Array>;
  /** The memory chunk, checksum verified, its pages left where they are. */
  memory(e: ChunkEntry): Result<SnapshotMemory>;
}

function decodeChunks(version: number, manifest: Manifest, src: ChunkSource): Result<ParsedSnapshot> {
  let machine: ParsedSnapshot["machine"] | undefined;
  let clock: ClockState | undefined;
  let memory: SnapshotMemory | undefined;
  let irq: number[] = [];
  const devices: SnapshotDevice[] = [];
  for (const e of manifest.chunks) {
    if (e.name === "memory") {
      const m = src.memory(e);
      if (!m.ok) return m;
      memory = m.value;
      continue;
    }
    const v = src.bytes(e);
    if (!v.ok) return v;
    const b = v.value;
    if (e.name === "machine" || e.name === "clock") {
      if (e.type !== e.name) return fail(e.name, `type is ${e.type}, expected ${e.name}`);
      const old = tooNew(e, e.name === "machine" ? MACHINE_CHUNK_VERSION : CLOCK_CHUNK_VERSION);
      if (old) return old;
      const j = parseJson(e, b);
      if (!j.ok) return j;
      if (e.name === "machine") {
        const m = MachineChunkSchema.safeParse(j.value);
        if (!m.success) return fail(e.name, `not a machine description {name, spec}: ${schemaIssue(m.error)}`);
        if (m.data.spec.name !== m.data.name) return fail(e.name, `not a machine description {name, spec}: spec.name ${JSON.stringify(m.data.spec.name)} differs from name ${JSON.stringify(m.data.name)}`);
        machine = m.data as unknown as ParsedSnapshot["machine"];
      } else {
        const why = validateClockState(j.value);
        if (why) return fail(e.name, `invalid clock state: ${why}`);
        clock = j.value as ClockState;
      }
    } else if (e.name === "irq") {
      if (e.type !== "irq") return fail(e.name, `type is ${e.type}, expected irq`);
      const old = tooNew(e, IRQ_CHUNK_VERSION);
      if (old) return old;
      const j = parseJson(e, b);
      if (!j.ok) return j;
      const l = IrqChunkSchema.safeParse(j.value);
      if (!l.success || new Set(l.data).size !== l.data.length) return fail(e.name, "not a list of distinct interrupt line numbers");
      irq = l.data;
    } else if (e.name.startsWith("device:")) {
      const j = parseJson(e, b);
      if (!j.ok) return j;
      let state: Plain;
      try {
        state = fromJSONValue(j.value);
      } catch (err) {
        return fail(e.name, `state cannot be decoded: ${(err as Error).message}`);
      }
      devices.push({ id: e.name.slice("device:".length), chunk: e.name, type: e.type, version: e.version, state });
    } else {
      return fail(e.name, `unknown chunk (type ${e.type} v${e.version}): this hvsim cannot restore it`);
    }
  }
  if (!machine) return fail("machine", "missing: the snapshot has no machine chunk");
  if (!clock) return fail("clock", "missing: the snapshot has no clock chunk");
  if (!memory) return fail("memory", "missing: the snapshot has no memory chunk");
  return { ok: true, value: { containerVersion: version, chunks: manifest.chunks, meta: manifest.meta, machine, clock, memory, irq, devices } };
}

/**
 * Parses and verifies a snapshot without a bench: container, every checksum, chunk versions this
 * code can read, and the shape of the machine, clock and memory chunks. Device states are decoded
 * but not yet upgraded (that needs the device kinds: see prepareRestore).
 */
export function parseSnapshot(bytes: Uint8Array): Result<ParsedSnapshot> {
  const r = parseContainer(bytes);
  if (!r.ok) return r;
  const c = r.value;
  return decodeChunks(c.version, c.manifest, {
    bytes: (e) => verifyChunk(c, e),
    memory: (e) => {
      const v = verifyChunk(c, e);
      if (!v.ok) return v;
      const h = parseMemoryHead(e, v.value);
      if (!h.ok) return h;
      return { ok: true, value: { size: h.value.size, indices: h.value.indices, data: v.value.subarray(h.value.dataOffset) } };
    },
  });
}

// ---- restore ----

export interface RestoreOptions {
  /**
   * Install views into the snapshot bytes as guest pages instead of copies (no copy of guest
   * memory). Only when nothing else holds or reuses those bytes: the guest will write into them.
   */
  adoptPages?: boolean;
}

/** Everything a restore will install, fully checked against one bench. */
export interface PreparedRestore {
  readonly bench: Bench;
  readonly clock: ClockState;
  readonly memory: SnapshotMemory;
  readonly irq: readonly number[];
  readonly states: ReadonlyMap<string, Plain>;
  /** Device states that went through upgrades: id -> [from, to]. */
  readonly upgraded: ReadonlyMap<string, readonly [number, number]>;
}

/**
 * Checks a parsed snapshot against `bench` without changing it: same machine and memory size, the
 * same set of devices (id and type), every device state upgraded to its kind's stateVersion and
 * valid, the same machine description (each device's configuration), a handler on the bench for
 * every pending clock event, and each kind's cross-check of its state against the machine and the
 * snapshot's clock (DeviceKind.check).
 */
export function prepareRestore(bench: Bench, s: ParsedSnapshot): Result<PreparedRestore> {
  if (s.machine.name !== bench.machine.name) return fail("machine", `snapshot of machine ${s.machine.name} cannot be restored into machine ${bench.machine.name}`);
  if (s.memory.size !== bench.memory.size) return fail("memory", `guest memory size ${s.memory.size} differs from the bench's ${bench.memory.size}`);
  if (s.machine.spec.memory !== s.memory.size) return fail("machine", `the machine description says ${s.machine.spec.memory} bytes of guest memory, the memory chunk ${s.memory.size}`);
  const live = new Map(bench.devices().map((d) => [d.id, d]));
  const states = new Map<string, Plain>();
  const upgraded = new Map<string, readonly [number, number]>();
  for (const sd of s.devices) {
    const d = live.get(sd.id);
    if (!d) return fail(sd.chunk, `device ${sd.id} (${sd.type}) is not on machine ${bench.machine.name} (devices: ${[...live.keys()].join(", ") || "none"})`);
    if (d.kind.type !== sd.type) return fail(sd.chunk, `device ${sd.id} is a ${sd.type} in the snapshot but a ${d.kind.type} on the bench`);
    const kind = d.kind;
    const up = upgradeState(kind, sd.version, sd.state);
    if (!up.ok) return fail(sd.chunk, up.reason);
    states.set(sd.id, up.state);
    if (sd.version !== kind.stateVersion) upgraded.set(sd.id, [sd.version, kind.stateVersion]);
  }
  for (const id of live.keys()) {
    if (!states.has(id)) return fail(deviceChunkName(id), `missing: machine ${bench.machine.name} has device ${id} (${live.get(id)!.kind.type}) but the snapshot has no state for it`);
  }
  const diff = specDifference(s.machine.spec, bench.machine, (t) => bench.kinds.get(t)?.destinationConfig ?? []);
  if (diff) return fail("machine", `snapshot's machine differs from the bench's: ${diff}`);
  for (const p of s.clock.pending) {
    if (!bench.clock.hasHandler(p.target, p.kind)) return fail("clock", `pending event ${p.target}/${p.kind} (seq ${p.seq}) has no handler on this bench`);
  }
  // Cross-checks of each state against the machine and the clock it will run with.
  const pendingByTarget = new Map<string, PendingEvent[]>();
  for (const p of s.clock.pending) {
    const l = pendingByTarget.get(p.target);
    if (l) l.push(p);
    else pendingByTarget.set(p.target, [p]);
  }
  for (const spec of bench.machine.devices) {
    const d = live.get(spec.id)!;
    if (!d.kind.check) continue;
    let why: string | undefined;
    try {
      why = d.kind.check(states.get(spec.id), { bench, id: spec.id, spec, memorySize: bench.memory.size, clock: s.clock, pending: pendingByTarget.get(spec.id) ?? [], states });
    } catch (err) {
      why = `cannot be checked: ${(err as Error).message}`;
    }
    if (why) return fail(deviceChunkName(spec.id), `${d.kind.type} state does not fit this machine: ${why}`);
  }
  return { ok: true, value: { bench, clock: s.clock, memory: s.memory, irq: s.irq, states, upgraded } };
}

/** Installs a prepared restore: clock, memory, device states, then every device's afterRestore. */
export function applyRestore(p: PreparedRestore, opts: RestoreOptions = {}): void {
  const { bench, memory } = p;
  const n = memory.indices.length;
  const pages: Uint8Array[] = new Array(n);
  if (memory.file) {
    // Fill the bench's existing pages in place where it has them (no new memory), new pages
    // from one allocation; then one gathered read from the file.
    const live = new Map(bench.memory.touched());
    let missing = 0;
    for (let k = 0; k < n; k++) if (!live.has(memory.indices[k]!)) missing++;
    const fresh = missing ? new Uint8Array(missing * PAGE_SIZE) : undefined;
    let f = 0;
    for (let k = 0; k < n; k++) {
      const have = live.get(memory.indices[k]!);
      pages[k] = have ?? fresh!.subarray(f * PAGE_SIZE, ++f * PAGE_SIZE);
    }
    readPagesInto(memory.file.fd, memory.file.position, pages);
  } else {
    const data = memory.data!;
    for (let k = 0; k < n; k++) {
      const page = data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
      pages[k] = opts.adoptPages ? page : new Uint8Array(page);
    }
  }
  bench.clock.restore(p.clock);
  bench.memory.clear();
  for (let k = 0; k < n; k++) bench.memory.setPage(memory.indices[k]!, pages[k]!);
  bench.irq.setState(p.irq);
  for (const d of bench.devices()) d.state = p.states.get(d.id)!;
  for (const d of bench.devices()) d.afterRestore?.(bench, { fromSnapshot: true });
}

const IOV_BATCH = 1024;

function readPagesInto(fd: number, position: number, pages: Uint8Array[]): void {
  let pos = position;
  for (let i = 0; i < pages.length; i += IOV_BATCH) {
    let batch = pages.slice(i, i + IOV_BATCH);
    let want = batch.length * PAGE_SIZE;
    while (want > 0) {
      let got = readvSync(fd, batch, pos);
      if (got <= 0) throw new Error("snapshot file shrank while it was being restored");
      pos += got;
      want -= got;
      if (want === 0) break;
      const rest: Uint8Array[] = [];
      for (const p of batch) {
        if (got >= p.length) got -= p.length;
        else {
          rest.push(got > 0 ? p.subarray(got) : p);
          got = 0;
        }
      }
      batch = rest;
    }
  }
}
export interface RestoreSummary {
  readonly time: number;
  readonly pages: number;
  readonly upgraded: ReadonlyMap<string, readonly [number, number]>;
}

/** Restores `bytes` into `bench`: all or nothing. On error the bench is untouched. */
export function restoreSnapshot(bench: Bench, bytes: Uint8Array, opts: RestoreOptions = {}): Result<RestoreSummary> {
  const parsed = parseSnapshot(bytes);
  if (!parsed.ok) return parsed;
  const prep = prepareRestore(bench, parsed.value);
  if (!prep.ok) return prep;
  applyRestore(prep.value, opts);
  return { ok: true, value: { time: prep.value.clock.now, pages: prep.value.memory.indices.length, upgraded: prep.value.upgraded } };
}

/** Reads a snapshot file; a read error is a typed result naming the file. */
export function readSnapshotFile(path: string): Result<Uint8Array> {
  try {
    return { ok: true, value: readFileSync(path) };
  } catch (e) {
    return fail("file", `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

const SCRATCH = 8 << 20;

function readAt(fd: number, buf: Uint8Array, position: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n <= 0) break;
    done += n;
  }
  return done;
}

/** Checksums `length` bytes of the file at `position` through a small scratch buffer. */
function checksumFile(fd: number, alg: ChecksumAlgorithm, position: number, length: number): string {
  const scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH, Math.max(1, length)));
  let c = 0;
  const h = alg === "sha256" ? createHash("sha256") : undefined;
  for (let off = 0; off < length; off += scratch.length) {
    const n = Math.min(scratch.length, length - off);
    const got = readAt(fd, scratch.subarray(0, n), position + off);
    if (h) h.update(scratch.subarray(0, got));
    else c = crc32(scratch.subarray(0, got), c);
    if (got < n) break;
  }
  return h ? `sha256:${h.digest("hex")}` : `crc32:${(c >>> 0).toString(16).padStart(8, "0")}`;
}

/**
 * Parses and verifies the snapshot in an open file without reading guest memory into memory: small
 * chunks are read and checked; the memory chunk is checked through a small buffer and its pages are
 * left in the file for applyRestore to read straight into the bench's pages.
 */
export function parseSnapshotFile(fd: number): Result<ParsedSnapshot> {
  const size = fstatSync(fd).size;
  const head = Buffer.alloc(Math.min(size, HEADER_SIZE));
  readAt(fd, head, 0);
  let top = head;
  if (head.length === HEADER_SIZE && head.subarray(0, 8).toString("latin1") === MAGIC) {
    const mlen = head.readUInt32LE(12);
    if (mlen <= 64 << 20) {
      top = Buffer.alloc(Math.min(size, HEADER_SIZE + mlen));
      readAt(fd, top, 0);
    }
  }
  const r = readManifest(top);
  if (!r.ok) return r;
  const { manifest, dataStart, version } = r.value;
  for (const e of manifest.chunks) {
    const have = Math.max(0, Math.min(e.length, size - dataStart - e.offset));
    if (have === 0 && e.length > 0) return fail(e.name, `missing: the file ends before this chunk (${e.length} bytes expected)`);
    if (have < e.length) return fail(e.name, `truncated: ${have} of ${e.length} bytes present`);
  }
  const extra = size - dataStart - manifest.dataLength;
  if (extra > 0) return fail("file", `${extra} unexpected bytes after the last chunk`);
  const verify = (e: ChunkEntry, got: string): Result<void> =>
    got === e.checksum ? { ok: true, value: undefined } : fail(e.name, `checksum mismatch (manifest says ${e.checksum.slice(0, 23)}…, contents give ${got.slice(0, 23)}…)`);
  const algOf = (e: ChunkEntry) => e.checksum.slice(0, e.checksum.indexOf(":")) as ChecksumAlgorithm;
  return decodeChunks(version, manifest, {
    bytes: (e) => {
      const b = Buffer.allocUnsafe(e.length);
      readAt(fd, b, dataStart + e.offset);
      const v = verify(e, checksum(algOf(e), [b]));
      return v.ok ? { ok: true, value: b } : v;
    },
    memory: (e) => {
      const v = verify(e, checksumFile(fd, algOf(e), dataStart + e.offset, e.length));
      if (!v.ok) return v;
      const n = e.length >= MEMORY_HEADER ? (() => {
        const h = Buffer.alloc(MEMORY_HEADER);
        readAt(fd, h, dataStart + e.offset);
        return h.readUInt32LE(4);
      })() : 0;
      const headLen = Math.min(e.length, MEMORY_HEADER + 4 * n);
      const h = Buffer.alloc(headLen);
      readAt(fd, h, dataStart + e.offset);
      const m = parseMemoryHead(e, h);
      if (!m.ok) return m;
      return { ok: true, value: { size: m.value.size, indices: m.value.indices, file: { fd, position: dataStart + e.offset + m.value.dataOffset } } };
    },
  });
}

/**
 * Restores the snapshot in `path` into `bench`: all or nothing, like restoreSnapshot. Guest memory
 * is verified through a small buffer and then read straight into the bench's pages (its existing
 * pages are reused in place), so a large memory is never held twice. The file must not change
 * while this runs: pages are read a second time after verification.
 */
export function restoreSnapshotFile(bench: Bench, path: string): Result<RestoreSummary> {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    return fail("file", `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const parsed = parseSnapshotFile(fd);
    if (!parsed.ok) return parsed;
    const prep = prepareRestore(bench, parsed.value);
    if (!prep.ok) return prep;
    applyRestore(prep.value);
    return { ok: true, value: { time: prep.value.clock.now, pages: prep.value.memory.indices.length, upgraded: prep.value.upgraded } };
  } finally {
    closeSync(fd);
  }
}
