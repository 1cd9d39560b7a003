// Every file the CLI writes goes through here, under one policy:
//   - each output is checked before any work starts (checkOutputFile / checkOutputDir): an
//     existing directory, a missing or non-directory parent, or a place where no file can be
//     created is a usage error (exit 2, one line);
//   - parents are never created, except the default output folder `reports/` (in the current
//     directory) when an output goes directly in it;
//   - `-` means standard output;
//   - a file is written atomically: a temporary file in the same directory, renamed into place,
//     so the path holds either the old content or the whole new one (no fsync: a crash of the
//     machine may lose the file, never half of it). A command with several outputs writes all the
//     temporaries first and renames them only when every one was written.
//   - a write that fails anyway (disk full) is one line naming the output and the errno, exit 1.
// Special files (a character device such as /dev/null, a FIFO) are written in place.
import { closeSync, mkdirSync, openSync, renameSync, rmSync, statSync, unlinkSync, writeSync, type Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Failure, UsageError } from "./errors.ts";

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOENT: "no such file or directory",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EIO: "input/output error",
  EPIPE: "broken pipe",
  EEXIST: "file exists",
  EMFILE: "too many open files",
  ENAMETOOLONG: "file name too long",
  EXDEV: "cross-device link",
};

/** "ENOSPC (no space left on device)" for a Node errno error; its message otherwise. */
export function describeErrno(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string") return ERRNO_TEXT[code] ? `${code} (${ERRNO_TEXT[code]})` : code;
  return e instanceof Error ? e.message : String(e);
}

/** A checked output: standard output, a regular file written atomically, or a special file. */
export interface Output {
  /** The path as the user wrote it (for messages). */
  readonly path: string;
  /** What the output is, for messages: "--json", "save: step 3", ... */
  readonly label: string;
  readonly kind: "stdout" | "file" | "special";
  /** Absolute path (not for stdout). */
  readonly abs: string;
  /** The parent folder to create before writing (only for a default path under reports/). */
  readonly createParent?: string;
}

