// The targets file (`hvsim.targets.yaml`, or JSON, which the YAML parser reads too): a project's
// conformance targets in one place, each with its command, machine, missing capabilities,
// environment and timeout. Every problem is reported as file:line with the entry's path
// (`hvsim.targets.yaml:7: targets[1].machine: expected one of q35, bhyve, acpi, acpi24`); a file with any
// problem is not used at all. Parsers return errors, never throw.
//
//   targets:
//     - name: mytimer                 # the report's name: letters, digits, . _ - (JUnit testsuite)
//       target: qtest:./build/mytimer --machine bhyve
//       machine: bhyve                # the machine a qtest program implements (default q35)
//       lacks: [irq]                  # capabilities it does not have: those checks do not apply
//       env: { MYTIMER_LOG: "1" }     # extra environment for the program
//       timeoutMs: 10000              # wall-clock limit of one reply
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from "yaml";
import { z } from "zod";
import { CAPABILITIES, QTEST_MACHINES, type Capability, type QtestMachine } from "./types.ts";

/** Picked up from the current directory when present and no --targets-file is given. */
export const DEFAULT_TARGETS_FILE = "hvsim.targets.yaml";

/** Entries one file may hold (bounded before anything is built). */
export const MAX_TARGETS = 64;
const MAX_FILE_BYTES = 1 << 20;

export interface TargetEntry {
  readonly name: string;
  readonly target: string;
  readonly machine?: QtestMachine;
  readonly lacks: readonly Capability[];
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** Line of the entry and of its `target:` value (1-based), for later messages. */
  readonly line: number;
  readonly targetLine: number;
}

export interface TargetsFile {
  readonly file: string;
  readonly entries: readonly TargetEntry[];
}

export type TargetsFileResult =
  | { readonly ok: true; readonly value: TargetsFile }
  /** `unreadable`: the file could not be read at all (the one issue says why). */
  | { readonly ok: false; readonly issues: readonly string[]; readonly unreadable?: true };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const list = (xs: readonly string[]) => xs.join(", ");

const EntrySchema = z.strictObject({
  name: z
    .string({ error: "expected a name (letters, digits, '.', '_', '-')" })
    .max(100, "at most 100 characters")
    .regex(NAME, "a name is letters, digits, '.', '_' and '-' (it names the JUnit testsuite), starting with a letter or digit"),
  target: z.string({ error: "expected a target such as qtest:<command>, hv-daemon:kvp or model" }).min(1, "expected a target such as qtest:<command>, hv-daemon:kvp or model"),
  machine: z.enum(QTEST_MACHINES, { error: `expected one of ${list(QTEST_MACHINES)}` }).optional(),
  lacks: z.array(z.enum(CAPABILITIES, { error: `expected a capability: ${list(CAPABILITIES)}` }), { error: "expected a list of capabilities, e.g. [irq]" }).optional(),
  env: z
    .record(
      z.string().regex(ENV_NAME, "an environment variable name is letters, digits and '_'"),
      z.string({ error: "expected a string (quote numbers: \"1\")" }),
      { error: "expected a mapping of environment variables to strings" },
    )
    .optional(),
  timeoutMs: z
    .number({ error: "expected a number of milliseconds" })
    .int("expected a whole number of milliseconds")
    .min(1, "expected at least 1 ms")
    .max(3_600_000, "expected at most 3600000 ms (an hour)")
    .optional(),
});

const FileSchema = z.strictObject({
  targets: z.array(z.unknown(), { error: "expected a list of targets" }).min(1, "expected at least one target").max(MAX_TARGETS, `at most ${MAX_TARGETS} targets`),
});

type Path = readonly PropertyKey[];

/** The parsed value at `path`, undefined when some member on the way is absent. */
function valueAt(raw: unknown, path: Path): unknown {
  let v = raw;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function pathText(path: Path): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

class Lines {
  constructor(private readonly doc: Document, private readonly lc: LineCounter) {}

  line(node: YamlNode | null | undefined): number {
    return Math.max(1, this.lc.linePos(node?.range?.[0] ?? 0).line);
  }

  /** The node at `path`, or its nearest existing ancestor; with `key`, the key node of that member. */
  node(path: Path, key?: string): YamlNode | undefined {
    let node = this.doc.contents as YamlNode | null;
    let best = node ?? undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return best;
        node = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
      } else if (isSeq(node)) {
        const item = node.items[Number(seg)] as YamlNode | undefined;
        if (!item) return best;
        node = item;
      } else return best;
      best = node ?? best;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (pair) return pair.key as YamlNode;
    }
    return best;
  }

  at(path: Path, key?: string): number {
    return this.line(this.node(path, key));
  }
}

