// Builds the native parts of the Hyper-V daemon bridge with the system C compiler, at run time,
// into a cache: ${HVSIM_CACHE:-~/.cache/hvsim}/hvdaemon/<hash>/ holding shim.so (LD_PRELOAD
// device shim), relay (SOCK_SEQPACKET <-> stdio relay) and sandbox (launcher). <hash> covers the
// sources, the compiler flags and `cc --version`, so an edit or another compiler makes a new
// directory and an existing one is reused as is. A build happens in a temporary directory that is
// renamed into place when complete, so concurrent test workers never see half a build.
//
// Everything here is synchronous (spawnSync): a build takes well under a second and callers
// (DaemonBridge.available()) are synchronous.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export class HvBuildError extends Error {
  override name = "HvBuildError";
  constructor(
    readonly kind: "no-compiler" | "compile" | "io",
    message: string,
    /** The compiler's output, for "compile". */
    readonly output?: string,
  ) {
    super(message);
  }
}

export interface HvDaemonTools {
  /** The cache directory of this build. */
  readonly dir: string;
  /** LD_PRELOAD device shim (shim.c). */
  readonly shim: string;
  /** SOCK_SEQPACKET <-> stdin/stdout relay (relay.c). */
  readonly relay: string;
  /** Sandbox launcher (sandbox.c). */
  readonly sandbox: string;
}

export interface BuildOptions {
  /** Cache root; default ${HVSIM_CACHE:-~/.cache/hvsim}. */
  cacheRoot?: string;
  /** Compiler command; default `cc` from PATH. */
  cc?: string;
  env?: NodeJS.ProcessEnv;
}

const SOURCE_DIR = fileURLToPath(new URL(".", import.meta.url));
const COMMON_FLAGS = ["-O2", "-g", "-Wall", "-Wextra", "-U_FORTIFY_SOURCE"];

interface Unit {
  readonly source: string;
  readonly output: string;
  readonly flags: readonly string[];
}

const UNITS: readonly Unit[] = [
  { source: "shim.c", output: "shim.so", flags: [...COMMON_FLAGS, "-shared", "-fPIC", "-fvisibility=hidden"] },
  { source: "relay.c", output: "relay", flags: COMMON_FLAGS },
  { source: "sandbox.c", output: "sandbox", flags: COMMON_FLAGS },
];
const LIBS: Readonly<Record<string, readonly string[]>> = { "shim.c": ["-ldl"] };

export function hvsimCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.HVSIM_CACHE || join(env.HOME || homedir(), ".cache", "hvsim");
}

const ccVersions = new Map<string, string | undefined>();

/** `cc --version`'s first line, or undefined when the compiler cannot be run. */
export function compilerVersion(cc = "cc", env: NodeJS.ProcessEnv = process.env): string | undefined {
  const key = `${cc}\0${env.PATH ?? ""}`;
  if (ccVersions.has(key)) return ccVersions.get(key);
  const r = spawnSync(cc, ["--version"], { encoding: "utf8", env, timeout: 10_000 });
  const version = r.status === 0 ? (r.stdout.split("\n")[0] ?? "").trim() || cc : undefined;
  ccVersions.set(key, version);
  return version;
}

function requireCompiler(cc: string, env: NodeJS.ProcessEnv): string {
  const version = compilerVersion(cc, env);
  if (version === undefined) {
    throw new HvBuildError(
      "no-compiler",
      `no C compiler: \`${cc} --version\` could not be run (install gcc and libc6-dev, e.g. apt-get install gcc libc6-dev)`,
    );
  }
  return version;
}

function runCc(cc: string, args: string[], env: NodeJS.ProcessEnv, what: string): void {
  const r = spawnSync(cc, args, { encoding: "utf8", env, timeout: 120_000 });
  if (r.error) throw new HvBuildError("compile", `${what}: could not run ${cc}: ${r.error.message}`);
  if (r.status !== 0) {
    const output = `${r.stdout}${r.stderr}`.trim();
    throw new HvBuildError("compile", `${what}: ${cc} failed (exit ${r.status}):\n${output}`, output);
  }
}

/**
 * Compiles `units` into <root>/<sub>/<hash>/ unless that directory is already complete. The
 * directory is published by renaming a finished temporary directory (with a `.complete` marker).
 */
function buildInto(
  sub: string,
  units: readonly { name: string; text: string; output: string; flags: readonly string[]; libs: readonly string[] }[],
  opts: BuildOptions,
): string {
  const env = opts.env ?? process.env;
  const cc = opts.cc ?? "cc";
  const version = requireCompiler(cc, env);
  const hash = createHash("sha256");
  hash.update(`cc=${cc}\nversion=${version}\n`);
  for (const u of units) hash.update(`${u.name}\0${u.output}\0${u.flags.join(" ")}\0${u.libs.join(" ")}\0${u.text}\0`);
  const root = join(opts.cacheRoot ?? hvsimCacheRoot(env), sub);
  const dir = join(root, hash.digest("hex").slice(0, 16));
  if (existsSync(join(dir, ".complete"))) return dir;
  let tmp: string;
  try {
    mkdirSync(root, { recursive: true });
    tmp = mkdtempSync(join(root, ".tmp-"));
  } catch (e) {
    throw new HvBuildError("io", `cannot create the build cache under ${root}: ${(e as Error).message}`);
  }
  try {
    for (const u of units) {
      const src = join(tmp, u.name);
      writeFileSync(src, u.text);
      runCc(cc, [...u.flags, "-o", join(tmp, u.output), src, ...u.libs], env, `building ${u.name}`);
    }
    writeFileSync(join(tmp, ".complete"), `${version}\n`);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another worker published the same build first: use theirs.
      if (!existsSync(join(dir, ".complete"))) {
        throw new HvBuildError("io", `cannot publish the build into ${dir}: ${(e as Error).message}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Builds (or finds in the cache) shim.so, relay and sandbox. Throws HvBuildError. */
export function buildHvDaemonTools(opts: BuildOptions = {}): HvDaemonTools {
  const units = UNITS.map((u) => ({
    name: u.source,
    text: readFileSync(join(SOURCE_DIR, u.source), "utf8"),
    output: u.output,
    flags: u.flags,
    libs: LIBS[u.source] ?? [],
  }));
  const dir = buildInto("hvdaemon", units, opts);
  return { dir, shim: join(dir, "shim.so"), relay: join(dir, "relay"), sandbox: join(dir, "sandbox") };
}

/**
 * Compiles one C program (a probe for specs, e.g. printing offsetof values) into
 * <cache>/hvdaemon/probes/<hash>/<name> and returns its path. Note: under /root the cache is not
 * reachable by the sandbox's unprivileged user; copy the binary somewhere readable to run it there.
 */
export function compileCProgram(
  name: string,
  source: string,
  opts: BuildOptions & { flags?: readonly string[]; libs?: readonly string[] } = {},
): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new HvBuildError("io", `bad program name: ${name}`);
  const dir = buildInto(
    join("hvdaemon", "probes"),
    [{ name: `${name}.c`, text: source, output: name, flags: opts.flags ?? COMMON_FLAGS, libs: opts.libs ?? [] }],
    opts,
  );
  return join(dir, name);
}