function stat(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

/** A bad output: exit 2, one line (the --help hint would not help). */
const usage = (message: string) => new UsageError(message, false);

let probes = 0;

/** Creates and removes a file in `dir` to prove files can be created there. */
function probeDir(dir: string, label: string, shown: string): void {
  const probe = join(dir, `.hvsim-probe-${process.pid}-${++probes}`);
  let fd: number;
  try {
    fd = openSync(probe, "wx");
  } catch (e) {
    throw usage(`${label} ${shown}: cannot create files in ${dir}: ${describeErrno(e)}`);
  }
  closeSync(fd);
  unlinkSync(probe);
}

/** The nearest existing ancestor of `p` (for a default folder that will be created). */
function existingAncestor(p: string): string {
  let d = p;
  while (!stat(d)) {
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return d;
}

/** The default output folder: the only folder hvsim creates, when an output goes directly in it. */
export const DEFAULT_FOLDER = "reports";

export interface CheckOptions {
  /** Create a missing parent folder (only for default paths under the default output folder). */
  readonly createParent?: boolean;
  /** Whether `-` (standard output) is allowed; default true. */
  readonly allowStdout?: boolean;
}

/** Checks that `path` can be written as a file; throws a UsageError (exit 2) naming `label` if not. */
export function checkOutputFile(path: string, label: string, opts: CheckOptions = {}): Output {
  if (path === "-") {
    if (opts.allowStdout === false) throw usage(`${label}: '-' (standard output) is not allowed here; name a file`);
    return { path, label, kind: "stdout", abs: "-" };
  }
  if (path === "") throw usage(`${label}: empty file name`);
  const abs = resolve(path);
  const st = stat(abs);
  if (st?.isDirectory()) throw usage(`${label} ${path}: is a directory (name a file)`);
  if (st && !st.isFile()) return { path, label, kind: "special", abs };
  const parent = dirname(abs);
  const pst = stat(parent);
  if (!pst) {
    if (!opts.createParent && parent !== resolve(DEFAULT_FOLDER)) throw usage(`${label} ${path}: no such directory ${dirname(path)} (hvsim does not create it)`);
    const anc = existingAncestor(parent);
    if (!stat(anc)?.isDirectory()) throw usage(`${label} ${path}: ${anc} is not a directory`);
    probeDir(anc, label, path);
    return { path, label, kind: "file", abs, createParent: parent };
  }
  if (!pst.isDirectory()) throw usage(`${label} ${path}: ${dirname(path)} is not a directory`);
  probeDir(parent, label, path);
  return { path, label, kind: "file", abs };
}

/**
 * Checks a directory output (fuzz --corpus): an existing directory where files can be created, or
 * a missing one whose parent exists (the directory itself is created when first written).
 */
export function checkOutputDir(dir: string, label: string): void {
  if (dir === "" || dir === "-") throw usage(`${label}: name a directory`);
  const abs = resolve(dir);
  const st = stat(abs);
  if (st) {
    if (!st.isDirectory()) throw usage(`${label} ${dir}: exists and is not a directory`);
    probeDir(abs, label, dir);
    return;
  }
  const parent = dirname(abs);
  const pst = stat(parent);
  if (!pst) throw usage(`${label} ${dir}: no such directory ${dirname(dir)} (hvsim does not create it)`);
  if (!pst.isDirectory()) throw usage(`${label} ${dir}: ${dirname(dir)} is not a directory`);
  probeDir(parent, label, dir);
}

/** Checks an existing input directory (run --snapshot-dir). */
export function checkExistingDir(dir: string, label: string): void {
  const st = stat(resolve(dir));
  if (!st) throw usage(`${label} ${dir}: no such directory`);
  if (!st.isDirectory()) throw usage(`${label} ${dir}: not a directory`);
}

function writeAllFd(fd: number, data: string | Uint8Array): void {
  let buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  while (buf.length) {
    const n = writeSync(fd, buf);
    buf = buf.subarray(n);
  }
}

function writeFailure(o: Output, e: unknown): Failure {
  return new Failure(`cannot write ${o.label} ${o.path}: ${describeErrno(e)}`, 1);
}

const tmpName = (abs: string) => join(dirname(abs), `.${basename(abs)}.${process.pid}.tmp`);

/** A file being written through a temporary (or in place for stdout and special files). */
export class OutputWriter {
  private fd: number | undefined;
  private readonly tmp: string | undefined;
  private closed = false;

  constructor(readonly out: Output) {
    if (out.kind === "stdout") return;
    try {
      if (out.createParent) mkdirSync(out.createParent, { recursive: true });
      this.tmp = out.kind === "file" ? tmpName(out.abs) : undefined;
      this.fd = openSync(this.tmp ?? out.abs, "w");
    } catch (e) {
      this.discard();
      throw writeFailure(out, e);
    }
  }

  write(data: string | Uint8Array): void {
    if (this.out.kind === "stdout") {
      process.stdout.write(data);
      return;
    }
    try {
      writeAllFd(this.fd!, data);
    } catch (e) {
      this.discard();
      throw writeFailure(this.out, e);
    }
  }

  /** Closes the temporary; the output is not in place until commit(). */
  finish(): void {
    if (this.fd === undefined || this.closed) return;
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch (e) {
      this.discard();
      throw writeFailure(this.out, e);
    }
  }

  /** Renames the temporary into place. */
  commit(): void {
    this.finish();
    if (!this.tmp) return;
    try {
      renameSync(this.tmp, this.out.abs);
    } catch (e) {
      this.discard();
      throw writeFailure(this.out, e);
    }
  }

  /** Drops the temporary (the destination keeps its old content). */
  discard(): void {
    if (this.fd !== undefined && !this.closed) {
      this.closed = true;
      try {
        closeSync(this.fd);
      } catch {
        // already unusable
      }
    }
    if (this.tmp) rmSync(this.tmp, { force: true });
  }
}

/**
 * Writes every output (checked before the work with checkOutputFile): all temporaries first, then
 * the renames, so either every file output is in place or none is changed; stdout last.
 */
export function writeOutputs(items: readonly { readonly out: Output; readonly data: string | Uint8Array }[]): void {
  const files = items.filter((i) => i.out.kind !== "stdout");
  const writers: OutputWriter[] = [];
  try {
    for (const i of files) {
      const w = new OutputWriter(i.out);
      writers.push(w);
      w.write(i.data);
      w.finish();
    }
  } catch (e) {
    for (const w of writers) w.discard();
    throw e;
  }
  for (const w of writers) w.commit();
  for (const i of items) if (i.out.kind === "stdout") process.stdout.write(i.data);
}

export function writeOutput(out: Output, data: string | Uint8Array): void {
  writeOutputs([{ out, data }]);
}

/** Writes one file atomically with no prior check (files inside an already checked directory). */
export function writeFileAtomic(path: string, data: string | Uint8Array, label: string): void {
  writeOutput({ path, label, kind: "file", abs: resolve(path) }, data);
}

/** At most one of several outputs may be standard output. */
export function oneStdout(outs: readonly (Output | undefined)[]): void {
  const s = outs.filter((o): o is Output => o?.kind === "stdout");
  if (s.length > 1) throw usage(`${s.map((o) => o.label).join(" and ")} cannot both be '-' (standard output)`);
}