/** Parses and checks a targets file's text. `knownTarget` returns why a target name is not known. */
export function parseTargetsFile(text: string, file: string, knownTarget?: (target: string) => string | undefined): TargetsFileResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    // An error found at the end of the text (an unclosed bracket) is reported on the last line.
    const last = Math.max(1, text.replace(/\s+$/, "").split("\n").length);
    return { ok: false, issues: doc.errors.map((e) => `${file}:${Math.min(last, Math.max(1, lc.linePos(e.pos[0]).line))}: syntax error: ${e.message.split("\n")[0]}`) };
  }
  const lines = new Lines(doc, lc);
  const issue = (path: Path, message: string, key?: string) => `${file}:${lines.at(path, key)}: ${pathText(path) ? `${pathText(path)}: ` : ""}${message}`;
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (e) {
    return { ok: false, issues: [`${file}:1: ${(e as Error).message}`] };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, issues: [`${file}:1: a targets file is a mapping with a 'targets:' list (each entry: name, target, and optionally machine, lacks, env, timeoutMs)`] };
  }
  const zodIssues = (base: Path, err: z.ZodError, keys: string): string[] =>
    err.issues.flatMap((i) => {
      const path = [...base, ...i.path];
      if (i.code === "unrecognized_keys") return i.keys.map((k) => issue(path, `unknown key '${k}' (${keys})`, k));
      const missing = i.code === "invalid_type" && valueAt(raw, path) === undefined;
      return [issue(path, missing ? `missing (${i.message})` : i.message)];
    });
  const top = FileSchema.safeParse(raw);
  if (!top.success) return { ok: false, issues: zodIssues([], top.error, "a targets file has only 'targets:'") };
  const issues: string[] = [];
  const entries: TargetEntry[] = [];
  const names = new Map<string, number>();
  top.data.targets.forEach((item, index) => {
    const path = ["targets", index];
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      issues.push(issue(path, "a target is a mapping with name and target (and optionally machine, lacks, env, timeoutMs)"));
      return;
    }
    const named = (item as { name?: unknown }).name;
    if (typeof named === "string") {
      const first = names.get(named);
      if (first !== undefined) issues.push(issue([...path, "name"], `'${named}' is already the name of targets[${first}]`));
      else names.set(named, index);
    }
    const r = EntrySchema.safeParse(item);
    if (!r.success) {
      issues.push(...zodIssues(path, r.error, "keys: name, target, machine, lacks, env, timeoutMs"));
      return;
    }
    const e = r.data;
    const why = knownTarget?.(e.target);
    if (why) issues.push(issue([...path, "target"], why));
    entries.push({
      name: e.name,
      target: e.target,
      ...(e.machine ? { machine: e.machine } : {}),
      lacks: e.lacks ?? [],
      env: e.env ?? {},
      ...(e.timeoutMs !== undefined ? { timeoutMs: e.timeoutMs } : {}),
      line: lines.at(path),
      targetLine: lines.at([...path, "target"]),
    });
  });
  return issues.length ? { ok: false, issues } : { ok: true, value: { file, entries } };
}

/** Reads and checks a targets file; a missing or unreadable one is one issue naming the errno. */
export function loadTargetsFile(file: string, knownTarget?: (target: string) => string | undefined): TargetsFileResult {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_FILE_BYTES) return { ok: false, unreadable: true, issues: [`${file}: a targets file is at most ${MAX_FILE_BYTES} bytes; this one is ${buf.length}`] };
    text = buf.toString("utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : (e as Error).message;
    return { ok: false, unreadable: true, issues: [`--targets-file ${file}: cannot read it: ${why}`] };
  }
  return parseTargetsFile(text, file, knownTarget);
}
