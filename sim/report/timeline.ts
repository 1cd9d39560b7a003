// The scenario timeline: lanes built from trace records (sim/clock/trace.ts and what devices
// record), on a virtual-time axis from 0 (the scenario start).
//   - 32-bit port reads of a device: a value series (a drop between reads is a wrap);
//   - every other port access, fault, memory access and clock event: marks in its device's lane;
//   - interrupts: one row per line, raise and lower;
//   - vmgenid: generations (GUID writes) as bands, notifications and the guest driver's reseeds;
//   - Hyper-V: a sequence lane with rows host / kernel (hv_utils) / daemon, one arrow per hop of
//     each transaction (host → kernel → daemon → kernel → host), faults marked;
//   - vmm: one row per ioctl, waiting for a lock and holding it (running) as spans;
//   - save/restore: vertical markers (from the scenario's notes); what runs after a restore is
//     drawn offset and lighter, since virtual time jumps back to the saved time.
import type { TraceRecord } from "../clock/trace.ts";
import type { Plain } from "../clock/canonical.ts";
import { esc, n1 } from "./text.ts";

/** A save or restore step; `index` = trace records appended before it. */
export interface SnapshotMarker {
  readonly at: number;
  readonly kind: "save" | "restore";
  readonly label: string;
  readonly index: number;
}

export const LEGEND = {
  "io-in": { color: "#2f6fde", text: "port read" },
  "io-out": { color: "#d9822b", text: "port write" },
  "io-fault": { color: "#c23b3b", text: "port access fault" },
  mem: { color: "#138496", text: "guest memory access" },
  event: { color: "#7d8597", text: "device clock event" },
  "dev-state": { color: "#7a4fd1", text: "device state change" },
  "irq-raise": { color: "#c23b3b", text: "IRQ raised" },
  "irq-lower": { color: "#1f9d55", text: "IRQ lowered" },
  "vmgenid-gen": { color: "#e9e2fb", text: "vmgenid generation (GUID written)" },
  "vmgenid-notify": { color: "#7a4fd1", text: "vmgenid notification (ACPI Notify / driver)" },
  "vmgenid-reseed": { color: "#d9822b", text: "guest driver reseed" },
  "hv-send": { color: "#2f6fde", text: "host → kernel (request)" },
  "hv-req": { color: "#138496", text: "kernel → daemon (read)" },
  "hv-ans": { color: "#1f9d55", text: "daemon → kernel (answer write)" },
  "hv-reply": { color: "#7a4fd1", text: "kernel → host (answer)" },
  "hv-state": { color: "#7d8597", text: "Hyper-V state (open, register, negotiate)" },
  "hv-fault": { color: "#c23b3b", text: "timeout / crash / refused write" },
  "vmm-ctl": { color: "#2f6fde", text: "vmm open / create / destroy" },
  "vmm-wait": { color: "#f0c36d", text: "ioctl waiting for a lock" },
  "vmm-hold": { color: "#1f9d55", text: "ioctl holding its lock (running)" },
  "vmm-err": { color: "#c23b3b", text: "ioctl or call failed (errno)" },
  other: { color: "#5b6475", text: "other record" },
} as const;
export type LegendKey = keyof typeof LEGEND;

export interface Glyph {
  readonly at: number;
  end?: number;
  readonly row: number;
  readonly key: LegendKey;
  readonly label: string;
  readonly epoch: number;
}

export interface Arrow {
  readonly from: number;
  readonly to: number;
  readonly fromRow: number;
  readonly toRow: number;
  readonly key: LegendKey;
  readonly label: string;
  readonly epoch: number;
}

export interface Lane {
  readonly name: string;
  readonly kind: "series" | "marks" | "sequence";
  readonly rows: string[];
  readonly points: { at: number; value: number; epoch: number }[];
  readonly glyphs: Glyph[];
  readonly arrows: Arrow[];
}

