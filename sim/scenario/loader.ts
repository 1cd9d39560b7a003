// Loading a scenario: YAML (or JSON, which the YAML parser reads too) -> a checked Scenario. Every
// problem is reported with file:line:column: zod issue paths are mapped back to the YAML nodes
// they came from. A scenario with any problem is not run at all.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Alias, type Document, type Node as YamlNode } from "yaml";
import type { MachineSpec } from "../machine/bench.ts";
import { COMMON_STEP_KEYS, getStepType, stepTypeNames } from "./registry.ts";
import { int, time } from "./values.ts";
import { machineNamesForScenarios, resolveMachine } from "./machines.ts";
import "./plugins.ts";

export interface Position {
  readonly line: number;
  readonly column: number;
}

export interface ScenarioIssue extends Position {
  readonly file: string;
  readonly message: string;
}

export function formatIssue(i: ScenarioIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.message}`;
}

export interface ScenarioStep extends Position {
  /** 0-based position in the scenario's step list. */
  readonly index: number;
  readonly type: string;
  readonly args: unknown;
  /** Run the clock to this time before the step. */
  readonly at?: number;
  readonly note?: string;
  /** Short description for messages, e.g. "inl 0x608". */
  readonly text: string;
}

export interface Scenario {
  readonly file: string;
  readonly name: string;
  readonly description?: string;
  readonly machine: MachineSpec;
  readonly seed: number;
  readonly steps: readonly ScenarioStep[];
  /** Where the machine and its device overrides are written (for errors building the bench). */
  readonly machineAt: Position;
  readonly devicesAt?: Position;
}

export type LoadResult = { readonly ok: true; readonly scenario: Scenario } | { readonly ok: false; readonly issues: readonly ScenarioIssue[] };

const TopSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  machine: z.string({ error: "machine must be a machine name" }),
  seed: int(0, Number.MAX_SAFE_INTEGER, "seed").optional(),
  memory: int(4096, 2 ** 46, "memory size").optional(),
  devices: z.record(z.string(), z.record(z.string(), z.unknown(), { error: "a device override is a mapping of configuration keys" })).optional(),
  steps: z.array(z.unknown(), { error: "steps must be a list" }).min(1, "steps must not be empty"),
});

const CommonSchema = z.strictObject({ at: time.optional(), note: z.string().optional() });

type PathKey = PropertyKey;

class Locator {
  constructor(private readonly doc: Document, private readonly lc: LineCounter, private readonly file: string) {}

  pos(node: YamlNode | null | undefined): Position {
    const off = node?.range?.[0] ?? 0;
    const p = this.lc.linePos(off);
    return { line: Math.max(1, p.line), column: Math.max(1, p.col) };
  }

  /** The node at `path` (or its nearest existing ancestor) and whether the whole path exists. */
  find(path: readonly PathKey[], key?: string): { node: YamlNode | undefined; found: boolean; missing?: string } {
    let node = this.doc.contents as YamlNode | null;
    let best: YamlNode | undefined = node ?? undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return { node: best, found: false, missing: String(seg) };
        node = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
        best = node ?? best;
      } else if (isSeq(node)) {
        const item = node.items[Number(seg)] as YamlNode | undefined;
        if (item === undefined) return { node: best, found: false };
        node = item;
        best = item;
      } else {
        return { node: best, found: false };
      }
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (pair) return { node: pair.key as YamlNode, found: true };
    }
    return { node: best, found: true };
  }

  keyPos(path: readonly PathKey[], key: string): Position {
    return this.pos(this.find(path, key).node);
  }

  issue(path: readonly PathKey[], message: string, key?: string): ScenarioIssue {
    return { file: this.file, ...this.pos(this.find(path, key).node), message };
  }

  /** Turns zod issues (paths relative to `base`) into positioned issues. */
  zod(base: readonly PathKey[], err: z.ZodError, what: string): ScenarioIssue[] {
    const out: ScenarioIssue[] = [];
    for (const i of err.issues) {
      const path = [...base, ...i.path];
      const where = pathText(path);
      if (i.code === "unrecognized_keys") {
        for (const k of i.keys) out.push(this.issue(path, `${what}: unknown key ${JSON.stringify(k)}${where ? ` in ${where}` : ""}`, k));
        continue;
      }
      const f = this.find(path);
      const msg = !f.found && f.missing !== undefined && f.missing === String(path[path.length - 1])
        ? `${what}: missing ${where} (${i.message})`
        : `${what}: ${where ? `${where}: ` : ""}${i.message}`;
      out.push({ file: this.file, ...this.pos(f.node), message: msg });
    }
    return out;
  }
}

function pathText(path: readonly PathKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/** Aliased nodes one scenario may expand to (the yaml package's guard against alias bombs). */
const MAX_ALIAS_COUNT = 100;

/**
 * Numbers a double cannot hold exactly (9007199254740993, 1e30, 18446744073709551615) are handed
 * to the schemas as their source text, so that range checks see, and messages quote, what the
 * user wrote rather than its nearest double.
 */
function exactNumbers(doc: Document, text: string): void {
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === "number" && Number.isFinite(node.value) && !Number.isSafeInteger(node.value) && Number.isInteger(node.value) && node.range) {
        node.value = text.slice(node.range[0], node.range[1]).trim();
      }
    },
  });
}

/** toJS failed on an alias: an alias bomb, or an alias whose anchor is missing or comes later. */
function aliasIssue(doc: Document, loc: Locator, file: string, e: Error): ScenarioIssue {
  const aliases: Alias[] = [];
  visit(doc, { Alias: (_, node) => void aliases.push(node) });
  const m = /Unresolved alias.*: (.*)$/.exec(e.message);
  if (m) {
    const a = aliases.find((x) => x.source === m[1]) ?? aliases[0];
    const anchored = (() => {
      let found = false;
      visit(doc, { Node: (_, n) => void (found ||= (n as { anchor?: string }).anchor === m[1]) });
      return found;
    })();
    const why = anchored ? `its anchor &${m[1]} comes after it (an anchor must be set before its alias)` : `there is no anchor &${m[1]}`;
    return { file, ...loc.pos(a), message: `syntax error: alias *${m[1]}: ${why}` };
  }
  if (/alias count|resource exhaustion/i.test(e.message)) {
    return { file, ...loc.pos(aliases[0]), message: `syntax error: the aliases expand to more than ${MAX_ALIAS_COUNT} aliased nodes (an alias bomb?); write the values out` };
  }
  return { file, ...loc.pos(aliases[0]), message: `syntax error: ${e.message}` };
}

/** Parses and checks a scenario's text; `file` is used in messages and to resolve nothing else. */
export function parseScenario(text: string, file: string): LoadResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const p = lc.linePos(e.pos[0]);
        return { file, line: Math.max(1, p.line), column: Math.max(1, p.col), message: `syntax error: ${e.message.split("\n")[0]}` };
      }),
    };
  }
  const loc = new Locator(doc, lc, file);
  exactNumbers(doc, text);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
  } catch (e) {
    return { ok: false, issues: [aliasIssue(doc, loc, file, e as Error)] };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, issues: [{ file, line: 1, column: 1, message: "a scenario is a mapping with machine, seed and steps" }] };
  }
  const top = TopSchema.safeParse(raw);
  if (!top.success) return { ok: false, issues: sortIssues(loc.zod([], top.error, "scenario")) };
  const t = top.data;
  const issues: ScenarioIssue[] = [];

  const base = resolveMachine(t.machine);
  let machine: MachineSpec | undefined;
  if (!base) {
    issues.push(loc.issue(["machine"], `unknown machine ${JSON.stringify(t.machine)} (known: ${machineNamesForScenarios().join(", ")})`));
  } else {
    const ids = base.devices.map((d) => d.id);
    for (const id of Object.keys(t.devices ?? {})) {
      if (!ids.includes(id)) issues.push(loc.issue(["devices"], `machine ${base.name} has no device ${JSON.stringify(id)} (devices: ${ids.join(", ")})`, id));
    }
    machine = {
      ...base,
      memory: t.memory ?? base.memory,
      devices: base.devices.map((d) => {
        const o = t.devices?.[d.id];
        return o ? { ...d, config: { ...(d.config ?? {}), ...o } } : d;
      }),
    };
  }

  const steps: ScenarioStep[] = [];
  const known = stepTypeNames();
  t.steps.forEach((s, index) => {
    const path = ["steps", index];
    const at = loc.pos(loc.find(path).node);
    if (s === null || typeof s !== "object" || Array.isArray(s)) {
      issues.push(loc.issue(path, `step ${index + 1}: a step is a mapping like "step: 1000" or "inl: 0x608" (step types: ${known.join(", ")})`));
      return;
    }
    const obj = s as Record<string, unknown>;
    const keys = Object.keys(obj);
    const types = keys.filter((k) => getStepType(k) !== undefined);
    if (types.length !== 1) {
      const other = keys.filter((k) => !(COMMON_STEP_KEYS as readonly string[]).includes(k));
      const msg = types.length === 0
        ? `step ${index + 1}: unknown step type${other.length ? ` ${other.map((k) => JSON.stringify(k)).join(", ")}` : " (no step key)"}; step types: ${known.join(", ")}`
        : `step ${index + 1}: one step per list item, found ${types.join(" and ")}`;
      issues.push(loc.issue(path, msg, types[1] ?? other[0]));
      return;
    }
    const type = types[0]!;
    const st = getStepType(type)!;
    const common: Record<string, unknown> = {};
    const own: Record<string, unknown> = {};
    for (const k of keys) ((COMMON_STEP_KEYS as readonly string[]).includes(k) ? common : own)[k] = obj[k];
    const c = CommonSchema.safeParse(common);
    if (!c.success) issues.push(...loc.zod(path, c.error, `step ${index + 1} (${type})`));
    const r = st.schema.safeParse(own);
    if (!r.success) {
      issues.push(...loc.zod(path, r.error, `step ${index + 1} (${type})`));
      return;
    }
    if (!c.success) return;
    let text = type;
    try {
      text = st.describe ? st.describe(r.data) : type;
    } catch {
      /* a describe that fails only costs the nicer text */
    }
    steps.push({ index, type, args: r.data, at: c.data.at, note: c.data.note, text, ...at });
  });

  if (issues.length || !machine) return { ok: false, issues: sortIssues(issues) };
  return {
    ok: true,
    scenario: {
      file,
      name: t.name ?? file,
      description: t.description,
      machine,
      seed: t.seed ?? 0,
      steps,
      machineAt: loc.pos(loc.find(["machine"]).node),
      devicesAt: t.devices ? loc.pos(loc.find(["devices"]).node) : undefined,
    },
  };
}

function sortIssues(issues: ScenarioIssue[]): ScenarioIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Reads and parses a scenario file ("-": standard input); an unreadable file is one issue at 1:1. */
export function loadScenarioFile(file: string): LoadResult {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    return { ok: false, issues: [{ file, line: 1, column: 1, message: `cannot read the scenario: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }] };
  }
  return parseScenario(text, file);
}
