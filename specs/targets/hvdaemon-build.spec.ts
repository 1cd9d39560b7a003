// The run-time build of the bridge's native parts (sim/targets/hvdaemon/build.ts): a cache keyed
// by a hash of the sources, flags and compiler, reuse without recompiling, clear errors.
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { buildHvDaemonTools, compileCProgram, compilerVersion, HvBuildError, hvsimCacheRoot } from "../../sim/targets/hvdaemon/build.ts";

const cc = compilerVersion();
const noCc = cc === undefined;
const why = noCc ? " [skipped: no C compiler (`cc --version` failed)]" : "";

const root = mkdtempSync(join(tmpdir(), "hvsim-build-spec-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("hvdaemon native build", () => {
  it("puts the cache under $HVSIM_CACHE, else ~/.cache/hvsim", () => {
    expect(hvsimCacheRoot({ HVSIM_CACHE: "/x/cache", HOME: "/home/u" })).toBe("/x/cache");
    expect(hvsimCacheRoot({ HOME: "/home/u" })).toBe("/home/u/.cache/hvsim");
  });

  it("says clearly when there is no compiler", () => {
    const err = (() => {
      try {
        buildHvDaemonTools({ cacheRoot: root, cc: "/nonexistent/cc" });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(HvBuildError);
    expect((err as HvBuildError).kind).toBe("no-compiler");
    expect((err as HvBuildError).message).toMatch(/no C compiler: `\/nonexistent\/cc --version` could not be run/);
  });

  it.skipIf(noCc)(`builds shim.so, relay and sandbox into <cache>/hvdaemon/<hash>/ once, then reuses them${why}`, () => {
    const first = buildHvDaemonTools({ cacheRoot: root });
    expect(first.dir).toMatch(new RegExp(`^${root}/hvdaemon/[0-9a-f]{16}$`));
    for (const f of [first.shim, first.relay, first.sandbox]) expect(statSync(f).size).toBeGreaterThan(0);
    const mtime = statSync(first.shim).mtimeMs;
    const again = buildHvDaemonTools({ cacheRoot: root });
    expect(again).toEqual(first);
    expect(statSync(again.shim).mtimeMs).toBe(mtime); // not rebuilt
    expect(readdirSync(join(root, "hvdaemon")).filter((d) => d.startsWith(".tmp-"))).toEqual([]);
    // The shim exports exactly the hooks (hidden visibility for everything else).
    const nm = spawnSync("nm", ["-D", "--defined-only", first.shim], { encoding: "utf8" });
    if (nm.status === 0) {
      const exported = nm.stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((p) => p[1] === "T")
        .map((p) => p[2])
        .sort();
      expect(exported).toEqual(
        [
          "__syslog_chk", "__vsyslog_chk", "access", "close", "closelog", "daemon", "fopen", "fopen64",
          "freeaddrinfo", "freeifaddrs", "getaddrinfo", "gethostname", "getifaddrs", "getpid", "ioctl",
          "mkdir", "open", "open64", "opendir", "openlog", "poll", "popen", "read", "setmntent", "stat",
          "stat64", "syslog", "system", "uname", "vsyslog", "write",
        ].sort(),
      );
    }
  });

  it.skipIf(noCc)(`compiles a probe program, and reports compiler errors with the compiler's output${why}`, () => {
    const ok = compileCProgram("hello", '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n', { cacheRoot: root });
    expect(spawnSync(ok, { encoding: "utf8" }).stdout).toBe("hi\n");
    expect(compileCProgram("hello", '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n', { cacheRoot: root })).toBe(ok);
    let err: unknown;
    try {
      compileCProgram("broken", "int main(void) { return missing; }\n", { cacheRoot: root });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HvBuildError);
    expect((err as HvBuildError).kind).toBe("compile");
    expect((err as HvBuildError).output).toMatch(/missing/);
    expect(() => compileCProgram("../evil", "int main(void){return 0;}", { cacheRoot: root })).toThrow(/bad program name/);
  });
});