const str = (v: Plain | undefined) => (v === null || v === undefined ? "" : typeof v === "object" ? "" : String(v));
const obj = (v: Plain | undefined): Record<string, Plain> => (v && typeof v === "object" && !Array.isArray(v) && !("$hex" in v) ? (v as Record<string, Plain>) : {});
const hex = (v: Plain | undefined) => (typeof v === "number" ? `0x${v.toString(16)}` : str(v));

const HV_FAULTS = new Set(["timeout", "daemon-crash", "write-refused", "daemon-write-failed", "host-unexpected-answer"]);

/** Splits a trace into plot lanes (see the file comment). */
export function lanesFromTrace(records: readonly TraceRecord[], markers: readonly SnapshotMarker[] = []): Lane[] {
  const lanes = new Map<string, Lane>();
  const lane = (name: string, kind: Lane["kind"] = "marks", rows: string[] = [""]): Lane => {
    let l = lanes.get(name);
    if (!l) lanes.set(name, (l = { name, kind, rows, points: [], glyphs: [], arrows: [] }));
    return l;
  };
  const rowOf = (l: Lane, label: string) => {
    let i = l.rows.indexOf(label);
    if (i < 0) {
      if (l.rows.length === 1 && l.rows[0] === "" && !l.glyphs.length) l.rows.pop();
      i = l.rows.push(label) - 1;
    }
    return i;
  };
  const hvIds = new Set<string>(), vmmIds = new Set<string>();
  // A register read at least three times is a value series; fewer reads are marks.
  const reads = new Map<string, number>();
  const seriesKey = (f: readonly Plain[]) =>
    f[0] === "in" && f[2] === 4 && typeof f[3] === "number" && typeof f[1] === "number" && f[4] !== null ? `${str(f[4])} port 0x${f[1].toString(16)} (read)` : undefined;
  for (const r of records) {
    const k = r.type === "io" ? seriesKey(r.fields) : undefined;
    if (k) reads.set(k, (reads.get(k) ?? 0) + 1);
    if (r.type === "hyperv") hvIds.add(str(r.fields[0]));
    else if (r.type === "vmm") vmmIds.add(str(r.fields[0]));
  }
  const restores = markers.filter((m) => m.kind === "restore").map((m) => m.index).sort((a, b) => a - b);
  let epoch = 0;

  // Hyper-V transaction bookkeeping, keyed "service#id".
  const HV = "Hyper-V (host ⇄ kernel ⇄ daemon)";
  const hvRows = ["host", "kernel (hv_utils)", "kvp daemon", "vss daemon"];
  const hvRow = (id: string, service: string) => (id === "host" ? 0 : id.endsWith("-daemon") ? (id.startsWith("vss") || (id === "daemon" && service === "vss") ? 3 : 2) : 1);
  const sent = new Map<string, { at: number; what: string }>();
  const pendingRead = new Map<string, string>();
  const readBy = new Map<string, string>();
  const lastWrite = new Map<string, number>();
  const readAt = new Map<string, number>();
  const answered = new Map<string, number>();
  // vmm ioctl bookkeeping, by op id.
  const VMM = "vmm (ioctls and locks)";
  const ops = new Map<number, { row: number; waitFrom?: number; waitOn?: string; holdFrom?: number; name: string }>();
  const vmmOp = (op: number, name: string, caller = "") => {
    let o = ops.get(op);
    if (!o) ops.set(op, (o = { row: rowOf(lane(VMM, "marks", ["vmmctl"]), `#${op} ${name}${caller ? ` (${caller})` : ""}`), name }));
    return o;
  };
  let generation = 0;

  records.forEach((r, i) => {
    while (epoch < restores.length && restores[epoch]! <= i) epoch += 1;
    const f = r.fields;
    const at = r.at;
    const g = (l: Lane, row: number, key: LegendKey, label: string, end?: number) => l.glyphs.push({ at, row, key, label, epoch, ...(end !== undefined ? { end } : {}) });
    switch (r.type) {
      case "io": {
        const [dir, port, size, value, owner] = f;
        const k = seriesKey(f);
        if (k && (reads.get(k) ?? 0) >= 3 && typeof value === "number") {
          lane(k, "series").points.push({ at, value, epoch });
        } else {
          const l = lane(owner === null ? "unclaimed ports" : `${str(owner)} (ports)`);
          g(l, 0, dir === "in" ? "io-in" : "io-out", `${str(dir)}${str(size) === "1" ? "b" : str(size) === "2" ? "w" : "l"} ${hex(port)} = ${hex(value)}`);
        }
        return;
      }
      case "io-fault":
        g(lane(f[4] === null || f[4] === undefined ? "unclaimed ports" : `${str(f[4])} (ports)`), 0, "io-fault", `${str(f[0])} ${hex(f[1])} size ${str(f[2])}: errno ${str(f[3])}`);
        return;
      case "mem":
        g(lane("guest memory"), 0, "mem", `${str(f[0])} ${hex(f[1])}`);
        return;
      case "irq": {
        const l = lane("interrupts", "marks", []);
        g(l, rowOf(l, `IRQ ${str(f[1])}${f[2] !== undefined ? ` (${str(f[2])})` : ""}`), f[0] === "raise" ? "irq-raise" : "irq-lower", `IRQ ${str(f[1])} ${str(f[0])}`);
        return;
      }
      case "vmgenid-write": {
        const l = lane("vmgenid", "marks", ["generation", "notify", "guest driver"]);
        generation += 1;
        for (const x of l.glyphs) if (x.key === "vmgenid-gen" && x.end === undefined) x.end = at;
        g(l, 0, "vmgenid-gen", `generation ${generation}: ${str(f[2])}`);
        return;
      }
      case "vmgenid-notify":
      case "vmgenid-reseed": {
        const l = lane("vmgenid", "marks", ["generation", "notify", "guest driver"]);
        g(l, 2, r.type === "vmgenid-notify" ? "vmgenid-notify" : "vmgenid-reseed", `${r.type.slice(8)} ${str(f[1])}`);
        return;
      }
      case "hyperv": {
        const l = lane(HV, "sequence", hvRows);
        const [id, what, service] = [str(f[0]), str(f[1]), str(f[2])];
        const key = `${service}#${str(f[3])}`;
        const row = hvRow(id, service);
        if (what === "host-send") sent.set(key, { at, what: `${str(f[4])}${f[5] !== undefined && f[5] !== -1 ? ` op ${str(f[5])}` : ""}` });
        else if (what === "host-request") pendingRead.set(service, key);
        // A timed-out request is answered by the kernel itself: no daemon → kernel hop.
        else if (what === "timeout") readBy.delete(service);
        else if (what === "answer") {
          const w = lastWrite.get(service);
          if (readBy.get(service) === key && w !== undefined && w >= (readAt.get(service) ?? 0)) {
            l.arrows.push({ from: w, to: at, fromRow: service === "vss" ? 3 : 2, toRow: 1, key: "hv-ans", label: `${key} answer, status ${hex(f[4])}`, epoch });
            readBy.delete(service);
          }
          answered.set(key, at);
        } else if (what === "host-answer") {
          const a = answered.get(key);
          l.arrows.push({ from: a ?? at, to: at, fromRow: 1, toRow: 0, key: "hv-reply", label: `${key} answered, status ${hex(f[4])}`, epoch });
          answered.delete(key);
        }
        if (!["host-send", "host-request", "answer", "host-answer"].includes(what)) {
          g(l, row, HV_FAULTS.has(what) ? "hv-fault" : "hv-state", `${id}: ${what} ${f.slice(2).map(str).join(" ")}`.trim());
        }
        return;
      }
      case "vmm": {
        const l = lane(VMM, "marks", ["vmmctl"]);
        const what = str(f[1]);
        if (what === "ioctl-start") vmmOp(f[2] as number, str(f[4]), str(f[3]));
        else if (what === "destroy-start") vmmOp(f[4] as number, "VMMCTL_VM_DESTROY", `destroy ${str(f[3])}`);
        else if (what === "wait") {
          const o = vmmOp(f[2] as number, "?");
          o.waitFrom = at;
          o.waitOn = str(f[3]);
        } else if (what === "run" || what === "ioctl-done") {
          const o = vmmOp(f[2] as number, str(f[3]));
          if (o.waitFrom !== undefined) {
            l.glyphs.push({ at: o.waitFrom, end: at, row: o.row, key: "vmm-wait", label: `#${str(f[2])} ${o.name} waits for ${o.waitOn ?? "?"}`, epoch });
            o.waitFrom = undefined;
          }
          if (what === "run") o.holdFrom = at;
          else {
            if (o.holdFrom !== undefined) l.glyphs.push({ at: o.holdFrom, end: at, row: o.row, key: "vmm-hold", label: `#${str(f[2])} ${o.name} holds its lock`, epoch });
            o.holdFrom = undefined;
            if (f[4] !== 0) g(l, o.row, "vmm-err", `#${str(f[2])} ${o.name} failed: errno ${str(f[4])}`);
          }
        } else if (what === "vcpu-alloc" || what === "vm-destroy-pending") {
          // Shown by the op's row; still a mark so nothing recorded goes unplotted.
          g(l, 0, "vmm-ctl", `${what} ${f.slice(2).map(str).join(" ")}`);
        } else {
          const errno = what === "open-fail" ? 1 : what === "ioctl" ? f[5] : what === "vm-create" || what === "vm-destroy" ? f[4] : 0;
          g(l, 0, typeof errno === "number" && errno !== 0 ? "vmm-err" : "vmm-ctl", `${what} ${f.slice(2).map(str).join(" ")}`);
        }
        return;
      }
      case "event": {
        const target = str(f[0]), kind = str(f[1]), p = obj(f[3]);
        if (hvIds.has(target) || target === "host" || target === "hv-utils" || target.endsWith("-daemon")) {
          const l = lane(HV, "sequence", hvRows);
          const service = str(p.service);
          if (target === "hv-utils" && kind === "vmbus.rx") {
            const key = `${service}#${str(p.id)}`;
            const s = sent.get(key);
            if (s) l.arrows.push({ from: s.at, to: at, fromRow: 0, toRow: 1, key: "hv-send", label: `${key} ${s.what}`, epoch });
            sent.delete(key);
          } else if (target.endsWith("-daemon") && kind === "hvt.result" && p.call === "read" && pendingRead.has(service)) {
            const key = pendingRead.get(service)!;
            const rx = lanes.get(HV)!.arrows.findLast((a) => a.key === "hv-send" && a.label.startsWith(`${key} `));
            l.arrows.push({ from: rx?.to ?? at, to: at, fromRow: 1, toRow: hvRow(target, service), key: "hv-req", label: `${key} read by ${target}`, epoch });
            pendingRead.delete(service);
            readBy.set(service, key);
            readAt.set(service, at);
          } else if (target === "hv-utils" && kind === "hvt.call" && p.call === "write" && typeof p.from === "string" && p.from.endsWith("-daemon")) {
            lastWrite.set(service, at);
          }
          return;
        }
        if (vmmIds.has(target)) {
          const op = obj(f[3]).op;
          const o = typeof op === "number" ? ops.get(op) : undefined;
          g(lane(VMM, "marks", ["vmmctl"]), o?.row ?? 0, "event", `${kind} op ${str(op)}`);
          return;
        }
        if (target.includes("vmgenid")) {
          const l = lane("vmgenid", "marks", ["generation", "notify", "guest driver"]);
          g(l, target === "vmgenid" ? 1 : 2, "vmgenid-notify", `${target} ${kind}${p.generation !== undefined ? ` generation ${str(p.generation)}` : ""}`);
          return;
        }
        g(lane(`${target} (events)`), 0, "event", `${kind}${Object.keys(p).length ? ` ${JSON.stringify(p)}` : ""}`);
        return;
      }
      case "fwcfg-dma":
      case "acpi-sleep":
        g(lane(`${str(f[0])} (ports)`), 0, "dev-state", `${r.type} ${f.slice(1).map(str).join(" ")}`);
        return;
      default:
        g(lane(r.type), 0, "other", f.map(str).join(" "));
    }
  });
  // Hyper-V first after the value series, then the rest in order of appearance.
  const all = [...lanes.values()];
  const rank = (l: Lane) => (l.kind === "series" ? 0 : l.kind === "sequence" ? 1 : 2);
  return all.map((l, i) => ({ l, i })).sort((a, b) => rank(a.l) - rank(b.l) || a.i - b.i).map(({ l }) => l);
}

const UNITS: [number, string][] = [[1e9, "s"], [1e6, "ms"], [1e3, "µs"], [1, "ns"]];

/** Virtual time with a unit: 1.5 s, 120 µs, 40 ns. */
export function fmtNs(ns: number, unit?: [number, string]): string {
  const [div, name] = unit ?? UNITS.find(([d]) => Math.abs(ns) >= d) ?? [1, "ns"];
  const v = ns / div;
  return `${Number.isInteger(v) ? v : Number(v.toPrecision(4))} ${name}`;
}

/** Axis ticks from 0 to at least t1 on a 1/2/5 step, in one unit. */
export function timeTicks(t1: number): { ticks: number[]; end: number; unit: [number, string] } {
  const raw = Math.max(t1, 1) / 6;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const end = Math.ceil(Math.max(t1, 1) / step) * step;
  const ticks: number[] = [];
  for (let t = 0; t <= end + step / 2; t += step) ticks.push(Math.round(t));
  const unit = UNITS.find(([d]) => step >= d) ?? [1, "ns"];
  return { ticks, end, unit };
}

export function timelineSvg(lanes: readonly Lane[], markers: readonly SnapshotMarker[] = []): string {
  const W = 1100, left = 200, right = 20, top = 18, seriesH = 140, rowH = 18, seqRowH = 26;
  const times = lanes.flatMap((l) => [...l.points.map((p) => p.at), ...l.glyphs.flatMap((m) => [m.at, m.end ?? m.at]), ...l.arrows.flatMap((a) => [a.from, a.to])]);
  if (!times.length && !markers.length) return `<p class="none">The scenario produced nothing to plot.</p>`;
  const { ticks, end, unit } = timeTicks(Math.max(0, ...times, ...markers.map((m) => m.at)));
  // Open generation bands run to the end of the axis.
  for (const l of lanes) for (const gl of l.glyphs) if (gl.key === "vmgenid-gen" && gl.end === undefined) gl.end = end;
  const x = (t: number) => left + (t / end) * (W - left - right);
  const used = new Set<LegendKey>();
  let y = top;
  const parts: string[] = [];
  for (const l of lanes) {
    if (l.kind === "series") {
      const vmax = Math.max(...l.points.map((p) => p.value), 1);
      const py = (v: number) => y + seriesH - 8 - (v / vmax) * (seriesH - 20);
      let d = "";
      const wraps: number[] = [];
      l.points.forEach((p, k) => {
        const prev = l.points[k - 1];
        // A drop between consecutive reads of one run is a wrap (drawn as a break); a restore
        // starts a new run, drawn dashed.
        const wrap = prev !== undefined && prev.epoch === p.epoch && p.value < prev.value && p.at > prev.at;
        if (wrap) wraps.push(p.at);
        d += `${!prev || wrap || prev.epoch !== p.epoch ? "M" : "L"}${n1(x(p.at))},${n1(py(p.value))}`;
      });
      parts.push(`<g class="lane series" data-lane="${esc(l.name)}"><text x="4" y="${y + 14}">${esc(l.name)}</text><text x="4" y="${y + 28}" class="muted">max 0x${vmax.toString(16)}</text>`);
      parts.push(`<line x1="${left}" x2="${W - right}" y1="${y + seriesH - 8}" y2="${y + seriesH - 8}" stroke="#dde2ea"/>`);
      parts.push(`<path d="${d}" fill="none" stroke="#2f6fde" stroke-width="1.6"/>`);
      for (const p of l.points) parts.push(`<circle class="${p.epoch ? "replay" : ""}" cx="${n1(x(p.at))}" cy="${n1(py(p.value))}" r="${p.epoch ? 3.2 : 2.2}" fill="${p.epoch ? "none" : "#2f6fde"}" stroke="#2f6fde"><title>${fmtNs(p.at)}: 0x${p.value.toString(16)}${p.epoch ? " (after restore)" : ""}</title></circle>`);
      for (const w of wraps) parts.push(`<line class="wrap" x1="${n1(x(w))}" x2="${n1(x(w))}" y1="${y + 4}" y2="${y + seriesH - 8}" stroke="#c23b3b" stroke-dasharray="3,3"><title>wrap before ${fmtNs(w)}</title></line>`);
      parts.push(`</g>`);
      y += seriesH;
      continue;
    }
    const rh = l.kind === "sequence" ? seqRowH : rowH;
    // Lanes with named rows start them below the lane's title.
    const pad = l.rows.some((r) => r !== "") ? 20 : 8;
    const h = l.rows.length * rh + pad + 4;
    const rowY = (row: number) => y + pad + row * rh + rh / 2;
    parts.push(`<g class="lane ${l.kind === "sequence" ? "sequence" : "marks"}" data-lane="${esc(l.name)}"><text x="4" y="${y + 14}" font-weight="600">${esc(l.name)}</text>`);
    l.rows.forEach((name, row) => {
      parts.push(`<line x1="${left}" x2="${W - right}" y1="${n1(rowY(row))}" y2="${n1(rowY(row))}" stroke="#dde2ea"/>`);
      // Row labels fit the left margin (about 32 characters of 11 px text).
      const short = name.length > 32 ? `${name.slice(0, 31)}…` : name;
      if (name) parts.push(`<text x="${left - 6}" y="${n1(rowY(row) + 4)}" text-anchor="end" class="muted row-label" data-name="${esc(name)}">${esc(short)}</text>`);
    });
    for (const gl of l.glyphs) {
      used.add(gl.key);
      const c = LEGEND[gl.key].color, cy = rowY(gl.row) + (gl.epoch ? 4 : 0), op = gl.epoch ? ' opacity="0.55"' : "";
      const cls = `mark ${gl.key}${gl.epoch ? " replay" : ""}`;
      const tip = `<title>${fmtNs(gl.at)}${gl.end !== undefined && gl.end !== gl.at ? `–${fmtNs(gl.end)}` : ""}: ${esc(gl.label)}${gl.epoch ? " (after restore)" : ""}</title>`;
      if (gl.end !== undefined) {
        const x0 = x(gl.at), w = Math.max(2, x(gl.end) - x0);
        const hh = gl.key === "vmgenid-gen" ? 14 : 10;
        parts.push(`<rect class="${cls} span" x="${n1(x0)}" y="${n1(cy - hh / 2)}" width="${n1(w)}" height="${hh}" fill="${c}" stroke="${gl.key === "vmgenid-gen" ? "#7a4fd1" : "none"}"${op}>${tip}</rect>`);
        if (gl.key === "vmgenid-gen" && w > 40) parts.push(`<text x="${n1(x0 + 4)}" y="${n1(cy + 4)}">${esc(gl.label.split(":")[0]!)}</text>`);
      } else if (l.kind === "sequence") {
        parts.push(`<circle class="${cls}" cx="${n1(x(gl.at))}" cy="${n1(cy)}" r="3.5" fill="${c}"${op}>${tip}</circle>`);
      } else {
        parts.push(`<rect class="${cls}" x="${n1(x(gl.at) - 2.5)}" y="${n1(cy - 7)}" width="5" height="14" fill="${c}"${op}>${tip}</rect>`);
      }
    }
    for (const a of l.arrows) {
      used.add(a.key);
      const c = LEGEND[a.key].color;
      parts.push(`<line class="arrow ${a.key}${a.epoch ? " replay" : ""}" x1="${n1(x(a.from))}" y1="${n1(rowY(a.fromRow))}" x2="${n1(x(a.to))}" y2="${n1(rowY(a.toRow))}" stroke="${c}" stroke-width="1.6" marker-end="url(#ah-${a.key})"${a.epoch ? ' opacity="0.55"' : ""}><title>${fmtNs(a.from)} → ${fmtNs(a.to)}: ${esc(a.label)}</title></line>`);
    }
    parts.push(`</g>`);
    y += h;
  }
  const axisY = y + 4;
  for (const m of markers) {
    const mx = n1(x(m.at));
    parts.push(`<g class="snap-marker" data-kind="${m.kind}"><line x1="${mx}" x2="${mx}" y1="${top - 6}" y2="${axisY}" stroke="${m.kind === "save" ? "#1d2330" : "#c23b3b"}" stroke-width="1.5" stroke-dasharray="${m.kind === "save" ? "6,3" : "2,2"}"/><text x="${mx}" y="${top - 8}" text-anchor="${m.kind === "save" ? "end" : "start"}" dx="${m.kind === "save" ? -3 : 3}" font-weight="600">${m.kind}</text><title>${fmtNs(m.at)}: ${esc(m.label)}</title></g>`);
  }
  parts.push(`<g class="axis time"><line x1="${left}" x2="${W - right}" y1="${axisY}" y2="${axisY}"/>${ticks.map((t) => `<line x1="${n1(x(t))}" x2="${n1(x(t))}" y1="${axisY}" y2="${axisY + 5}"/><text class="tick" data-ns="${t}" x="${n1(x(t))}" y="${axisY + 18}" text-anchor="middle">${fmtNs(t, unit)}</text>`).join("")}<text x="${left}" y="${axisY + 34}" class="muted">virtual time since the scenario start</text></g>`);
  const heads = [...used].map((k) => `<marker id="ah-${k}" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L8,4L0,8z" fill="${LEGEND[k].color}"/></marker>`).join("");
  const H = axisY + 42;
  const svg = `<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="scenario timeline"><defs>${heads}</defs>${parts.join("")}</svg>`;
  const items = [...(lanes.some((l) => l.kind === "series") ? [`<span><i class="sw" style="background:#2f6fde;height:2px"></i>32-bit register reads (break: wrap)</span>`] : [])];
  for (const k of Object.keys(LEGEND) as LegendKey[]) if (used.has(k)) items.push(`<span data-key="${k}"><i class="sw" style="background:${LEGEND[k].color}"></i>${esc(LEGEND[k].text)}</span>`);
  if (markers.some((m) => m.kind === "save")) items.push(`<span data-key="save"><i class="sw" style="border-left:2px dashed #1d2330;width:0"></i>snapshot saved</span>`);
  if (markers.some((m) => m.kind === "restore")) items.push(`<span data-key="restore"><i class="sw" style="border-left:2px dotted #c23b3b;width:0"></i>snapshot restored: time goes back; what follows is drawn lighter, offset or hollow</span>`);
  return `<p class="legend" id="timeline-legend">${items.join("")}</p>${svg}`;
}

/**
 * A save/restore marker from a scenario note (sim/scenario/steps.ts: "saved F (N bytes, t=T ns)",
 * "restored F (t=T ns, ...)"), or undefined for any other note. `index`: records traced so far.
 */
export function markerFromNote(note: string, index: number): SnapshotMarker | undefined {
  const m = /^(?:step \d+ \(line \d+\): )?(saved|restored) (.+?) \((?:.*?, )?t=(\d+) ns/.exec(note);
  if (!m) return undefined;
  return { at: Number(m[3]), kind: m[1] === "saved" ? "save" : "restore", label: `${m[1]} ${m[2]}`, index };
}
